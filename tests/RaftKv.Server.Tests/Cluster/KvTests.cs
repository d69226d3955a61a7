using System.Text.Json;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's KV API through Raft onto the MVCC store, driven with etcdctl 3.4.</summary>
public sealed class KvTests
{
    [Fact]
    public async Task Put_get_del_and_txn_behave_as_etcdctl_expects_from_any_member()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();

        Assert.Equal("OK\n", await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "foo", "bar"));
        Assert.Equal("foo\nbar\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "get", "foo"));
        Assert.Equal("foo\nbar\n", await Etcdctl.OkAsync(cluster.Endpoint(2), "get", "foo", "--consistency=s"));
        Assert.Equal("OK\n", await Etcdctl.OkAsync(cluster.Endpoint(2), "put", "foo2", "v2"));
        Assert.Equal("foo\nbar\nfoo2\nv2\n", await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "foo", "--prefix"));

        var txn = await Etcdctl.OkWithInputAsync(cluster.Endpoint(1), "value(\"foo\") = \"bar\"\n\nput foo baz\n\ndel foo\n\n", "txn");
        Assert.Equal("SUCCESS\n\nOK\n", txn);
        Assert.Equal("foo\nbaz\n", await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "foo"));
        var failed = await Etcdctl.OkWithInputAsync(cluster.Endpoint(1), "value(\"foo\") = \"bar\"\n\nput foo qux\n\nput foo2 other\n\n", "txn");
        Assert.Equal("FAILURE\n\nOK\n", failed);
        Assert.Equal("foo2\nother\n", await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "foo2"));
        Assert.Equal("1\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "del", "foo2"));
        Assert.Equal("", await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "foo2"));

        using var doc = JsonDocument.Parse(await Etcdctl.OkAsync(cluster.Endpoint(2), "get", "foo", "-w", "json"));
        var header = doc.RootElement.GetProperty("header");
        Assert.Equal(cluster.Host(2).Member.MemberId, header.GetProperty("member_id").GetUInt64());
        Assert.Equal(cluster.Host(2).Member.ClusterId, header.GetProperty("cluster_id").GetUInt64());
        Assert.Equal(6, header.GetProperty("revision").GetInt64()); // puts at 2 and 3, txns at 4 and 5, delete at 6
        Assert.True(header.GetProperty("raft_term").GetUInt64() >= 2);
        var kv = doc.RootElement.GetProperty("kvs")[0];
        Assert.Equal((2, 4, 2), (kv.GetProperty("create_revision").GetInt64(), kv.GetProperty("mod_revision").GetInt64(), kv.GetProperty("version").GetInt64()));
    }

    [Fact]
    public async Task Compaction_and_revision_errors_carry_etcds_texts()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "k", "v1");
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "k", "v2");
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "k", "v3");

        Assert.Equal("k\nv1\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "get", "k", "--rev=2"));
        Assert.Equal("compacted revision 3\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "compact", "3"));
        Assert.Equal("Error: etcdserver: mvcc: required revision has been compacted", await Etcdctl.FailsAsync(cluster.Endpoint(2), "get", "k", "--rev=2"));
        Assert.Equal("Error: etcdserver: mvcc: required revision is a future revision", await Etcdctl.FailsAsync(cluster.Endpoint(2), "get", "k", "--rev=99"));
        Assert.Equal("k\nv3\n", await Etcdctl.OkAsync(cluster.Endpoint(2), "get", "k"));

        var hashes = await Etcdctl.OkAsync(cluster.Endpoints, "endpoint", "hashkv");
        Assert.Single(hashes.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(", ")[1]).Distinct());
    }

    [Fact]
    public async Task Endpoint_health_commits_through_raft_and_snapshot_save_verifies()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "a", "1");

        var health = await Etcdctl.RunAsync(cluster.Endpoints, "endpoint", "health");
        Assert.True(health.Code == 0, health.Stderr);
        Assert.Equal(3, health.Stdout.Split('\n').Count(l => l.Contains("is healthy: successfully committed proposal", StringComparison.Ordinal)) +
                        health.Stderr.Split('\n').Count(l => l.Contains("is healthy: successfully committed proposal", StringComparison.Ordinal)));

        var path = Path.Combine(Path.GetTempPath(), $"raftkv-snap-{Guid.NewGuid():N}.db");
        try
        {
            var saved = await Etcdctl.OkAsync(cluster.Endpoint(1), "snapshot", "save", path);
            Assert.Contains($"Snapshot saved at {path}", saved, StringComparison.Ordinal);
            var bytes = await File.ReadAllBytesAsync(path);
            var body = bytes.AsSpan(0, bytes.Length - 32);
            Assert.True(System.Security.Cryptography.SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)), "the snapshot must end with the SHA-256 of its contents");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Data_survives_a_restart_of_every_member_from_its_wal_and_store()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "durable", "yes");
        var ids = Enumerable.Range(0, 3).Select(i => cluster.Host(i).Member.MemberId).ToList();

        for (var i = 0; i < 3; i++)
        {
            await cluster.StopMemberAsync(i);
        }

        await cluster.RestartAllAsync();
        await cluster.WaitForLeaderAsync();

        Assert.Equal(ids, Enumerable.Range(0, 3).Select(i => cluster.Host(i).Member.MemberId));
        Assert.Equal("durable\nyes\n", await Etcdctl.OkAsync(cluster.Endpoint(2), "get", "durable"));
        Assert.Equal("OK\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "put", "after", "restart"));
        Assert.Equal(3, (await Etcdctl.OkAsync(cluster.Endpoint(0), "member", "list")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
