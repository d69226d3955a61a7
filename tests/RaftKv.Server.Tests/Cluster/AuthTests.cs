using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Time.Testing;
using RaftKv.Protocol.Etcd;
using RaftKv.Server.Auth;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>
/// etcd auth across a cluster: tokens valid on every member, permissions enforced at once when revoked, watches refused,
/// users and the enabled flag surviving restarts and reaching a member that joins through a Raft snapshot.
/// </summary>
public sealed class AuthTests
{
    private static readonly string[] SnapshotFlags = ["--snapshot-count", "50", "--experimental-snapshot-catchup-entries", "10", "--bcrypt-cost", "4"];
    private static readonly string[] Root = ["--user", "root:pw"];

    /// <summary>root (root role), role r with READWRITE on prefix /a/, alice with r; then auth enable.</summary>
    private static async Task SetUpUsersAsync(string endpoint)
    {
        await Etcdctl.OkAsync(endpoint, "user", "add", "root:pw");
        await Etcdctl.OkAsync(endpoint, "user", "grant-role", "root", "root");
        await Etcdctl.OkAsync(endpoint, "role", "add", "r");
        await Etcdctl.OkAsync(endpoint, "role", "grant-permission", "r", "readwrite", "/a/", "--prefix");
        await Etcdctl.OkAsync(endpoint, "user", "add", "alice:pw");
        await Etcdctl.OkAsync(endpoint, "user", "grant-role", "alice", "r");
        Assert.Equal("Authentication Enabled\n", await Etcdctl.OkAsync(endpoint, "auth", "enable"));
    }

    private static async Task<string> AuthenticateAsync(string endpoint, string user, string password)
    {
        using var channel = GrpcChannel.ForAddress("http://" + endpoint);
        var response = await new Protocol.Etcd.Auth.AuthClient(channel).AuthenticateAsync(new AuthenticateRequest { Name = user, Password = password },
            deadline: DateTime.UtcNow.AddSeconds(20));
        return response.Token;
    }

    private static Metadata WithToken(string token) => new() { { "token", token } };

    private static PutRequest Put(string key, string value) => new() { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) };

    [Fact]
    public async Task With_auth_enabled_live_timing_changes_need_the_root_role_and_measurements_stay_open()
    {
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: ["--bcrypt-cost", "4"]);
        await cluster.WaitForLeaderAsync();
        await SetUpUsersAsync(cluster.Endpoint(0));
        using var channel = GrpcChannel.ForAddress("http://" + cluster.Endpoint(0));
        var admin = new Protocol.Admin.Admin.AdminClient(channel);
        var timing = new Protocol.Admin.SetTimingRequest { Timing = new Protocol.Admin.Timing { HeartbeatIntervalMs = 150, ElectionTimeoutMs = 1500 } };

        var anonymous = await Assert.ThrowsAsync<RpcException>(async () => await admin.SetTimingAsync(timing));
        Assert.Equal("etcdserver: user name is empty", anonymous.Status.Detail);
        var alice = await Assert.ThrowsAsync<RpcException>(async () => await admin.SetTimingAsync(timing, WithToken(await AuthenticateAsync(cluster.Endpoint(0), "alice", "pw"))));
        Assert.Equal((StatusCode.PermissionDenied, "etcdserver: permission denied"), (alice.StatusCode, alice.Status.Detail));
        Assert.Equal((100, 1000), cluster.Host(0).Member.Timing);

        await admin.SetTimingAsync(timing, WithToken(await AuthenticateAsync(cluster.Endpoint(0), "root", "pw")));
        Assert.Equal((150, 1500), cluster.Host(0).Member.Timing);
        Assert.Equal(150u, (await admin.MeasurementsAsync(new Protocol.Admin.MeasurementsRequest())).Timing.HeartbeatIntervalMs);
    }

    [Fact]
    public async Task A_token_from_one_member_works_on_the_others_and_a_revoked_permission_is_enforced_at_once()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: ["--bcrypt-cost", "4"]);
        await cluster.WaitForLeaderAsync();
        await SetUpUsersAsync(cluster.Endpoint(0));

        var token = await AuthenticateAsync(cluster.Endpoint(0), "alice", "pw");
        Assert.Matches("^[a-zA-Z]{16}\\.[0-9]+$", token);
        using var channel1 = GrpcChannel.ForAddress("http://" + cluster.Endpoint(1));
        using var channel2 = GrpcChannel.ForAddress("http://" + cluster.Endpoint(2));
        var kv1 = new KV.KVClient(channel1);
        var kv2 = new KV.KVClient(channel2);
        await kv2.PutAsync(Put("/a/1", "v"), WithToken(token));
        var got = await kv1.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/a/1") }, WithToken(token));
        Assert.Equal("v", got.Kvs.Single().Value.ToStringUtf8());
        // The "authorization" header newer clients send works as well.
        await kv1.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/a/1") }, new Metadata { { "authorization", token } });

        var denied = await Assert.ThrowsAsync<RpcException>(async () => await kv1.PutAsync(Put("/b", "v"), WithToken(token)));
        Assert.Equal((StatusCode.PermissionDenied, "etcdserver: permission denied"), (denied.StatusCode, denied.Status.Detail));
        var noUser = await Assert.ThrowsAsync<RpcException>(async () => await kv1.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/a/1") }));
        Assert.Equal("etcdserver: user name is empty", noUser.Status.Detail);
        var badToken = await Assert.ThrowsAsync<RpcException>(async () => await kv2.PutAsync(Put("/a/1", "v"), WithToken("abcdefghijklmnop.1")));
        Assert.Equal((StatusCode.Unauthenticated, "etcdserver: invalid auth token"), (badToken.StatusCode, badToken.Status.Detail));

        // A watch outside the user's range is created and canceled at once, with etcd's reason.
        var watch = new Watch.WatchClient(channel2).Watch(WithToken(token));
        await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("/b") } });
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        var refused = watch.ResponseStream.Current;
        Assert.Equal((true, true, -1L, "etcdserver: permission denied"), (refused.Created, refused.Canceled, refused.WatchId, refused.CancelReason));
        await watch.RequestStream.CompleteAsync();
        watch.Dispose();

        // Passwords are hashed before they go through Raft: no data dir holds one (WAL, store, snapshots).
        const string secret = "Sup3r-S3cret-Passw0rd";
        await Etcdctl.OkAsync(cluster.Endpoint(2), [.. Root, "user", "add", "carol:" + secret]);
        await Eventually.TrueAsync(() => Enumerable.Range(0, 3).All(i => cluster.Host(i).Member.AppliedIndex >= cluster.Host(2).Member.AppliedIndex), cluster.Describe);
        var holding = Enumerable.Range(0, 3).SelectMany(i => Directory.EnumerateFiles(cluster.DataDir(i), "*", SearchOption.AllDirectories))
            .Where(f => System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(f)).Contains(secret, StringComparison.Ordinal)).ToList();
        Assert.True(holding.Count == 0, $"files holding the password: {string.Join(", ", holding)}");
        Assert.Equal("User: carol\nRoles:\n", await Etcdctl.OkAsync(cluster.Endpoint(0), [.. Root, "user", "get", "carol"]));

        // Revoked through member 1: the next write and read with the same token on member 2 are refused.
        await Etcdctl.OkAsync(cluster.Endpoint(1), [.. Root, "role", "revoke-permission", "r", "/a/", "--prefix"]);
        var afterRevoke = await Assert.ThrowsAsync<RpcException>(async () => await kv2.PutAsync(Put("/a/2", "v"), WithToken(token)));
        Assert.Contains(afterRevoke.Status.Detail, new[] { "etcdserver: permission denied", "etcdserver: revision of auth store is old" });
        var readAfterRevoke = await Assert.ThrowsAsync<RpcException>(async () => await kv2.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/a/1") }, WithToken(token)));
        Assert.Equal("etcdserver: permission denied", readAfterRevoke.Status.Detail);

        // A changed password ends the user's tokens on every member.
        await Etcdctl.OkWithInputAsync(cluster.Endpoint(0), "pw2\n", [.. Root, "user", "passwd", "alice", "--interactive=false"]);
        await Eventually.TrueAsync(() => Enumerable.Range(0, 3).All(i => cluster.Host(i).Member.AppliedIndex >= cluster.Host(0).Member.AppliedIndex), cluster.Describe);
        var stale = await Assert.ThrowsAsync<RpcException>(async () => await kv1.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/a/1") }, WithToken(token)));
        Assert.Equal("etcdserver: invalid auth token", stale.Status.Detail);
    }

    [Fact]
    public async Task Users_survive_a_restart_and_reach_a_member_that_joins_through_a_snapshot()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: SnapshotFlags, walSegmentBytes: 4096);
        var leader = await cluster.WaitForLeaderAsync();
        await SetUpUsersAsync(cluster.Endpoint(leader));
        var token = await AuthenticateAsync(cluster.Endpoint(leader), "root", "pw");
        using (var channel = GrpcChannel.ForAddress("http://" + cluster.Endpoint(leader)))
        {
            var kv = new KV.KVClient(channel);
            for (var i = 0; i < 150; i++)
            {
                await kv.PutAsync(Put("/a/" + i.ToString("d3", CultureInfo.InvariantCulture), "v"), WithToken(token), deadline: DateTime.UtcNow.AddSeconds(20));
            }
        }

        await Eventually.TrueAsync(() => cluster.Host(leader).Member.LogFirstIndex > 100, cluster.Describe);
        var ports = FreePorts.Take(2);
        await Etcdctl.OkAsync(cluster.Endpoints, [.. Root, "member", "add", "m4", $"--peer-urls=http://127.0.0.1:{ports[1]}"]);
        await using (var joined = await cluster.StartJoiningMemberAsync("m4", ports[0], ports[1]))
        {
            await Eventually.TrueAsync(() => joined.Member.AppliedIndex >= cluster.Host(leader).Member.CommitIndex && joined.Member.Leader != 0,
                () => $"new member applied {joined.Member.AppliedIndex}, snapshot {joined.Member.SnapshotIndex}; {cluster.Describe()}");
            Assert.True(joined.Member.SnapshotIndex > 100, $"the new member's snapshot is at {joined.Member.SnapshotIndex}");

            // The password check runs on the member asked: the new member knows alice from the snapshot.
            var newMember = $"127.0.0.1:{ports[0]}";
            Assert.Equal("/a/007\nv\n", await Etcdctl.OkAsync(newMember, "--user", "alice:pw", "get", "/a/007"));
            Assert.Equal("Error: etcdserver: user name is empty", await Etcdctl.FailsAsync(newMember, "get", "/a/007"));
            Assert.Equal("alice\nroot\n", await Etcdctl.OkAsync(newMember, [.. Root, "user", "list"]));
        }

        foreach (var i in Enumerable.Range(0, 3))
        {
            await cluster.StopMemberAsync(i);
        }

        await cluster.RestartAllAsync();
        await cluster.WaitForLeaderAsync();
        Assert.Equal("Error: etcdserver: user name is empty", await Etcdctl.FailsAsync(cluster.Endpoint(1), "get", "/a/007"));
        Assert.Equal("/a/007\nv\n", await Etcdctl.OkAsync(cluster.Endpoint(1), "--user", "alice:pw", "get", "/a/007"));
        Assert.Equal("Error: etcdserver: permission denied", await Etcdctl.FailsAsync(cluster.Endpoint(2), "--user", "alice:pw", "put", "/b", "v"));
    }

    [Fact]
    public async Task With_client_cert_auth_the_certificates_common_name_is_the_user_when_no_token_is_given()
    {
        using var certs = new TestCertificates();
        string[] tls =
        [
            "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey, "--trusted-ca-file", certs.CaCert, "--client-cert-auth",
            "--peer-cert-file", certs.ServerCert, "--peer-key-file", certs.ServerKey, "--peer-trusted-ca-file", certs.CaCert, "--bcrypt-cost", "4",
        ];
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: tls, scheme: "https");
        await cluster.WaitForLeaderAsync();
        var endpoint = "https://" + cluster.Endpoint(0);
        string[] asClient = ["--cacert", certs.CaCert, "--cert", certs.ClientCert, "--key", certs.ClientKey]; // CN "client"
        await Etcdctl.OkAsync(endpoint, [.. asClient, "user", "add", "root:pw"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "user", "grant-role", "root", "root"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "role", "add", "r"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "role", "grant-permission", "r", "readwrite", "/a/", "--prefix"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "user", "add", "client", "--no-password"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "user", "grant-role", "client", "r"]);
        await Etcdctl.OkAsync(endpoint, [.. asClient, "auth", "enable"]);

        Assert.Equal("OK\n", await Etcdctl.OkAsync(endpoint, [.. asClient, "put", "/a/x", "1"]));
        Assert.Equal("Error: etcdserver: permission denied", await Etcdctl.FailsAsync(endpoint, [.. asClient, "put", "/b", "1"]));
        Assert.Equal("Error: etcdserver: permission denied", await Etcdctl.FailsAsync(endpoint, [.. asClient, "user", "list"]));
        Assert.Equal("OK\n", await Etcdctl.OkAsync(endpoint, [.. asClient, .. Root, "put", "/b", "1"])); // a token wins over the certificate
        var noPassword = await Etcdctl.FailsAsync(endpoint, [.. asClient, "--user", "client:x", "get", "/a/x"]);
        Assert.Contains("auth: authentication failed, password was given for no password user", noPassword, StringComparison.Ordinal);
    }

    [Fact]
    public void Simple_tokens_expire_after_the_ttl_since_their_last_use()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
        var tokens = new SimpleTokens(TimeSpan.FromSeconds(300), time);
        var token = SimpleTokens.Token(SimpleTokens.NewPrefix(), 42);
        Assert.True(SimpleTokens.TryParseIndex(token, out var index) && index == 42);
        Assert.False(SimpleTokens.TryParseIndex("no-index", out _));
        tokens.Assign(token, "alice");
        time.Advance(TimeSpan.FromSeconds(299));
        Assert.Equal("alice", tokens.Use(token)); // used: lives another 300 s
        time.Advance(TimeSpan.FromSeconds(299));
        Assert.Equal("alice", tokens.Use(token));
        time.Advance(TimeSpan.FromSeconds(301));
        Assert.Null(tokens.Use(token));
        tokens.Assign(token, "alice");
        tokens.InvalidateUser("alice");
        Assert.Null(tokens.Use(token));
    }
}
