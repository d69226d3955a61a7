using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube;
using LocalKube.Runtime;

namespace RaftKv.E2E.Tests;

/// <summary>
/// The whole system as `make run` starts it: an in-process local control plane whose pods are real processes
/// (image <c>raftkv</c> → the raftkv program), the RaftCluster CRD, the raftkv-operator program, and
/// config/samples/raftcluster.yaml applied with kubectl. Shared by the tests of a class, which each leave
/// <c>demo</c> with 3 healthy members. Everything started here is stopped on dispose, also after a failure.
/// </summary>
public sealed class DemoCluster : IAsyncLifetime, IDisposable
{
    public const string Name = "demo";
    public const string Namespace = "default";

    private readonly OutputLog _operatorLog = new();
    private LocalKubeServer? _kube;
    private Process? _operator;
    private HttpClient? _http;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("raftkv-e2e-").FullName;

    public string KubeconfigPath => Path.Combine(Directory, "kubeconfig");

    public string Root => Path.Combine(Directory, "root");

    /// <summary>The operator's --tuning-quiet-period here.</summary>
    public static TimeSpan TuningQuietPeriod { get; } = TimeSpan.FromSeconds(15);

    /// <summary>The local control plane's pod annotation that delays traffic to and from a pod (both directions; a pair adds both pods' delays).</summary>
    public const string DelayAnnotation = "localkube.raftkv.io/delay";

    public async Task InitializeAsync()
    {
        var watch = Stopwatch.StartNew();
        _kube = await LocalKubeServer.StartAsync(new LocalKubeOptions
        {
            KubeconfigPath = KubeconfigPath,
            Runtime = new RuntimeOptions
            {
                Root = Root,
                Images = new Dictionary<string, string>(StringComparer.Ordinal) { ["raftkv"] = Tools.Program("raftkv") },
                MaxRestartBackoff = TimeSpan.FromSeconds(2),
                NodeCount = 5, // members repel each other (required anti-affinity on hostname): 5 members need 5 nodes
            },
        });
        _kube.Apply(Tools.RepositoryPath("config/crd/raftkv.io_raftclusters.yaml"));
        _http = new HttpClient { BaseAddress = _kube.Url, Timeout = TimeSpan.FromSeconds(10) };
        Console.WriteLine($"e2e: local control plane up in {watch.ElapsedMilliseconds} ms at {_kube.Url}");

        var start = new ProcessStartInfo(Tools.Program("raftkv-operator"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Auto tuning lowers timeouts after TuningQuietPeriod without leader changes (10 minutes by default): seconds here.
        foreach (var a in new[] { "--kubeconfig", KubeconfigPath, "--metrics-address", "127.0.0.1:0", "--resync-period", "2s", "--lease-namespace", Namespace,
            "--tuning-quiet-period", GoDurationText(TuningQuietPeriod) })
        {
            start.ArgumentList.Add(a);
        }

        _operator = new Process { StartInfo = start };
        _operator.OutputDataReceived += (_, e) => _operatorLog.Append(e.Data);
        _operator.ErrorDataReceived += (_, e) => _operatorLog.Append(e.Data);
        _operator.Start();
        _operator.BeginOutputReadLine();
        _operator.BeginErrorReadLine();

        var applied = await KubectlAsync("apply", "-f", Tools.RepositoryPath("config/samples/raftcluster.yaml"));
        Assert.True(applied.Ok, applied.ToString());
        var status = await WaitHealthyAsync(3, TimeSpan.FromMinutes(3));
        Console.WriteLine($"e2e: {Name} Available with leader {status?["leader"]} {watch.ElapsedMilliseconds} ms after start-up began");
    }

    internal Task<Result> KubectlAsync(params string[] args) =>
        Tools.RunAsync(Tools.Kubectl, ["--kubeconfig", KubeconfigPath, "-n", Namespace, .. args]);

    /// <summary>etcdctl (API v3) against the demo-client Service's ClusterIP.</summary>
    internal Task<Result> EtcdctlAsync(params string[] args) => EtcdctlAtAsync(Name, args);

    /// <summary>etcdctl (API v3) against the client Service's ClusterIP of RaftCluster <paramref name="cluster"/>.</summary>
    internal async Task<Result> EtcdctlAtAsync(string cluster, params string[] args)
    {
        var endpoint = $"{await ClientServiceIpAsync(cluster)}:2379";
        return await Tools.RunAsync(Tools.Etcdctl, ["--endpoints", endpoint, "--dial-timeout=2s", "--command-timeout=5s", .. args],
            new Dictionary<string, string> { ["ETCDCTL_API"] = "3" }, TimeSpan.FromSeconds(15));
    }

    public async Task<string> ClientServiceIpAsync(string cluster = Name)
    {
        var service = await GetAsync($"/api/v1/namespaces/{Namespace}/services/{cluster}-client");
        return service?["spec"]?["clusterIP"]?.GetValue<string>() ?? throw new InvalidOperationException($"service {cluster}-client has no ClusterIP yet");
    }

    public async Task<JsonNode?> GetAsync(string path)
    {
        using var response = await _http!.GetAsync(new Uri(path, UriKind.Relative));
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonNode>();
    }

    public Task<JsonNode?> ClusterAsync(string name = Name) => GetAsync($"/apis/raftkv.io/v1alpha1/namespaces/{Namespace}/raftclusters/{name}");

    public async Task<JsonArray> PodsAsync(string name = Name) =>
        (await GetAsync($"/api/v1/namespaces/{Namespace}/pods?labelSelector=app.kubernetes.io/instance%3D{name}"))?["items"]?.AsArray() ?? [];

    /// <summary>kubectl apply of a manifest given as text.</summary>
    internal async Task<Result> ApplyAsync(string yaml)
    {
        var file = Path.Combine(Directory, $"manifest-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        return await KubectlAsync("apply", "-f", file);
    }

    /// <summary>The Raft leader's member ID and term as a member reports them (etcdctl endpoint status through demo-client).</summary>
    public async Task<(ulong Leader, ulong Term)> RaftLeaderAsync()
    {
        var result = await EtcdctlAsync("endpoint", "status", "-w", "json");
        if (!result.Ok)
        {
            throw new InvalidOperationException(result.ToString());
        }

        var status = JsonNode.Parse(result.Stdout)?[0]?["Status"] ?? throw new InvalidOperationException($"no Status in {result.Stdout}");
        return (status["leader"]!.GetValue<ulong>(), status["raftTerm"]!.GetValue<ulong>());
    }

    /// <summary>
    /// Every member's RTT probes per peer as its /metrics reports them (etcd_network_peer_round_trip_time_seconds,
    /// cumulative since the member started), keyed "pod→peer": how many probes were recorded, and how many took more
    /// than 102.4 ms and 409.6 ms (bucket bounds). Members that do not answer are left out.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, RoundTripCounts>> RoundTripCountsAsync()
    {
        var counts = new Dictionary<string, RoundTripCounts>(StringComparer.Ordinal);
        foreach (var pod in await PodsAsync())
        {
            if (pod?["status"]?["podIP"]?.GetValue<string>() is not { Length: > 0 } ip)
            {
                continue;
            }

            string text;
            try
            {
                text = await _http!.GetStringAsync(new Uri($"http://{ip}:2379/metrics"));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                continue;
            }

            var buckets = new Dictionary<(string To, double Le), double>();
            foreach (var line in text.Split('\n'))
            {
                if (!line.StartsWith("etcd_network_peer_round_trip_time_seconds_bucket{", StringComparison.Ordinal))
                {
                    continue;
                }

                var labels = line[(line.IndexOf('{', StringComparison.Ordinal) + 1)..line.IndexOf('}', StringComparison.Ordinal)];
                var to = Label(labels, "To");
                var bound = Label(labels, "le");
                var le = bound == "+Inf" ? double.PositiveInfinity : double.Parse(bound, CultureInfo.InvariantCulture);
                var value = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
                buckets[(to, le)] = value;
            }

            foreach (var to in buckets.Keys.Select(k => k.To).Distinct())
            {
                var total = buckets.GetValueOrDefault((to, double.PositiveInfinity));
                double Within(double bound) => buckets.Where(b => b.Key.To == to && Math.Abs(b.Key.Le - bound) < 1e-6).Select(b => b.Value).FirstOrDefault();
                counts[$"{pod["metadata"]?["name"]}→{to}"] = new RoundTripCounts(total, total - Within(0.1024), total - Within(0.4096));
            }
        }

        return counts;

        static string Label(string labels, string name)
        {
            var start = labels.IndexOf($"{name}=\"", StringComparison.Ordinal) + name.Length + 2;
            return labels[start..labels.IndexOf('"', start)];
        }
    }

    /// <summary>The probes recorded between two <see cref="RoundTripCountsAsync"/> readings, one line per member pair.</summary>
    public static string RoundTripDelta(IReadOnlyDictionary<string, RoundTripCounts> before, IReadOnlyDictionary<string, RoundTripCounts> after) =>
        string.Join("; ", after.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a =>
        {
            var b = before.GetValueOrDefault(a.Key);
            return $"{a.Key}: {a.Value.Probes - b.Probes:0} probes, {a.Value.Over100Ms - b.Over100Ms:0} over 102 ms, {a.Value.Over400Ms - b.Over400Ms:0} over 410 ms";
        }));

    /// <summary>A condition of a RaftCluster's status: (status, reason, message), or nulls when absent.</summary>
    public static (string? Status, string? Reason, string? Message) Condition(JsonNode? status, string type)
    {
        var condition = status?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == type);
        return (condition?["status"]?.GetValue<string>(), condition?["reason"]?.GetValue<string>(), condition?["message"]?.GetValue<string>());
    }

    /// <summary>Parses the Kubernetes-style durations status uses ("100ms", "1.5s", "1m2s").</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var total = TimeSpan.Zero;
        var rest = text;
        while (rest.Length > 0)
        {
            var digits = rest.TakeWhile(c => char.IsDigit(c) || c == '.').Count();
            var number = double.Parse(rest[..digits], CultureInfo.InvariantCulture);
            var unit = new string(rest[digits..].TakeWhile(c => !char.IsDigit(c)).ToArray());
            total += unit switch
            {
                "h" => TimeSpan.FromHours(number),
                "m" => TimeSpan.FromMinutes(number),
                "s" => TimeSpan.FromSeconds(number),
                "ms" => TimeSpan.FromMilliseconds(number),
                "us" or "µs" => TimeSpan.FromMicroseconds(number),
                "ns" => TimeSpan.FromTicks((long)(number / 100)),
                _ => throw new FormatException($"'{text}' is not a duration"),
            };
            rest = rest[(digits + unit.Length)..];
        }

        return total;
    }

    private static string GoDurationText(TimeSpan value) => $"{(long)value.TotalMilliseconds}ms";

    /// <summary>The member list as etcdctl prints it: (name, is learner) per member.</summary>
    public async Task<IReadOnlyList<(string Name, bool Learner, string Line)>> MemberListAsync()
    {
        var result = await EtcdctlAsync("member", "list");
        if (!result.Ok)
        {
            throw new InvalidOperationException(result.ToString());
        }

        return [.. result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(", "))
            .Select(f => (f.Length > 2 ? f[2] : "", f.Length > 5 && f[5].Trim() == "true", string.Join(", ", f)))];
    }

    /// <summary>Waits until the RaftCluster is Available with a leader and <paramref name="members"/> voters, the
    /// member list (through etcdctl) names exactly demo-0..N-1 as voters, and every pod is Ready.</summary>
    public async Task<JsonNode?> WaitHealthyAsync(int members, TimeSpan timeout)
    {
        var expected = Enumerable.Range(0, members).Select(i => $"{Name}-{i}").ToList();
        JsonNode? status = null;
        string seen = "";
        await Eventually.Until(
            async () =>
            {
                status = (await ClusterAsync())?["status"];
                var pods = await PodsAsync();
                var ready = pods.Count(p => p?["status"]?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True") == true);
                seen = $"status {status?.ToJsonString()}; pods ready {ready}/{pods.Count}";
                if (!IsAvailable(status) || status?["voters"]?.GetValue<int>() != members || ready != members || pods.Count != members)
                {
                    return false;
                }

                var list = await MemberListAsync();
                seen += $"; member list [{string.Join(" | ", list.Select(m => m.Line))}]";
                return list.Select(m => m.Name).Order(StringComparer.Ordinal).SequenceEqual(expected) && list.All(m => !m.Learner);
            },
            done => done,
            _ => $"{seen}\n{Diagnostics()}",
            timeout,
            $"{Name} healthy with {members} members");
        return status;
    }

    /// <summary>Waits until RaftCluster <paramref name="cluster"/> (not demo) is Available with <paramref name="voters"/> voters and as many ready pods; returns its status.</summary>
    public Task<JsonNode?> WaitAvailableAsync(string cluster, int voters, TimeSpan timeout) =>
        Eventually.Until(
            async () => (await ClusterAsync(cluster))?["status"],
            s => IsAvailable(s) && s?["voters"]?.GetValue<int>() == voters && s["readyReplicas"]?.GetValue<int>() == voters,
            s => $"{s?.ToJsonString() ?? "no status"}\n{Diagnostics()}",
            timeout,
            $"{cluster} Available with {voters} voters");

    public static bool IsAvailable(JsonNode? status) =>
        status?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Available" && c["status"]?.GetValue<string>() == "True") == true
        && !string.IsNullOrEmpty(status?["leader"]?.GetValue<string>());

    /// <summary>What to print when a test fails: the operator's last log lines and each pod's.</summary>
    public string Diagnostics()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"--- operator (exited: {_operator?.HasExited}):\n{_operatorLog.Tail(30)}\n");
        var pods = Path.Combine(Root, "pods");
        if (System.IO.Directory.Exists(pods))
        {
            foreach (var log in System.IO.Directory.EnumerateFiles(pods, "*.log", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var lines = File.ReadAllLines(log);
                text.Append(CultureInfo.InvariantCulture, $"--- {Path.GetRelativePath(pods, log)}:\n{string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 8)))}\n");
            }
        }

        return text.ToString();
    }

    public void Dispose()
    {
        _operator?.Dispose();
        _http?.Dispose();
    }

    public async Task DisposeAsync()
    {
        if (_operator is { HasExited: false })
        {
            _operator.Kill(entireProcessTree: true);
            await _operator.WaitForExitAsync();
        }

        Dispose();
        if (_kube is not null)
        {
            await _kube.DisposeAsync(); // stops every pod process
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }
    }
}

/// <summary>A member's RTT probes to one peer: recorded, over 102.4 ms, over 409.6 ms.</summary>
public readonly record struct RoundTripCounts(double Probes, double Over100Ms, double Over400Ms);
