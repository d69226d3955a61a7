using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube;
using LocalKube.Runtime;

namespace RaftKv.Operator.Benchmarks;

/// <summary>
/// The local control plane (5 nodes, pods are real raftkv processes) and the raftkv-operator program, as the
/// end-to-end tests start them; the scenarios of the operator benchmark, timed from the user's command to the
/// observable result (status conditions, a write through the client Service).
/// </summary>
internal sealed class OperatorBench : IAsyncDisposable
{
    private const string Namespace = "default";
    private readonly string _dir;
    private readonly LocalKubeServer _kube;
    private readonly Process _operator;
    private readonly HttpClient _http;
    private readonly StreamWriter _operatorLog;

    private OperatorBench(string dir, LocalKubeServer kube, Process @operator, StreamWriter operatorLog)
    {
        _dir = dir;
        _kube = kube;
        _operator = @operator;
        _operatorLog = operatorLog;
        _http = new HttpClient { BaseAddress = kube.Url, Timeout = TimeSpan.FromSeconds(10) };
    }

    public static string RepositoryRoot { get; } = FindRoot();

    private string Kubeconfig => Path.Combine(_dir, "kubeconfig");

    public static async Task<OperatorBench> StartAsync()
    {
        foreach (var tool in new[] { Kubectl, Etcdctl })
        {
            if (!File.Exists(tool))
            {
                throw new InvalidOperationException($"{tool} is missing: run `make deps` in the repository root");
            }
        }

        var dir = Directory.CreateTempSubdirectory("raftkv-operator-bench-").FullName;
        var kube = await LocalKubeServer.StartAsync(new LocalKubeOptions
        {
            KubeconfigPath = Path.Combine(dir, "kubeconfig"),
            Runtime = new RuntimeOptions
            {
                Root = Path.Combine(dir, "root"),
                Images = new Dictionary<string, string>(StringComparer.Ordinal) { ["raftkv"] = Program("raftkv") },
                MaxRestartBackoff = TimeSpan.FromSeconds(2),
                NodeCount = 5,
            },
        });
        kube.Apply(Path.Combine(RepositoryRoot, "config/crd/raftkv.io_raftclusters.yaml"));

        var start = new ProcessStartInfo(Program("raftkv-operator")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--kubeconfig", Path.Combine(dir, "kubeconfig"), "--metrics-address", "127.0.0.1:0", "--resync-period", "2s", "--lease-namespace", Namespace })
        {
            start.ArgumentList.Add(a);
        }

        var log = new StreamWriter(Path.Combine(dir, "operator.log")) { AutoFlush = true };
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new OperatorBench(dir, kube, process, log);
    }

    public async Task<string> RunAsync(int failoverRuns)
    {
        var loadBefore = LoadAverage();
        var rows = new List<(string Scenario, string Figure, string Note)>();

        var threeUp = await ApplyClusterAsync("bench3", 3, tuning: null);
        rows.Add(("apply → Available, 3 members", Seconds(threeUp), "kubectl apply until Available with 3 voters, every pod Ready"));
        var scaled = await ScaleAsync("bench3", 5);
        rows.Add(("scale 3 → 5", Seconds(scaled), "kubectl scale until 5 voters (two learners added, caught up, promoted one at a time), every pod Ready"));
        await DeleteClusterAsync("bench3");

        var fiveUp = await ApplyClusterAsync("bench5", 5, tuning: null);
        rows.Add(("apply → Available, 5 members", Seconds(fiveUp), "kubectl apply until Available with 5 voters, every pod Ready"));
        await DeleteClusterAsync("bench5");

        var timings = new (string Label, string? Tuning)[]
        {
            ("Auto (the operator's default)", null),
            ("Manual 100ms / 1s (etcd's defaults)", """{"mode":"Manual","heartbeatInterval":"100ms","electionTimeout":"1s"}"""),
            ("Manual 50ms / 500ms (tuned)", """{"mode":"Manual","heartbeatInterval":"50ms","electionTimeout":"500ms"}"""),
        };
        foreach (var (label, tuning) in timings)
        {
            await ApplyClusterAsync("failover", 3, tuning);
            var status = await WaitAsync("failover", s => Healthy(s, 3) && (tuning is null || s?["tuning"]?["reason"]?.GetValue<string>()?.StartsWith("Manual", StringComparison.Ordinal) == true),
                TimeSpan.FromMinutes(2), "timing in force");
            var inForce = $"{status?["tuning"]?["heartbeatInterval"]} / {status?["tuning"]?["electionTimeout"]}";
            var figures = new List<TimeSpan>();
            var runs = new List<string>();
            for (var run = 0; run < failoverRuns; run++)
            {
                var (resumed, timing) = await FailoverAsync("failover");
                figures.Add(resumed);
                runs.Add($"{Seconds(resumed)} ({timing})");
            }

            figures.Sort();
            rows.Add(($"failover, {label}", $"median {Seconds(figures[figures.Count / 2])}, min {Seconds(figures[0])}, max {Seconds(figures[^1])}",
                $"timing in force when applied {inForce}; {failoverRuns} run(s), each with the heartbeat/election in force when the pod was deleted: {string.Join(", ", runs)}"));
            await DeleteClusterAsync("failover");
        }

        var text = new StringBuilder();
        text.AppendLine("# raftkv-operator benchmark (local control plane)");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Written by `make bench` (bench/RaftKv.Operator.Benchmarks) on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, commit {Git("rev-parse --short HEAD")}, ");
        text.AppendLine(CultureInfo.InvariantCulture, $"{Environment.ProcessorCount} cores, load average {loadBefore} at the start and {LoadAverage()} at the end (the machine is shared).");
        text.AppendLine("The local control plane (tests/LocalKube) runs in this process with 5 nodes; each pod is a real `raftkv` process");
        text.AppendLine("on its own loopback address, volumes are directories; the `raftkv-operator` program reconciles with `--resync-period 2s`.");
        text.AppendLine("Times run from the kubectl command to what a user would watch for: the `Available` condition with the voters");
        text.AppendLine("wanted and every pod Ready, or for failover, from `kubectl delete pod LEADER` until a put through the");
        text.AppendLine("`NAME-client` Service succeeds (etcdctl retried at once, each try up to 1 s: a figure includes up to ~0.1 s of");
        text.AppendLine("etcdctl start-up). Failover expectations: leader lease lost after E..2E, then pre-vote, vote and the first append.");
        text.AppendLine();
        text.AppendLine("| Scenario | Time | Notes |");
        text.AppendLine("| --- | --- | --- |");
        foreach (var (scenario, figure, note) in rows)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {scenario} | {figure} | {note} |");
        }

        return text.ToString();
    }

    private async Task<TimeSpan> ApplyClusterAsync(string name, int replicas, string? tuning)
    {
        var watch = Stopwatch.StartNew();
        var tuningField = tuning is null ? "" : ",\"tuning\":" + tuning;
        var yaml = "{\"apiVersion\":\"raftkv.io/v1alpha1\",\"kind\":\"RaftCluster\",\"metadata\":{\"name\":\"" + name + "\"},"
            + "\"spec\":{\"replicas\":" + replicas.ToString(CultureInfo.InvariantCulture) + ",\"storage\":{\"size\":\"1Gi\",\"reclaimPolicy\":\"Delete\"}" + tuningField + "}}";
        var file = Path.Combine(_dir, $"{name}.json");
        await File.WriteAllTextAsync(file, yaml);
        await KubectlAsync("apply", "-f", file);
        await WaitAsync(name, s => Healthy(s, replicas), TimeSpan.FromMinutes(5), $"{name} Available with {replicas} voters");
        return watch.Elapsed;
    }

    private async Task<TimeSpan> ScaleAsync(string name, int replicas)
    {
        var watch = Stopwatch.StartNew();
        await KubectlAsync("scale", "raftcluster", name, $"--replicas={replicas}");
        await WaitAsync(name, s => Healthy(s, replicas), TimeSpan.FromMinutes(5), $"{name} scaled to {replicas}");
        return watch.Elapsed;
    }

    private async Task DeleteClusterAsync(string name)
    {
        await KubectlAsync("delete", "raftcluster", name, "--wait=true", "--timeout=120s");
        var deadline = Stopwatch.StartNew();
        while ((await PodsAsync(name)).Count > 0)
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new InvalidOperationException($"the pods of {name} did not go within 2 minutes");
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Deletes the leader's pod and times until a write through the client Service succeeds; waits for the cluster to heal after.</summary>
    private async Task<(TimeSpan Resumed, string Timing)> FailoverAsync(string name)
    {
        var status = await WaitAsync(name, s => Healthy(s, 3), TimeSpan.FromMinutes(3), $"{name} healthy before a failover");
        var timing = $"{status?["tuning"]?["heartbeatInterval"]}/{status?["tuning"]?["electionTimeout"]}";
        var endpoint = $"{await ClusterIpAsync(name)}:2379";
        var leader = await LeaderPodAsync(endpoint);
        var warm = await EtcdctlAsync(endpoint, "put", "bench-before", "1");
        if (warm.ExitCode != 0)
        {
            throw new InvalidOperationException($"a write before the failover failed: {warm.Output}");
        }

        var watch = Stopwatch.StartNew();
        await KubectlAsync("delete", "pod", leader, "--wait=false");
        while (true)
        {
            var put = await EtcdctlAsync(endpoint, "put", "bench-after", "1");
            if (put.ExitCode == 0)
            {
                break;
            }

            if (watch.Elapsed > TimeSpan.FromMinutes(2))
            {
                throw new InvalidOperationException($"writes did not resume within 2 minutes after {leader} was deleted: {put.Output}");
            }
        }

        var resumed = watch.Elapsed;
        Console.WriteLine($"failover: {leader} deleted with timing {timing}, writes resumed after {Seconds(resumed)}");
        return (resumed, timing);
    }

    /// <summary>The leader's pod name as the members say (not status, which a reconcile writes later).</summary>
    private static async Task<string> LeaderPodAsync(string endpoint)
    {
        var status = await EtcdctlAsync(endpoint, "endpoint", "status", "-w", "json");
        var members = await EtcdctlAsync(endpoint, "member", "list", "-w", "json");
        var leader = JsonNode.Parse(status.Output)?[0]?["Status"]?["leader"]?.GetValue<ulong>();
        var match = JsonNode.Parse(members.Output)?["members"]?.AsArray().FirstOrDefault(m => m?["ID"]?.GetValue<ulong>() == leader);
        return match?["name"]?.GetValue<string>() ?? throw new InvalidOperationException($"no leader among the members: {status.Output} {members.Output}");
    }

    private static bool Healthy(JsonNode? status, int voters) =>
        status?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Available" && c["status"]?.GetValue<string>() == "True") == true
        && status["voters"]?.GetValue<int>() == voters && status["learners"]?.GetValue<int>() == 0 && status["readyReplicas"]?.GetValue<int>() == voters;

    private async Task<JsonNode?> WaitAsync(string name, Func<JsonNode?, bool> done, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        JsonNode? status = null;
        while (watch.Elapsed < timeout)
        {
            status = (await GetAsync($"/apis/raftkv.io/v1alpha1/namespaces/{Namespace}/raftclusters/{name}"))?["status"];
            if (done(status))
            {
                return status;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"{what}: not within {timeout.TotalSeconds:0} s; last status {status?.ToJsonString()}; operator log {Path.Combine(_dir, "operator.log")}");
    }

    private async Task<JsonArray> PodsAsync(string name) =>
        (await GetAsync($"/api/v1/namespaces/{Namespace}/pods?labelSelector=app.kubernetes.io/instance%3D{name}"))?["items"]?.AsArray() ?? [];

    private async Task<string> ClusterIpAsync(string name) =>
        (await GetAsync($"/api/v1/namespaces/{Namespace}/services/{name}-client"))?["spec"]?["clusterIP"]?.GetValue<string>()
        ?? throw new InvalidOperationException($"service {name}-client has no ClusterIP");

    private async Task<JsonNode?> GetAsync(string path)
    {
        using var response = await _http.GetAsync(new Uri(path, UriKind.Relative));
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonNode>();
    }

    private async Task KubectlAsync(params string[] args)
    {
        var result = await RunAsync(Kubectl, ["--kubeconfig", Kubeconfig, "-n", Namespace, .. args], TimeSpan.FromMinutes(3));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"kubectl {string.Join(' ', args)} failed: {result.Output}");
        }
    }

    private static Task<(int ExitCode, string Output)> EtcdctlAsync(string endpoint, params string[] args) =>
        RunAsync(Etcdctl, ["--endpoints", endpoint, "--dial-timeout=1s", "--command-timeout=1s", .. args], TimeSpan.FromSeconds(10));

    private static async Task<(int ExitCode, string Output)> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["ETCDCTL_API"] = "3";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return (-1, $"killed after {timeout}: {await stdout}{await stderr}");
        }

        return (process.ExitCode, (await stdout) + (await stderr));
    }

    private static string Kubectl => Path.Combine(RepositoryRoot, ".tools/bin/kubectl");

    private static string Etcdctl => "/usr/bin/etcdctl";

    private static string Program(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, name);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: build bench/RaftKv.Operator.Benchmarks");
    }

    private static string Seconds(TimeSpan value) => $"{value.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s";

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static string Git(string args)
    {
        try
        {
            var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepositoryRoot };
            foreach (var a in args.Split(' '))
            {
                start.ArgumentList.Add(a);
            }

            using var process = Process.Start(start)!;
            var text = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return text.Length > 0 ? text : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.WriteLine(line);
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Operator.sln above {AppContext.BaseDirectory}: run the benchmark inside the repository");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_operator.HasExited)
        {
            _operator.Kill(entireProcessTree: true);
            await _operator.WaitForExitAsync();
        }

        _operator.Dispose();
        _http.Dispose();
        await _kube.DisposeAsync(); // stops every pod process
        lock (_operatorLog)
        {
            _operatorLog.Dispose();
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a temp directory left behind is harmless
        }
    }
}
