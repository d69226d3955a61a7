using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace RaftKv.Server.Tests.Cluster;

/// <summary><c>raftkv snapshot restore</c>: a new cluster from <c>etcdctl snapshot save</c>, and the files it refuses.</summary>
public sealed class SnapshotRestoreTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("raftkv-restore-");

    [Fact]
    public async Task A_saved_snapshot_restores_into_a_new_three_member_cluster_with_the_keys_revisions_and_leases()
    {
        long revision = 0;
        var lease = "";
        ulong oldClusterId = 0;
        var snapshot = await SnapshotAsync(async ep =>
        {
            await Etcdctl.OkAsync(ep, "put", "k1", "v1");
            await Etcdctl.OkAsync(ep, "put", "k2", "v2");
            await Etcdctl.OkAsync(ep, "del", "k2");
            lease = (await Etcdctl.OkAsync(ep, "lease", "grant", "600")).Split(' ')[1];
            await Etcdctl.OkAsync(ep, "put", "leased", "x", "--lease", lease);
            var status = JsonNode.Parse(await Etcdctl.OkAsync(ep, "endpoint", "status", "-w", "json"))![0]!["Status"]!;
            revision = status["header"]!["revision"]!.GetValue<long>();
            oldClusterId = status["header"]!["cluster_id"]!.GetValue<ulong>();
        });

        await using var restored = await TestCluster.RestoreAsync(snapshot);
        await restored.WaitForLeaderAsync();

        Assert.Equal("k1\nv1\nleased\nx", (await Etcdctl.OkAsync(restored.Endpoints, "get", "", "--from-key")).Trim());
        Assert.Contains(lease, await Etcdctl.OkAsync(restored.Endpoints, "lease", "list"), StringComparison.Ordinal);
        var put = JsonNode.Parse(await Etcdctl.OkAsync(restored.Endpoint(2), "put", "after", "restore", "-w", "json"))!["header"]!;
        Assert.Equal(revision + 1, put["revision"]!.GetValue<long>());
        Assert.NotEqual(oldClusterId, put["cluster_id"]!.GetValue<ulong>());
        var members = await Etcdctl.OkAsync(restored.Endpoints, "member", "list");
        for (var i = 0; i < 3; i++)
        {
            Assert.Contains($"started, r{i + 1}, http://127.0.0.1:{restored.PeerPorts[i]}, http://127.0.0.1:{restored.ClientPorts[i]}, false", members, StringComparison.Ordinal);
            // Started without --initial-cluster: the defaults name no member of this cluster, and none is taken from them.
            Assert.Equal(2, restored.Host(i).Member.Transport.PeerIds.Count);
        }

        // A member restored from the same file but started again later is still the same member (its WAL says so).
        await restored.StopMemberAsync(0);
        await restored.RestartAllAsync();
        await restored.WaitForLeaderAsync();
        Assert.Equal("restore", (await Etcdctl.OkAsync(restored.Endpoint(0), "get", "after", "--print-value-only", "--consistency=l")).Trim());
    }

    [Fact]
    public async Task A_member_that_joins_a_restored_cluster_gets_the_restored_keys_as_a_snapshot()
    {
        var snapshot = await SnapshotAsync(ep => Etcdctl.OkAsync(ep, "put", "restored", "key"));

        // One member restores the file and the others join, as the operator grows a cluster started from a snapshot: the
        // restored keys are in no log entry, so the leader must send its store.
        await using var cluster = await TestCluster.RestoreAsync(snapshot, size: 1);
        await cluster.WaitForLeaderAsync();
        var ports = FreePorts.Take(2);
        await Etcdctl.OkAsync(cluster.Endpoint(0), "member", "add", "r2", $"--peer-urls=http://127.0.0.1:{ports[1]}", "--learner");
        await using var joined = await cluster.StartJoiningMemberAsync("r2", ports[0], ports[1]);
        await Eventually.TrueAsync(() => joined.Member.AppliedIndex >= cluster.Host(0).Member.CommitIndex && joined.Member.Leader != 0,
            () => $"learner applied {joined.Member.AppliedIndex}, leader {joined.Member.Leader:x}; {cluster.Describe()}");

        Assert.Equal("restored\nkey\n", await Etcdctl.OkAsync($"127.0.0.1:{ports[0]}", "get", "restored", "--consistency=s"));
    }

    [Fact]
    public async Task A_new_member_started_with_restore_snapshot_restores_it_first_and_ignores_it_once_it_has_a_wal()
    {
        var snapshot = await SnapshotAsync(ep => Etcdctl.OkAsync(ep, "put", "carried", "over"));

        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: ["--restore-snapshot", snapshot]);
        await cluster.WaitForLeaderAsync();
        Assert.Equal("over", (await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "carried", "--print-value-only")).Trim());
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "written", "after");

        // A restart has a WAL: the file is not restored again over what was written since.
        await cluster.StopMemberAsync(0);
        await cluster.RestartAllAsync();
        await cluster.WaitForLeaderAsync();
        Assert.Equal("after", (await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "written", "--print-value-only", "--consistency=l")).Trim());
        Assert.False(Directory.Exists(Path.Combine(cluster.DataDir(0), ".restoring")), "the staging directory was left behind");
    }

    public static TheoryData<string, string, string> Refusals => new()
    {
        { "damaged", "", "is damaged: expected sha256" },
        { "no hash", "", "has no SHA-256 at its end (it was not written by 'etcdctl snapshot save'); to restore a copied store file anyway, add --skip-hash-check" },
        { "not a store", "--skip-hash-check", "is not a snapshot of a raftkv member" }, // nor is an etcd (bbolt) snapshot
        { "data dir in use", "", "exists and is not empty: restore into a new directory" },
        { "name not listed", "--name=other", "couldn't find local name \"other\" in the initial cluster configuration" },
        { "unknown flag", "--listen-client-urls=http://127.0.0.1:1", "unknown flag '--listen-client-urls=http://127.0.0.1:1' for snapshot restore" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void A_file_or_data_dir_that_cannot_be_used_is_refused_with_what_to_do_and_nothing_is_left_behind(string problem, string extraFlag, string expected)
    {
        var file = Path.Combine(_dir.FullName, "snap.db");
        var body = RandomNumberGenerator.GetBytes(4096); // the size of a store, but not a store
        byte[] content = problem switch
        {
            "damaged" => [.. body, .. SHA256.HashData(body.AsSpan(1))],
            "no hash" => body,
            _ => [.. body, .. SHA256.HashData(body)],
        };
        File.WriteAllBytes(file, content);
        var dataDir = Path.Combine(_dir.FullName, "m1.etcd");
        if (problem == "data dir in use")
        {
            Directory.CreateDirectory(dataDir);
            File.WriteAllText(Path.Combine(dataDir, "keep-me"), "a member's data");
        }

        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        string[] args = ["snapshot", "restore", file, "--name", "m1", "--data-dir", dataDir, "--initial-cluster", "m1=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380", .. extraFlag.Length > 0 ? new[] { extraFlag } : []];
        var code = Cli.Run(args, new Dictionary<string, string>(), stdout, stderr);

        Assert.True(code != 0, $"exit code 0: {stdout}");
        Assert.Contains(expected, stderr.ToString(), StringComparison.Ordinal);
        if (problem == "data dir in use")
        {
            Assert.Equal(["keep-me"], Directory.EnumerateFileSystemEntries(dataDir).Select(Path.GetFileName));
        }
        else
        {
            Assert.False(Directory.Exists(dataDir), $"{dataDir} was left behind");
        }
    }

    /// <summary>A one-member cluster that <paramref name="write"/> (given its endpoint) fills, saved with etcdctl snapshot save; returns the file.</summary>
    private async Task<string> SnapshotAsync(Func<string, Task> write)
    {
        var snapshot = Path.Combine(_dir.FullName, "snap.db");
        await using var source = await TestCluster.StartAsync(size: 1);
        await source.WaitForLeaderAsync();
        await write(source.Endpoint(0));
        await Etcdctl.OkAsync(source.Endpoint(0), "snapshot", "save", snapshot);
        return snapshot;
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
