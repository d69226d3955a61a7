using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using RaftKv.Server.Configuration;
using RaftKv.Server.Node;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>Free loopback TCP ports (bound and released; the OS does not hand them out again soon).</summary>
internal static class FreePorts
{
    public static int[] Take(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }
}

/// <summary>
/// A cluster of in-process raftkv members on loopback ports with temp data dirs, started from etcd command lines
/// (parsed as the program parses them). Disposing stops every member and deletes the dirs.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly DirectoryInfo _root;
    private readonly MemberHost?[] _hosts;

    private TestCluster(DirectoryInfo root, string[] names, int[] clientPorts, int[] peerPorts, string token)
    {
        _root = root;
        Names = names;
        ClientPorts = clientPorts;
        PeerPorts = peerPorts;
        Token = token;
        _hosts = new MemberHost?[names.Length];
    }

    public string[] Names { get; }

    public int[] ClientPorts { get; }

    public int[] PeerPorts { get; }

    public string Token { get; }

    /// <summary>http, or https for members started with TLS flags in their extra arguments.</summary>
    public string Scheme { get; private init; } = "http";

    public string InitialCluster => string.Join(',', Names.Select((n, i) => $"{n}={Scheme}://127.0.0.1:{PeerPorts[i]}"));

    public string Endpoint(int i) => $"127.0.0.1:{ClientPorts[i]}";

    public string Endpoints => string.Join(',', Enumerable.Range(0, Names.Length).Where(i => _hosts[i] is not null).Select(Endpoint));

    public MemberHost Host(int i) => _hosts[i] ?? throw new InvalidOperationException($"member {i} is stopped");

    public bool IsRunning(int i) => _hosts[i] is not null;

    /// <summary>Starts <paramref name="size"/> members with the given timing; <paramref name="extraArgs"/> go to every member
    /// (e.g. --snapshot-count), <paramref name="walSegmentBytes"/> sets their WAL segment size (default: the product's 64 MiB).</summary>
    public static async Task<TestCluster> StartAsync(int size = 3, int heartbeatMs = 100, int electionMs = 1000, string[]? extraArgs = null, long? walSegmentBytes = null,
        string scheme = "http")
    {
        var root = Directory.CreateTempSubdirectory("raftkv-test-");
        var ports = FreePorts.Take(2 * size);
        var cluster = new TestCluster(root, [.. Enumerable.Range(1, size).Select(i => $"m{i}")], ports[..size], ports[size..], "token-" + root.Name)
        {
            _extraArgs = extraArgs ?? [],
            _walSegmentBytes = walSegmentBytes,
            Scheme = scheme,
        };
        try
        {
            await Task.WhenAll(Enumerable.Range(0, size).Select(i => cluster.StartMemberAsync(i, heartbeatMs, electionMs)));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>
    /// A new cluster of <paramref name="size"/> members whose data dirs are made by <c>raftkv snapshot restore</c> from
    /// <paramref name="snapshotFile"/> (the command line, each with its own --name), then started as etcd's recovery guide
    /// starts them: with their data dir and URLs but no --initial-cluster flags (the restored WAL says who they are).
    /// </summary>
    public static async Task<TestCluster> RestoreAsync(string snapshotFile, int size = 3)
    {
        var root = Directory.CreateTempSubdirectory("raftkv-test-");
        var ports = FreePorts.Take(2 * size);
        var cluster = new TestCluster(root, [.. Enumerable.Range(1, size).Select(i => $"r{i}")], ports[..size], ports[size..], "restored-" + root.Name) { _restored = true };
        try
        {
            for (var i = 0; i < size; i++)
            {
                using var stdout = new StringWriter();
                using var stderr = new StringWriter();
                var code = Cli.Run(["snapshot", "restore", snapshotFile, "--name", cluster.Names[i], "--data-dir", cluster.DataDir(i),
                    "--initial-cluster", cluster.InitialCluster, "--initial-cluster-token", cluster.Token,
                    "--initial-advertise-peer-urls", $"http://127.0.0.1:{cluster.PeerPorts[i]}"], new Dictionary<string, string>(), stdout, stderr);
                Assert.True(code == 0, $"raftkv snapshot restore exited {code}: {stdout}{stderr}");
            }

            await Task.WhenAll(Enumerable.Range(0, size).Select(i => cluster.StartMemberAsync(i, 100, 1000)));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>
    /// A cluster whose members all advertise a client URL on which nothing listens, as when client URLs are reachable only by
    /// clients (a load balancer, another network): what members hand to each other has to go over the peer URLs.
    /// </summary>
    public static Task<TestCluster> StartWithClientUrlsOutOfReachAsync() =>
        StartAsync(extraArgs: ["--advertise-client-urls", $"http://127.0.0.1:{FreePorts.Take(1)[0]}"]);

    public string[] Args(int i, int heartbeatMs, int electionMs) =>
    [
        "--name", Names[i],
        "--data-dir", Path.Combine(_root.FullName, Names[i]),
        "--listen-client-urls", $"{Scheme}://127.0.0.1:{ClientPorts[i]}",
        "--advertise-client-urls", $"{Scheme}://127.0.0.1:{ClientPorts[i]}",
        "--listen-peer-urls", $"{Scheme}://127.0.0.1:{PeerPorts[i]}",
        "--initial-advertise-peer-urls", $"{Scheme}://127.0.0.1:{PeerPorts[i]}",
        "--initial-cluster", InitialCluster,
        "--initial-cluster-token", Token,
        "--heartbeat-interval", heartbeatMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--election-timeout", electionMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
    ];

    private int _heartbeatMs;
    private int _electionMs;
    private string[] _extraArgs = [];
    private long? _walSegmentBytes;
    private bool _restored;

    /// <summary>The data dir of member <paramref name="i"/>.</summary>
    public string DataDir(int i) => Path.Combine(_root.FullName, Names[i]);

    /// <summary>Starts every stopped member again on its data dir (restart from WAL and store).</summary>
    public Task RestartAllAsync() =>
        Task.WhenAll(Enumerable.Range(0, _hosts.Length).Where(i => _hosts[i] is null).Select(i => StartMemberAsync(i, _heartbeatMs, _electionMs)));

    private async Task StartMemberAsync(int i, int heartbeatMs, int electionMs)
    {
        _heartbeatMs = heartbeatMs;
        _electionMs = electionMs;
        string[] args = [.. Args(i, heartbeatMs, electionMs), .. _extraArgs];
        if (_restored)
        {
            args = [.. args.Chunk(2).Where(pair => pair[0] is not ("--initial-cluster" or "--initial-cluster-token")).SelectMany(pair => pair)];
        }

        var config = MemberConfigParser.Parse(args, new Dictionary<string, string>());
        _hosts[i] = await MemberHost.StartAsync(config, new MemberHostOptions { EnableTestHooks = true, WalSegmentBytes = _walSegmentBytes }, CancellationToken.None);
    }

    /// <summary>Starts a member that joins the running cluster (after 'member add'), with its own ports and data dir.</summary>
    public async Task<MemberHost> StartJoiningMemberAsync(string name, int clientPort, int peerPort)
    {
        var initialCluster = InitialCluster + $",{name}=http://127.0.0.1:{peerPort}";
        string[] args =
        [
            "--name", name,
            "--data-dir", Path.Combine(_root.FullName, name),
            "--listen-client-urls", $"http://127.0.0.1:{clientPort}",
            "--advertise-client-urls", $"http://127.0.0.1:{clientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-cluster", initialCluster,
            "--initial-cluster-state", "existing",
            "--heartbeat-interval", _heartbeatMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--election-timeout", _electionMs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            .. _extraArgs,
        ];
        var config = MemberConfigParser.Parse(args, new Dictionary<string, string>());
        return await MemberHost.StartAsync(config, new MemberHostOptions { WalSegmentBytes = _walSegmentBytes }, CancellationToken.None);
    }

    public async Task StopMemberAsync(int i)
    {
        if (_hosts[i] is { } host)
        {
            _hosts[i] = null;
            await host.DisposeAsync();
        }
    }

    /// <summary>Stops member <paramref name="i"/> as SIGTERM does (a leader hands over first).</summary>
    public async Task StopMemberGracefullyAsync(int i)
    {
        if (_hosts[i] is { } host)
        {
            _hosts[i] = null;
            await host.StopGracefullyAsync();
        }
    }

    /// <summary>
    /// Index of the member every running member agrees is leader, once they do and each has a connected stream to
    /// every other running member (a member still backing off from a peer that started after it would hold a
    /// forwarded proposal until its next retry).
    /// </summary>
    public async Task<int> WaitForLeaderAsync()
    {
        var running = Enumerable.Range(0, _hosts.Length).Where(IsRunning).ToList();
        var runningIds = running.Select(i => Host(i).Member.MemberId).ToHashSet();
        var leader = -1;
        await Eventually.TrueAsync(() =>
        {
            var connected = running.All(i => Host(i).Member.Transport.Describe()
                .Where(p => runningIds.Contains(p.Id))
                .All(p => p.Connected));
            var seen = running.Select(i => Host(i).Member.Leader).Distinct().ToList();
            leader = seen.Count == 1 && seen[0] != 0 ? running.FindIndex(i => Host(i).Member.MemberId == seen[0]) : -1;
            leader = leader >= 0 ? running[leader] : -1;
            return leader >= 0 && connected;
        }, Describe);
        return leader;
    }

    public string Describe() => string.Join("; ", Enumerable.Range(0, _hosts.Length).Select(i => _hosts[i] is { } h
        ? $"{Names[i]}: id {h.Member.MemberId:x} leader {h.Member.Leader:x} term {h.Member.Term} commit {h.Member.CommitIndex} applied {h.Member.AppliedIndex}"
        : $"{Names[i]}: stopped"));

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Enumerable.Range(0, _hosts.Length).Select(StopMemberAsync));
        if (Environment.GetEnvironmentVariable("RAFTKV_KEEP_TEST_DATA") is not null)
        {
            return; // kept for a post-mortem (e.g. to read a member's WAL after a failed restart)
        }

        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Runs Debian's etcdctl (API v3) and returns what it printed.</summary>
internal static class Etcdctl
{
    public const string Path = "/usr/bin/etcdctl";

    public static Task<(int Code, string Stdout, string Stderr)> RunAsync(string endpoints, params string[] args) => RunWithInputAsync(endpoints, "", args);

    /// <summary>Runs with <paramref name="input"/> on stdin (etcdctl txn reads its operations there).</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunWithInputAsync(string endpoints, string input, params string[] args)
    {
        var psi = new ProcessStartInfo(Path);
        psi.Environment["ETCDCTL_API"] = "3";
        psi.ArgumentList.Add("--endpoints=" + endpoints);
        psi.ArgumentList.Add("--command-timeout=10s");
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var (code, stdout, stderr) = await ChildProcess.RunAsync(psi, TimeSpan.FromSeconds(30), input);
        return code is { } exited
            ? (exited, stdout, stderr)
            : throw new OperationCanceledException($"etcdctl {string.Join(' ', args)} did not exit within 30 s; stdout: {stdout}\nstderr: {stderr}");
    }

    /// <summary>Runs and asserts success; returns stdout.</summary>
    public static Task<string> OkAsync(string endpoints, params string[] args) => OkWithInputAsync(endpoints, "", args);

    /// <summary>Runs with stdin and asserts success; returns stdout.</summary>
    public static async Task<string> OkWithInputAsync(string endpoints, string input, params string[] args)
    {
        var (code, stdout, stderr) = await RunWithInputAsync(endpoints, input, args);
        Assert.True(code == 0, $"etcdctl {string.Join(' ', args)} exited {code}\nstdout: {stdout}\nstderr: {stderr}");
        return stdout;
    }

    /// <summary>Runs and asserts failure; returns the last line etcdctl printed on stderr ("Error: ...").</summary>
    public static async Task<string> FailsAsync(string endpoints, params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(endpoints, args);
        Assert.True(code != 0, $"etcdctl {string.Join(' ', args)} was expected to fail\nstdout: {stdout}\nstderr: {stderr}");
        return stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last(l => l.StartsWith("Error:", StringComparison.Ordinal));
    }
}
