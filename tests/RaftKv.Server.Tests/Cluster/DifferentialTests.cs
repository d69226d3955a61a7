using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>
/// The same etcdctl 3.4 session against Debian's etcd and against raftkv, both started here on loopback ports with temp
/// data dirs: the outputs must be identical once member ids, ports and timings are normalized.
/// </summary>
public sealed partial class DifferentialTests
{
    private const string EtcdPath = "/usr/bin/etcd";

    private static readonly string[][] Session =
    [
        ["put", "a", "1"], ["put", "b", "2"], ["put", "c", "3"], ["put", "d/x", "4"],
        ["get", "a"], ["get", "a", "c"], ["get", "", "--prefix", "--keys-only"], ["get", "", "--from-key", "--limit=2"],
        ["get", "", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"], ["get", "a", "--print-value-only"], ["get", "d/", "--prefix", "-w", "fields"],
        ["put", "a", "10", "--prev-kv"], ["del", "b", "--prev-kv"], ["get", "b"], ["get", "a", "--rev=2"], ["get", "a", "--rev=5", "-w", "fields"],
        ["txn", "<value(\"a\") = \"10\"\n\nput a 11\nget c\n\nput a fail\n\n"],
        ["txn", "<mod(\"a\") = \"2\"\n\nput a no\n\nget a\n\n"],
        ["compact", "4"], ["get", "a", "--rev=3"], ["get", "a", "--rev=99"], ["del", "", "--prefix"], ["get", "", "--prefix"],
        ["put", "", "empty"], ["get", ""], ["del", "nothing"],
        ["member", "list"], ["endpoint", "hashkv", "-w", "fields"],

        // Leases last: lease ids differ between servers and are stored in the KeyValues that hashkv hashes. {L1} is the id the
        // first grant printed. Only one key is attached when timetolive lists keys (etcd lists them in map order).
        ["lease", "grant", "60"], ["put", "lk1", "v", "--lease={L1}"], ["lease", "timetolive", "{L1}", "--keys"], ["lease", "list"],
        ["lease", "keep-alive", "--once", "{L1}"], ["put", "lk2", "v", "--lease={L1}"], ["put", "lk3", "v", "--lease={L1}"], ["put", "lk3", "w"],
        ["get", "lk", "--prefix"], ["lease", "revoke", "{L1}"], ["get", "lk", "--prefix"], ["lease", "timetolive", "{L1}"],
        ["lease", "keep-alive", "--once", "{L1}"], ["lease", "revoke", "{L1}"], ["put", "lk4", "v", "--lease=1234abcd"],
        ["lease", "grant", "9000000001"], ["lease", "list"], ["lease", "grant", "1"],
    ];

    /// <summary>With auto TLS on both sides: a client that skips verification of the self-signed certificate.</summary>
    private static readonly string[][] AutoTlsSession = [["put", "secure", "1"], ["get", "secure"], ["member", "list"]];

    private static readonly string[] SkipVerification = ["--insecure-transport=false", "--insecure-skip-tls-verify"];

    [Fact]
    public async Task An_etcdctl_session_prints_the_same_against_etcd_and_raftkv()
    {
        Assert.True(File.Exists(EtcdPath), $"{EtcdPath} (Debian's etcd-server) is required for differential tests");
        var (etcdOutput, _) = await RunAgainstEtcdAsync(Session);
        await using var cluster = await TestCluster.StartAsync(size: 1);
        await cluster.WaitForLeaderAsync();
        await Eventually.TrueAsync(() => cluster.Host(0).Member.Membership.List().All(m => m.ClientUrls.Count > 0), cluster.Describe);
        var raftkvOutput = Normalize(await RunSessionAsync(cluster.Endpoint(0), Session, []), [$"{cluster.Host(0).Member.MemberId:x}"]);

        if (etcdOutput != raftkvOutput)
        {
            var dump = Path.Combine(Path.GetTempPath(), "raftkv-differential");
            Directory.CreateDirectory(dump);
            await File.WriteAllTextAsync(Path.Combine(dump, "etcd.txt"), etcdOutput);
            await File.WriteAllTextAsync(Path.Combine(dump, "raftkv.txt"), raftkvOutput);
        }

        Assert.Equal(etcdOutput, raftkvOutput);

        // Both sides failing alike would also agree: the lease part must really have worked.
        foreach (var line in new[]
        {
            "lease LEASE1 granted with TTL(60s)", "lease LEASE1 granted with TTL(60s), remaining(Ns), attached keys([lk1])", "found 1 leases",
            "lease LEASE1 keepalived with TTL(60)", "lease LEASE1 revoked", "lease LEASE1 already expired", "etcdserver: requested lease not found",
            "etcdserver: too large lease TTL", "lease LEASE2 granted with TTL(2s)",
        })
        {
            Assert.True(raftkvOutput.Contains(line, StringComparison.Ordinal), $"'{line}' not in the output:\n{raftkvOutput}");
        }
    }

    [Fact]
    public async Task Auto_TLS_serves_the_same_session_and_lays_out_the_same_fixtures_as_etcd()
    {
        Assert.True(File.Exists(EtcdPath), $"{EtcdPath} (Debian's etcd-server) is required for differential tests");
        string[] autoTls = ["--auto-tls", "--peer-auto-tls"];
        var (etcdOutput, etcdFixtures) = await RunAgainstEtcdAsync(AutoTlsSession, "https", autoTls, SkipVerification);
        await using var cluster = await TestCluster.StartAsync(size: 1, extraArgs: autoTls, scheme: "https");
        await cluster.WaitForLeaderAsync();
        await Eventually.TrueAsync(() => cluster.Host(0).Member.Membership.List().All(m => m.ClientUrls.Count > 0), cluster.Describe);
        var raftkvOutput = Normalize(await RunSessionAsync("https://" + cluster.Endpoint(0), AutoTlsSession, SkipVerification), [$"{cluster.Host(0).Member.MemberId:x}"]);

        Assert.Equal(etcdOutput, raftkvOutput);
        Assert.Contains("secure\n1\n", raftkvOutput, StringComparison.Ordinal); // not both failing alike
        Assert.Contains("https://127.0.0.1:PORT, https://127.0.0.1:PORT", raftkvOutput, StringComparison.Ordinal);
        Assert.Equal(etcdFixtures, Fixtures(cluster.DataDir(0)));
    }

    /// <summary>The files under DATA_DIR/fixtures (auto TLS), relative and sorted.</summary>
    private static string Fixtures(string dataDir)
    {
        var root = Path.Combine(dataDir, "fixtures");
        return Directory.Exists(root)
            ? string.Join(", ", Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)).Order(StringComparer.Ordinal))
            : "(no fixtures)";
    }

    /// <summary>Runs <paramref name="session"/> against a one-member etcd on <paramref name="scheme"/> URLs with
    /// <paramref name="extraArgs"/>; returns the normalized output and the fixtures its data dir ended with.</summary>
    private static async Task<(string Output, string Fixtures)> RunAgainstEtcdAsync(string[][] session, string scheme = "http", string[]? extraArgs = null, string[]? etcdctlFlags = null)
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-etcd-");
        var ports = FreePorts.Take(2);
        var psi = new ProcessStartInfo(EtcdPath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "--name", "m1", "--data-dir", dir.FullName,
            "--listen-client-urls", $"{scheme}://127.0.0.1:{ports[0]}", "--advertise-client-urls", $"{scheme}://127.0.0.1:{ports[0]}",
            "--listen-peer-urls", $"{scheme}://127.0.0.1:{ports[1]}", "--initial-advertise-peer-urls", $"{scheme}://127.0.0.1:{ports[1]}",
            "--initial-cluster", $"m1={scheme}://127.0.0.1:{ports[1]}",
        }.Concat(extraArgs ?? []))
        {
            psi.ArgumentList.Add(a);
        }

        using var etcd = Process.Start(psi)!;
        etcd.OutputDataReceived += (_, _) => { };
        etcd.ErrorDataReceived += (_, _) => { };
        etcd.BeginOutputReadLine();
        etcd.BeginErrorReadLine();
        try
        {
            var endpoint = scheme == "http" ? $"127.0.0.1:{ports[0]}" : $"{scheme}://127.0.0.1:{ports[0]}";
            var flags = etcdctlFlags ?? [];
            var ids = new List<string>();
            await Eventually.TrueAsync(() =>
            {
                var (code, stdout, _) = Etcdctl.RunAsync(endpoint, [.. flags, "member", "list"]).GetAwaiter().GetResult();
                if (code == 0 && stdout.Contains("started", StringComparison.Ordinal))
                {
                    ids.Add(stdout.Split(',')[0]);
                    return true;
                }

                return false;
            }, () => "etcd did not start", TimeSpan.FromSeconds(30));
            return (Normalize(await RunSessionAsync(endpoint, session, flags), ids), Fixtures(dir.FullName));
        }
        finally
        {
            etcd.Kill(entireProcessTree: true);
            await etcd.WaitForExitAsync();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Runs each command of <paramref name="session"/> with <paramref name="flags"/> before it (flags not printed).</summary>
    private static async Task<string> RunSessionAsync(string endpoint, string[][] session, string[] flags)
    {
        var output = new StringBuilder();
        var leases = new List<string>();
        foreach (var command in session)
        {
            var input = command[^1].StartsWith('<') ? command[^1][1..] : "";
            var args = (input.Length > 0 ? command[..^1] : command)
                .Select(a => LeasePlaceholder().Replace(a, m => leases[int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - 1]))
                .ToArray();
            var (code, stdout, stderr) = await Etcdctl.RunWithInputAsync(endpoint, input, [.. flags, .. args]);
            leases.AddRange(LeaseGranted().Matches(stdout).Select(m => m.Groups[1].Value));
            output.Append("$ etcdctl ").AppendJoin(' ', args).Append('\n').Append(stdout);
            if (code != 0)
            {
                output.Append(stderr.Split('\n').LastOrDefault(l => l.StartsWith("Error:", StringComparison.Ordinal)) ?? $"(exit {code})").Append('\n');
            }
        }

        return output.ToString();
    }

    /// <summary>Member ids become ID, ports PORT; raft terms and hashes are kept (they must agree too, except where noted).</summary>
    private static string Normalize(string output, IEnumerable<string> memberIds)
    {
        foreach (var id in memberIds)
        {
            output = output.Replace(id, "ID", StringComparison.Ordinal);
        }

        output = Port().Replace(output, "127.0.0.1:PORT");

        // Lease ids become LEASE1, LEASE2... in the order they were granted; remaining seconds depend on timing.
        var granted = LeaseGranted().Matches(output).Select(m => m.Groups[1].Value).Distinct().ToList();
        for (var i = 0; i < granted.Count; i++)
        {
            output = output.Replace(granted[i], $"LEASE{i + 1}", StringComparison.Ordinal);
        }

        output = Remaining().Replace(output, "remaining(Ns)");
        output = HeaderIds().Replace(output, "\"${name}\" : X");
        return output;
    }

    [GeneratedRegex(@"lease ([0-9a-f]{16}) granted")]
    private static partial Regex LeaseGranted();

    [GeneratedRegex(@"\{L(\d+)\}")]
    private static partial Regex LeasePlaceholder();

    [GeneratedRegex(@"remaining\(\d+s\)")]
    private static partial Regex Remaining();

    [GeneratedRegex(@"127\.0\.0\.1:\d+")]
    private static partial Regex Port();

    [GeneratedRegex(@"""(?<name>ClusterID|MemberID|RaftTerm)"" : \d+")]
    private static partial Regex HeaderIds();
}
