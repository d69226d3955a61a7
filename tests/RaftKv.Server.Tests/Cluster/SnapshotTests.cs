using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>
/// Raft snapshots end to end with a small --snapshot-count: WAL segments released, restart from snapshot + WAL tail,
/// a member behind the compacted log and a newly added member caught up by a snapshot carrying the store.
/// </summary>
public sealed partial class SnapshotTests
{
    private static readonly string[] SnapshotFlags = ["--snapshot-count", "50", "--experimental-snapshot-catchup-entries", "10"];
    private const long WalSegmentBytes = 4096;

    [Fact]
    public async Task Snapshots_bound_the_wal_and_a_restarted_member_rebuilds_from_snapshot_and_wal_tail()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: SnapshotFlags, walSegmentBytes: WalSegmentBytes);
        var leader = await cluster.WaitForLeaderAsync();
        await PutManyAsync(cluster.Endpoint(leader), "a/", 0, 300);
        await WaitCaughtUpAsync(cluster, [0, 1, 2]);

        // A snapshot due at the last applied entries may still be in the making (its new snap file written, the oldest not
        // yet purged), so each member gets there eventually rather than at this instant.
        for (var i = 0; i < 3; i++)
        {
            var member = cluster.Host(i).Member;
            var dataDir = cluster.DataDir(i);
            string? Problem()
            {
                var snaps = Directory.GetFiles(Path.Combine(dataDir, "member", "snap"), "*.snap");
                var wals = Directory.GetFiles(Path.Combine(dataDir, "member", "wal"), "*.wal");
                return member.SnapshotIndex < 250 ? $"newest snapshot at {member.SnapshotIndex}, applied {member.AppliedIndex}"
                    : snaps.Length is < 1 or > 5 ? $"{snaps.Length} snap files"
                    : wals.Length > 4 ? $"{wals.Length} WAL segments of {WalSegmentBytes} bytes: {string.Join(", ", wals.Select(Path.GetFileName))}"
                    : member.LogFirstIndex <= member.SnapshotIndex - 10 - 1 || member.LogFirstIndex <= 200 ? $"log starts at {member.LogFirstIndex}, snapshot at {member.SnapshotIndex}"
                    : null;
            }

            var name = cluster.Names[i];
            await Eventually.TrueAsync(() => Task.FromResult(Problem() is null), () => $"{name}: {Problem()}");
        }

        var restarted = (leader + 1) % 3;
        await cluster.StopMemberAsync(restarted);
        await cluster.RestartAllAsync();
        await cluster.WaitForLeaderAsync();
        Assert.True(cluster.Host(restarted).Member.LogFirstIndex > 200, $"restarted log starts at {cluster.Host(restarted).Member.LogFirstIndex}");
        await PutManyAsync(cluster.Endpoint(restarted), "b/", 0, 20);
        await WaitCaughtUpAsync(cluster, [0, 1, 2]);
        await AssertSameStateAsync(cluster, [0, 1, 2], expectedKeys: 320);
    }

    [Fact]
    public async Task A_member_stopped_while_the_leader_compacts_past_it_is_caught_up_by_a_snapshot()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: SnapshotFlags, walSegmentBytes: WalSegmentBytes);
        var leader = await cluster.WaitForLeaderAsync();
        await PutManyAsync(cluster.Endpoint(leader), "a/", 0, 10);
        var behind = (leader + 1) % 3;
        await WaitCaughtUpAsync(cluster, [0, 1, 2]);
        var appliedWhenStopped = cluster.Host(behind).Member.AppliedIndex;
        await cluster.StopMemberAsync(behind);

        await PutManyAsync(cluster.Endpoint(leader), "a/", 10, 200);

        // A lease with a key, granted while the member is away: it reaches the member only inside the snapshot's store.
        using (var channel = GrpcChannel.ForAddress("http://" + cluster.Endpoint(leader)))
        {
            var lease = await new Lease.LeaseClient(channel).LeaseGrantAsync(new LeaseGrantRequest { TTL = 600 });
            await new KV.KVClient(channel).PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("leased"), Value = ByteString.CopyFromUtf8("v"), Lease = lease.ID });
            await PutManyAsync(cluster.Endpoint(leader), "a/", 210, 60);
        }
        await Eventually.TrueAsync(() => cluster.Host(leader).Member.LogFirstIndex > appliedWhenStopped + 1,
            () => $"leader log starts at {cluster.Host(leader).Member.LogFirstIndex}, stopped member applied {appliedWhenStopped}");

        await cluster.RestartAllAsync();
        await WaitCaughtUpAsync(cluster, [0, 1, 2]);
        Assert.True(cluster.Host(behind).Member.SnapshotIndex > appliedWhenStopped,
            $"the member behind should hold the leader's snapshot; its snapshot is at {cluster.Host(behind).Member.SnapshotIndex}");
        await AssertSameStateAsync(cluster, [0, 1, 2], expectedKeys: 271);
        var sent = 0.0;
        for (var i = 0; i < 3; i++)
        {
            sent += SnapshotsSent(await MetricsAsync(cluster.Endpoint(i)));
        }

        Assert.True(sent >= 1, $"etcd_network_snapshot_send_success summed over the members is {sent}");
        await PutManyAsync(cluster.Endpoint(behind), "c/", 0, 5);
        await WaitCaughtUpAsync(cluster, [0, 1, 2]);
        await AssertSameStateAsync(cluster, [0, 1, 2], expectedKeys: 276);
    }

    [Fact]
    public async Task A_member_added_after_compaction_is_caught_up_by_a_snapshot()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: SnapshotFlags, walSegmentBytes: WalSegmentBytes);
        var leader = await cluster.WaitForLeaderAsync();
        await PutManyAsync(cluster.Endpoint(leader), "a/", 0, 200);
        await Eventually.TrueAsync(() => cluster.Host(leader).Member.LogFirstIndex > 100, cluster.Describe);

        var ports = FreePorts.Take(2);
        await Etcdctl.OkAsync(cluster.Endpoints, "member", "add", "m4", $"--peer-urls=http://127.0.0.1:{ports[1]}");
        await using var joined = await cluster.StartJoiningMemberAsync("m4", ports[0], ports[1]);
        await Eventually.TrueAsync(() => joined.Member.AppliedIndex >= cluster.Host(leader).Member.CommitIndex && joined.Member.Leader != 0,
            () => $"new member applied {joined.Member.AppliedIndex}, snapshot {joined.Member.SnapshotIndex}; {cluster.Describe()}");
        Assert.True(joined.Member.SnapshotIndex > 100, $"the new member's snapshot is at {joined.Member.SnapshotIndex}");

        var endpoints = new[] { cluster.Endpoint(0), cluster.Endpoint(1), cluster.Endpoint(2), $"127.0.0.1:{ports[0]}" };
        await AssertSameStateAsync(endpoints, expectedKeys: 200);
        Assert.Equal("OK\n", await Etcdctl.OkAsync(endpoints[3], "put", "after", "join"));
        Assert.Equal("after\njoin\n", await Etcdctl.OkAsync(endpoints[0], "get", "after"));
    }

    private static async Task PutManyAsync(string endpoint, string prefix, int from, int count)
    {
        using var channel = GrpcChannel.ForAddress("http://" + endpoint);
        var kv = new KV.KVClient(channel);
        var next = from - 1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < from + count)
            {
                await kv.PutAsync(new PutRequest
                {
                    Key = ByteString.CopyFromUtf8(prefix + i.ToString("d4", CultureInfo.InvariantCulture)),
                    Value = ByteString.CopyFromUtf8("value-" + i.ToString(CultureInfo.InvariantCulture)),
                }, deadline: DateTime.UtcNow.AddSeconds(20));
            }
        }));
    }

    private static Task WaitCaughtUpAsync(TestCluster cluster, int[] members) =>
        Eventually.TrueAsync(() =>
        {
            var commit = members.Max(i => cluster.Host(i).Member.CommitIndex);
            return members.All(i => cluster.Host(i).Member.AppliedIndex >= commit && cluster.Host(i).Member.Leader != 0);
        }, cluster.Describe, TimeSpan.FromSeconds(30));

    private static Task AssertSameStateAsync(TestCluster cluster, int[] members, int expectedKeys) =>
        AssertSameStateAsync([.. members.Select(cluster.Endpoint)], expectedKeys);

    /// <summary>Every member serves the same keys, values, revisions and HashKV from its own store (serializable reads).</summary>
    private static async Task AssertSameStateAsync(string[] endpoints, int expectedKeys)
    {
        var seen = new List<string>();
        foreach (var endpoint in endpoints)
        {
            using var channel = GrpcChannel.ForAddress("http://" + endpoint);
            var range = await new KV.KVClient(channel).RangeAsync(new RangeRequest
            {
                Key = ByteString.CopyFromUtf8("\0"),
                RangeEnd = ByteString.CopyFromUtf8("\0"),
                Serializable = true,
            });
            var hash = await new Maintenance.MaintenanceClient(channel).HashKVAsync(new HashKVRequest());
            Assert.Equal(expectedKeys, range.Kvs.Count(k => !k.Key.ToStringUtf8().StartsWith("after", StringComparison.Ordinal)));
            var dump = string.Join('\n', range.Kvs.Select(k => $"{k.Key.ToStringUtf8()}={k.Value.ToStringUtf8()} c{k.CreateRevision} m{k.ModRevision} v{k.Version} l{k.Lease}"));
            var leases = await new Lease.LeaseClient(channel).LeaseLeasesAsync(new LeaseLeasesRequest());
            seen.Add($"revision {range.Header.Revision} hashkv {hash.Hash} compact {hash.CompactRevision} leases [{string.Join(',', leases.Leases.Select(l => l.ID))}]\n{dump}");
        }

        for (var i = 1; i < seen.Count; i++)
        {
            Assert.True(seen[0] == seen[i], $"{endpoints[0]} and {endpoints[i]} differ:\n--- {endpoints[0]}\n{Head(seen[0])}\n--- {endpoints[i]}\n{Head(seen[i])}");
        }
    }

    private static string Head(string s) => s.Length > 2000 ? s[..2000] + "..." : s;

    private static async Task<string> MetricsAsync(string endpoint)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://{endpoint}/metrics");
    }

    private static double SnapshotsSent(string metrics) =>
        SendSuccessLine().Matches(metrics).Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));

    [GeneratedRegex(@"^etcd_network_snapshot_send_success\{[^}]*\} (\S+)$", RegexOptions.Multiline)]
    private static partial Regex SendSuccessLine();
}
