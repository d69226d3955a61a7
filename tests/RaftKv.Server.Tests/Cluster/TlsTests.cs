using System.Net;
using RaftKv.Server.Configuration;
using RaftKv.Server.Node;
using RaftKv.TestPki;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's TLS flags on both sides, checked with Debian's etcdctl as the client.</summary>
public sealed class TlsTests
{
    [Fact]
    public async Task A_cluster_with_TLS_on_both_sides_serves_etcdctl_with_a_client_certificate_and_refuses_others()
    {
        using var certs = new TestCertificates();
        string[] tlsArgs =
        [
            "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey, "--trusted-ca-file", certs.CaCert, "--client-cert-auth",
            "--peer-cert-file", certs.ServerCert, "--peer-key-file", certs.ServerKey, "--peer-trusted-ca-file", certs.CaCert, "--peer-client-cert-auth",
        ];

        // The members find a leader only if their peer calls pass each other's certificate checks.
        await using var cluster = await TestCluster.StartAsync(extraArgs: tlsArgs, scheme: "https");
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;

        // Raft messages go on the peer wire, which runs inside TLS (it never falls back to cleartext nor to gRPC here).
        var links = Enumerable.Range(0, 3).SelectMany(i => cluster.Host(i).Member.Transport.Describe()).ToList();
        Assert.True(links.All(p => p.Link == RaftKv.Server.Peers.PeerLink.Wire), $"peer links: {string.Join(", ", links)}");
        string Endpoint(int i) => "https://" + cluster.Endpoint(i);
        string[] withClientCert = ["--cacert", certs.CaCert, "--cert", certs.ClientCert, "--key", certs.ClientKey];

        await Etcdctl.OkAsync(Endpoint(follower), [.. withClientCert, "put", "secure", "yes"]);
        Assert.Equal("secure\nyes\n", await Etcdctl.OkAsync(Endpoint(leader), [.. withClientCert, "get", "secure"]));
        var members = await Etcdctl.OkAsync(Endpoint(follower), [.. withClientCert, "member", "list"]);
        Assert.True(members.Split('\n', StringSplitOptions.RemoveEmptyEntries).All(l => l.Contains(", https://127.0.0.1:", StringComparison.Ordinal)),
            $"member list should advertise https URLs:\n{members}");

        // A follower forwards lease keep-alives to the leader's client URL, presenting its own certificate.
        var grant = await Etcdctl.OkAsync(Endpoint(follower), [.. withClientCert, "lease", "grant", "60"]);
        var leaseId = grant.Split(' ')[1];
        var kept = await Etcdctl.OkAsync(Endpoint(follower), [.. withClientCert, "lease", "keep-alive", "--once", leaseId]);
        Assert.Contains("keepalived with TTL(60)", kept, StringComparison.Ordinal);

        // Refused: no client certificate, one from another CA, and cleartext on the TLS port.
        await Etcdctl.FailsAsync(Endpoint(leader), "--cacert", certs.CaCert, "--dial-timeout=2s", "--command-timeout=3s", "get", "secure");
        await Etcdctl.FailsAsync(Endpoint(leader), "--cacert", certs.CaCert, "--cert", certs.RogueCert, "--key", certs.RogueKey, "--dial-timeout=2s", "--command-timeout=3s", "get", "secure");
        await Etcdctl.FailsAsync("http://" + cluster.Endpoint(leader), "--dial-timeout=2s", "--command-timeout=3s", "get", "secure");
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // file modes
    public async Task Auto_TLS_makes_a_certificate_per_side_that_etcdctl_can_trust_or_skip_and_keeps_it_across_restarts()
    {
        await using var cluster = await TestCluster.StartAsync(extraArgs: ["--auto-tls", "--peer-auto-tls"], scheme: "https");
        var leader = await cluster.WaitForLeaderAsync();

        // The members reach each other on the wire inside TLS without verifying each other's self-signed certificates.
        var links = Enumerable.Range(0, 3).SelectMany(i => cluster.Host(i).Member.Transport.Describe()).ToList();
        Assert.True(links.All(p => p.Link == RaftKv.Server.Peers.PeerLink.Wire), $"peer links: {string.Join(", ", links)}");
        string Endpoint(int i) => "https://" + cluster.Endpoint(i);
        var fixtures = Path.Combine(cluster.DataDir(leader), "fixtures");
        var clientCert = Path.Combine(fixtures, "client", "cert.pem");
        await Etcdctl.OkAsync(Endpoint(leader), "--insecure-transport=false", "--insecure-skip-tls-verify", "put", "auto", "tls");

        // The client certificate names the listen and advertise hosts, so a client can pin it; nobody else trusts it.
        Assert.Equal("auto\ntls\n", await Etcdctl.OkAsync(Endpoint(leader), "--cacert", clientCert, "get", "auto"));
        await Etcdctl.FailsAsync(Endpoint(leader), "--insecure-transport=false", "--dial-timeout=2s", "--command-timeout=3s", "get", "auto");
        await Etcdctl.FailsAsync("http://" + cluster.Endpoint(leader), "--dial-timeout=2s", "--command-timeout=3s", "get", "auto");
        foreach (var side in new[] { "client", "peer" })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(fixtures, side, "key.pem")));
        }

        // A restart serves the same certificate (a client that pinned it keeps working).
        var before = await File.ReadAllTextAsync(clientCert);
        await cluster.RestartAllAsync();
        leader = await cluster.WaitForLeaderAsync();
        Assert.Equal(before, await File.ReadAllTextAsync(clientCert));
        var memberZero = Path.Combine(cluster.DataDir(0), "fixtures", "client", "cert.pem");
        Assert.Equal("auto\ntls\n", await Etcdctl.OkAsync(Endpoint(0), "--cacert", memberZero, "get", "auto"));
    }

    [Fact]
    public async Task A_client_certificate_revoked_by_the_crl_file_is_refused_and_a_new_list_takes_effect_without_a_restart()
    {
        using var certs = new TestCertificates();
        var crl = certs.WriteCrl("crl.pem"); // nothing revoked yet
        await using var cluster = await TestCluster.StartAsync(size: 1, scheme: "https", extraArgs:
        [
            "--cert-file", certs.ServerCert, "--key-file", certs.ServerKey, "--trusted-ca-file", certs.CaCert, "--client-cert-auth", "--client-crl-file", crl,
            "--peer-cert-file", certs.ServerCert, "--peer-key-file", certs.ServerKey, "--peer-trusted-ca-file", certs.CaCert,
        ]);
        await cluster.WaitForLeaderAsync();
        var endpoint = "https://" + cluster.Endpoint(0);
        string[] asClient = ["--cacert", certs.CaCert, "--cert", certs.ClientCert, "--key", certs.ClientKey];
        string[] asMember = ["--cacert", certs.CaCert, "--cert", certs.ServerCert, "--key", certs.ServerKey]; // also valid for client use
        await Etcdctl.OkAsync(endpoint, [.. asClient, "put", "k", "before"]);

        certs.WriteCrl("crl.pem", certs.ClientCert);
        await Etcdctl.FailsAsync(endpoint, [.. asClient, "--dial-timeout=2s", "--command-timeout=3s", "get", "k"]);
        Assert.Equal("k\nbefore\n", await Etcdctl.OkAsync(endpoint, [.. asMember, "get", "k"]));

        certs.WriteCrl("crl.pem");
        Assert.Equal("k\nbefore\n", await Etcdctl.OkAsync(endpoint, [.. asClient, "get", "k"]));
    }

    [Fact]
    public async Task A_certificate_replaced_on_disk_is_served_to_new_connections_without_a_restart()
    {
        using var certs = new TestCertificates();
        using var renewed = new TestCertificates(); // another CA: which one a client must trust tells the certificates apart
        var dir = Directory.CreateTempSubdirectory("raftkv-rotate-");
        try
        {
            var cert = Path.Combine(dir.FullName, "server.pem");
            var key = Path.Combine(dir.FullName, "server-key.pem");
            File.Copy(certs.ServerCert, cert);
            File.Copy(certs.ServerKey, key);
            await using var cluster = await TestCluster.StartAsync(size: 1, scheme: "https", extraArgs:
            [
                "--cert-file", cert, "--key-file", key, "--trusted-ca-file", certs.CaCert, "--client-cert-auth",
                "--peer-cert-file", certs.ServerCert, "--peer-key-file", certs.ServerKey, "--peer-trusted-ca-file", certs.CaCert,
            ]);
            await cluster.WaitForLeaderAsync();
            var endpoint = "https://" + cluster.Endpoint(0);
            string[] clientCert = ["--cert", certs.ClientCert, "--key", certs.ClientKey];
            await Etcdctl.OkAsync(endpoint, [.. clientCert, "--cacert", certs.CaCert, "put", "k", "v"]);

            // A half-done rotation (new certificate, old key) keeps the old certificate in use.
            File.Copy(renewed.ServerCert, cert, overwrite: true);
            Assert.Equal("k\nv\n", await Etcdctl.OkAsync(endpoint, [.. clientCert, "--cacert", certs.CaCert, "get", "k"]));

            File.Copy(renewed.ServerKey, key, overwrite: true);
            Assert.Equal("k\nv\n", await Etcdctl.OkAsync(endpoint, [.. clientCert, "--cacert", renewed.CaCert, "get", "k"]));
            await Etcdctl.FailsAsync(endpoint, [.. clientCert, "--cacert", certs.CaCert, "--dial-timeout=2s", "--command-timeout=3s", "get", "k"]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_crl_file_that_cannot_be_parsed_ends_start_up_naming_the_file()
    {
        using var certs = new TestCertificates();
        string? crl = null;
        var e = await StartUpFailureAsync(async dir =>
        {
            crl = Path.Combine(dir, "crl.pem");
            await File.WriteAllTextAsync(crl, "not a revocation list");
            return ["--cert-file", certs.ServerCert, "--key-file", certs.ServerKey, "--trusted-ca-file", certs.CaCert, "--client-cert-auth", "--client-crl-file", crl];
        });
        Assert.Contains($"cannot load --client-crl-file {crl}", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Starts one member on an https:// client URL with the TLS flags <paramref name="clientTls"/> makes (given a
    /// temp dir), which must fail; returns the failure.</summary>
    private static async Task<MemberStartException> StartUpFailureAsync(Func<string, Task<string[]>> clientTls)
    {
        var ports = FreePorts.Take(2);
        var dir = Directory.CreateTempSubdirectory("raftkv-tls-");
        try
        {
            var config = MemberConfigParser.Parse(
            [
                "--name", "m1", "--data-dir", Path.Combine(dir.FullName, "m1"),
                "--listen-client-urls", $"https://127.0.0.1:{ports[0]}", "--advertise-client-urls", $"https://127.0.0.1:{ports[0]}",
                "--listen-peer-urls", $"http://127.0.0.1:{ports[1]}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{ports[1]}",
                "--initial-cluster", $"m1=http://127.0.0.1:{ports[1]}",
                .. await clientTls(dir.FullName),
            ], new Dictionary<string, string>());
            return await Assert.ThrowsAsync<MemberStartException>(() => MemberHost.StartAsync(config, new MemberHostOptions(), CancellationToken.None));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Metrics_urls_serve_metrics_and_health_only()
    {
        var port = FreePorts.Take(1)[0];
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: ["--listen-metrics-urls", $"http://127.0.0.1:{port}"]);
        await cluster.WaitForLeaderAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        var metrics = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.True(metrics.StatusCode == HttpStatusCode.OK && text.Contains("etcd_server_has_leader", StringComparison.Ordinal), $"/metrics: {metrics.StatusCode}\n{text[..Math.Min(300, text.Length)]}");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/health", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("/version", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task A_certificate_that_cannot_be_loaded_ends_start_up_naming_the_file()
    {
        using var certs = new TestCertificates();
        var e = await StartUpFailureAsync(_ => Task.FromResult<string[]>(
            ["--cert-file", certs.ServerCert, "--key-file", certs.ClientKey])); // a key that belongs to another certificate
        Assert.Contains($"cannot load --cert-file {certs.ServerCert} with --key-file {certs.ClientKey}", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>A CA, a member certificate (127.0.0.1 and localhost, server and client use), a client certificate, and one from another CA, as PEM files.</summary>
internal sealed class TestCertificates : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("raftkv-certs-");

    private readonly TestCa _ca = new("raftkv test CA");
    private int _crlNumber;

    public TestCertificates()
    {
        using var rogueCa = new TestCa("someone else's CA");
        CaCert = Write("ca.pem", _ca.CertificatePem);
        (ServerCert, ServerKey) = Issue(_ca, "member", "server");
        (ClientCert, ClientKey) = Issue(_ca, "client", "client");
        (RogueCert, RogueKey) = Issue(rogueCa, "client", "rogue");
    }

    /// <summary>Writes (or rewrites) <paramref name="name"/>: a PEM CRL of the test CA revoking the certificates in <paramref name="revokedCertFiles"/>.</summary>
    public string WriteCrl(string name, params string[] revokedCertFiles) =>
        Write(name, _ca.RevocationListPem(revokedCertFiles.Select(File.ReadAllText), ++_crlNumber));

    public string CaCert { get; }

    public string ServerCert { get; }

    public string ServerKey { get; }

    public string ClientCert { get; }

    public string ClientKey { get; }

    public string RogueCert { get; }

    public string RogueKey { get; }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Delete(recursive: true);
    }

    /// <summary>A certificate for 127.0.0.1 and localhost, server and client use, written as FILE.pem and FILE-key.pem.</summary>
    private (string Cert, string Key) Issue(TestCa ca, string name, string file)
    {
        var pair = ca.Issue(name, ["localhost"], [IPAddress.Loopback]);
        return (Write(file + ".pem", pair.Certificate), Write(file + "-key.pem", pair.Key));
    }

    private string Write(string name, string pem)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, pem);
        return path;
    }
}
