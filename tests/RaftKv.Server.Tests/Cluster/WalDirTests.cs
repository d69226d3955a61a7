using RaftKv.Server.Configuration;
using RaftKv.Server.Node;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's <c>--wal-dir</c>: the WAL on a dedicated directory (a separate disk), across restarts.</summary>
public sealed class WalDirTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("raftkv-waldir-");

    [Fact]
    public async Task The_wal_goes_to_wal_dir_and_a_restart_reads_it_from_there()
    {
        var walDir = Path.Combine(_dir.FullName, "wal-disk");
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: ["--wal-dir", walDir]);
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "on", "its-own-disk");

        Assert.NotEmpty(Directory.GetFiles(walDir, "*.wal"));
        Assert.False(Directory.Exists(Path.Combine(cluster.DataDir(0), "member", "wal")), "a WAL was also written in the data dir");

        await cluster.StopMemberAsync(0);
        await cluster.RestartAllAsync();
        await cluster.WaitForLeaderAsync();
        Assert.Equal("its-own-disk", (await Etcdctl.OkAsync(cluster.Endpoint(0), "get", "on", "--print-value-only")).Trim());
    }

    [Fact]
    public async Task A_wal_left_in_the_data_dir_is_not_replaced_by_an_empty_wal_dir()
    {
        await using var cluster = await TestCluster.StartAsync(size: 1);
        await cluster.WaitForLeaderAsync();
        await cluster.StopMemberAsync(0);
        var walDir = Path.Combine(_dir.FullName, "new-wal-disk");
        var config = MemberConfigParser.Parse([.. cluster.Args(0, 100, 1000), "--wal-dir", walDir], new Dictionary<string, string>());

        var e = await Assert.ThrowsAsync<MemberStartException>(() => MemberHost.StartAsync(config, new MemberHostOptions(), CancellationToken.None));

        Assert.Contains($"--wal-dir '{walDir}' holds no WAL but '{Path.Combine(cluster.DataDir(0), "member", "wal")}' does", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(walDir) && Directory.EnumerateFileSystemEntries(walDir).Any(), "a new WAL was founded");
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
