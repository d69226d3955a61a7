using Microsoft.Extensions.Time.Testing;
using RaftKv.Server.Leases;

namespace RaftKv.Server.Tests.Leases;

/// <summary>The leader's expiry bookkeeping on a fake clock.</summary>
public sealed class LessorTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Only_the_primary_renews_or_expires_leases()
    {
        var lessor = new Lessor(_time);
        Assert.Null(lessor.Renew(1, 10));
        Assert.Null(lessor.RemainingSeconds(1, 10));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Empty(lessor.Expired([(1, 10)]));
    }

    [Fact]
    public void A_lease_expires_its_ttl_after_the_last_keep_alive_and_is_revoked_once_per_retry_period()
    {
        var lessor = new Lessor(_time);
        lessor.Promote();
        Assert.Empty(lessor.Expired([(1, 10), (2, 5)])); // first seen: full TTL from now
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(10, lessor.Renew(1, 10));
        Assert.Equal(1, lessor.RemainingSeconds(2, 5));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([2L], lessor.Expired([(1, 10), (2, 5)]));
        Assert.Equal(0, lessor.Renew(2, 5)); // expired: a keep-alive cannot bring it back
        Assert.Empty(lessor.Expired([(1, 10), (2, 5)])); // revoke already proposed
        _time.Advance(Lessor.RevokeRetry);
        Assert.Equal([2L], lessor.Expired([(1, 10), (2, 5)])); // still granted after the retry period: propose again
        _time.Advance(TimeSpan.FromSeconds(13) - Lessor.RevokeRetry - TimeSpan.FromSeconds(5)); // at 13 s: lease 1 was renewed at 4 s
        Assert.Equal(1, lessor.RemainingSeconds(1, 10));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([1L], lessor.Expired([(1, 10)]));
    }

    [Fact]
    public void A_new_leader_starts_every_lease_over_with_its_full_ttl()
    {
        var lessor = new Lessor(_time);
        lessor.Promote();
        lessor.Expired([(1, 10)]);
        _time.Advance(TimeSpan.FromSeconds(9));
        lessor.Demote();
        Assert.Empty(lessor.Expired([(1, 10)]));
        _time.Advance(TimeSpan.FromSeconds(5)); // past the old expiry, while another member led
        lessor.Promote();
        Assert.Empty(lessor.Expired([(1, 10)]));
        Assert.Equal(10, lessor.RemainingSeconds(1, 10));
        _time.Advance(TimeSpan.FromSeconds(9.5));
        Assert.Empty(lessor.Expired([(1, 10)]));
        _time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal([1L], lessor.Expired([(1, 10)]));
    }

    [Fact]
    public void A_lease_revoked_and_granted_again_starts_fresh()
    {
        var lessor = new Lessor(_time);
        lessor.Promote();
        lessor.Expired([(1, 2)]);
        _time.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal([1L], lessor.Expired([(1, 2)]));
        Assert.Empty(lessor.Expired([])); // the revoke applied: forgotten
        Assert.Empty(lessor.Expired([(1, 2)])); // granted again: full TTL
        Assert.Equal(2, lessor.Renew(1, 2));
    }

    [Theory]
    [InlineData(100, 1000, 2)] // etcd's defaults: (3 * 10 / 2) * 100 ms = 1.5 s, rounded up
    [InlineData(100, 500, 1)]
    [InlineData(50, 500, 1)]
    [InlineData(500, 5000, 8)]
    [InlineData(100, 1050, 2)]
    public void The_minimum_ttl_is_etcds(int heartbeatMs, int electionMs, long expected) =>
        Assert.Equal(expected, LeaseService.MinTtlSeconds(heartbeatMs, electionMs));

    [Fact]
    public void Generated_lease_ids_are_positive_and_distinct()
    {
        var ids = new LeaseIdGenerator(ulong.MaxValue, _time);
        var seen = Enumerable.Range(0, 1000).Select(_ => ids.Next()).ToList();
        Assert.All(seen, id => Assert.True(id > 0, $"id {id}"));
        Assert.Equal(seen.Count, seen.Distinct().Count());
    }
}
