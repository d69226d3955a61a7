namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's auth through etcdctl 3.4: the same session against Debian's etcd and raftkv prints the same.</summary>
public sealed partial class DifferentialTests
{
    private static readonly string[] Root = ["--user", "root:pw"];
    private static readonly string[] Alice = ["--user", "alice:pw"];

    private static readonly string[][] AuthSession =
    [
        ["user", "add", "root:pw"], ["user", "add", "root:pw"], ["role", "add", "r"], ["role", "add", "r"], ["role", "add", "root"],
        ["role", "grant-permission", "r", "readwrite", "/a/", "--prefix"], ["role", "grant-permission", "r", "read", "/k"],
        ["role", "grant-permission", "r", "write", "/z", "--from-key"], ["role", "grant-permission", "nope", "read", "/k"],
        ["user", "add", "alice:pw"], ["user", "grant-role", "alice", "r"], ["user", "grant-role", "alice", "nope"], ["user", "grant-role", "bob", "r"], ["user", "add", "nopw", "--no-password"],
        ["auth", "enable"], // root has no root role yet: etcdctl adds the role, which exists
        ["user", "grant-role", "root", "root"], ["auth", "enable"],
        ["auth", "enable"], // now without credentials
        [.. Alice, "put", "/a/x", "1"], [.. Alice, "get", "/a/x"], [.. Alice, "get", "/a/", "--prefix"], [.. Alice, "put", "/b", "1"],
        [.. Alice, "get", "/b"], [.. Alice, "get", "/k"], [.. Alice, "put", "/k", "v"], [.. Alice, "put", "/zz", "v"],
        [.. Alice, "txn", "<value(\"/a/x\") = \"1\"\n\nput /a/y 2\n\nget /a/x\n\n"],
        [.. Alice, "txn", "<value(\"/a/x\") = \"1\"\n\nput /a/y 3\n\nget /b\n\n"], [.. Alice, "txn", "<value(\"/b\") = \"1\"\n\nget /a/x\n\n\n"],
        [.. Alice, "del", "/a/x", "--prev-kv"], [.. Alice, "compact", "2"],
        [.. Root, "lease", "grant", "60"], [.. Root, "put", "/b", "v", "--lease={L1}"], [.. Alice, "put", "/a/l", "v", "--lease={L1}"],
        [.. Alice, "lease", "revoke", "{L1}"], [.. Root, "lease", "revoke", "{L1}"], ["--user", "nopw:x", "get", "/a/x"],
        ["--user", "alice:bad", "get", "/a/x"], ["--user", "bob:pw", "get", "/a/x"], ["get", "/a/x"], ["put", "/a/x", "1"],
        [.. Root, "role", "get", "r"], [.. Root, "role", "get", "nope"], [.. Root, "user", "get", "alice"], [.. Root, "user", "get", "bob"],
        [.. Root, "user", "list"], [.. Root, "role", "list"], [.. Alice, "user", "get", "alice"], [.. Alice, "role", "get", "r"],
        [.. Alice, "user", "list"], [.. Alice, "role", "add", "x"], [.. Alice, "member", "list"], [.. Alice, "endpoint", "hashkv"], [.. Alice, "defrag"],
        [.. Root, "user", "revoke-role", "root", "root"], [.. Root, "user", "delete", "root"], [.. Root, "role", "delete", "root"],
        [.. Root, "role", "revoke-permission", "r", "/a/", "--prefix"], [.. Root, "role", "revoke-permission", "r", "/nothing"],
        [.. Alice, "get", "/a/y"], [.. Root, "user", "revoke-role", "alice", "r"], [.. Root, "user", "revoke-role", "alice", "r"],
        [.. Root, "user", "passwd", "alice", "--interactive=false", "<pw2\n"], [.. Alice, "get", "/k"], ["--user", "alice:pw2", "get", "/k"],
        [.. Root, "role", "delete", "r"], [.. Root, "user", "delete", "alice"], [.. Root, "user", "delete", "alice"],
        [.. Root, "auth", "disable"], ["auth", "disable"], ["get", "/a/y"], ["user", "list"], ["role", "list"],
    ];

    [Fact]
    public async Task An_etcdctl_auth_session_prints_the_same_against_etcd_and_raftkv()
    {
        Assert.True(File.Exists(EtcdPath), $"{EtcdPath} (Debian's etcd-server) is required for differential tests");
        var (etcdOutput, _) = await RunAgainstEtcdAsync(AuthSession);
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: ["--bcrypt-cost", "4"]);
        await cluster.WaitForLeaderAsync();
        await Eventually.TrueAsync(() => cluster.Host(0).Member.Membership.List().All(m => m.ClientUrls.Count > 0), cluster.Describe);
        var raftkvOutput = Normalize(await RunSessionAsync(cluster.Endpoint(0), AuthSession, []), [$"{cluster.Host(0).Member.MemberId:x}"]);

        Assert.Equal(etcdOutput, raftkvOutput);

        // Both sides failing alike would also agree: auth must really have been enabled and enforced.
        foreach (var line in new[]
        {
            "Authentication Enabled", "$ etcdctl --user alice:pw get /a/x\n/a/x\n1\n", "$ etcdctl --user alice:pw put /b 1\nError: etcdserver: permission denied",
            "Error: etcdserver: authentication failed, invalid user ID or password", "$ etcdctl get /a/x\nError: etcdserver: user name is empty",
            "KV Read:\n\t[/a/, /a0) (prefix /a/)\n\t/k\nKV Write:\n\t[/a/, /a0) (prefix /a/)\n\t[/z, <open ended>", "Error: etcdserver: invalid auth management",
            "Error: rpc error: code = Unknown desc = auth: permission denied", "Password updated", "Authentication Disabled", "Error: etcdserver: user name already exists",
            "Error: etcdserver: role is not granted to the user", "Error: etcdserver: permission is not granted to the role",
            "$ etcdctl --user alice:pw lease revoke LEASE1\nError: failed to revoke lease (etcdserver: permission denied)", "$ etcdctl --user root:pw lease revoke LEASE1\nlease LEASE1 revoked",
            "$ etcdctl --user alice:pw put /a/l v --lease=LEASE1\nError: etcdserver: permission denied", "password was given for no password user",
        })
        {
            Assert.True(raftkvOutput.Contains(line, StringComparison.Ordinal), $"'{line}' not in the output:\n{raftkvOutput}");
        }
    }
}
