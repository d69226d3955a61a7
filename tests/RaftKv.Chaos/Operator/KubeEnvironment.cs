using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using LocalKube;
using LocalKube.Runtime;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos.Operator;

/// <summary>
/// The operator's world for a fault scenario: an in-process local control plane (5 nodes) whose pods are real raftkv
/// processes, the RaftCluster CRD, and the raftkv-operator program as a separate process that the scenario can
/// SIGKILL and start again. Everything lives under one root directory; disposing stops the operator and every pod.
/// </summary>
internal sealed class KubeEnvironment : IAsyncDisposable
{
    public const string Namespace = "default";
    public const string ClusterName = "chaos";

    private readonly string _operatorProgram;
    private readonly EventLog _log;
    private readonly Dictionary<string, GrpcChannel> _podChannels = new(StringComparer.Ordinal);
    private readonly Lock _operatorLock = new();
    private LocalKubeServer? _kube;
    private Process? _operator;
    private int _operatorStarts;

    private KubeEnvironment(string root, string operatorProgram, EventLog log)
    {
        Root = root;
        _operatorProgram = operatorProgram;
        _log = log;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Root { get; }

    public HttpClient Http { get; }

    public LocalKubeServer Kube => _kube ?? throw new InvalidOperationException("not started");

    public string KubeconfigPath => Path.Combine(Root, "kubeconfig");

    public string OperatorLogPath => Path.Combine(Root, "operator.log");

    /// <summary>The operator's /healthz, /readyz and /metrics address.</summary>
    public int OperatorPort { get; } = FreePort();

    /// <summary>Times the operator process exited without being killed by the scenario.</summary>
    public List<string> OperatorCrashes { get; } = [];

    public bool OperatorRunning
    {
        get
        {
            lock (_operatorLock)
            {
                return _operator is { HasExited: false };
            }
        }
    }

    public static async Task<KubeEnvironment> StartAsync(string raftkv, string root, EventLog log, CancellationToken cancellationToken)
    {
        var operatorProgram = Path.Combine(Path.GetDirectoryName(raftkv)!, "raftkv-operator");
        if (!File.Exists(operatorProgram))
        {
            throw new ChaosFailure($"{operatorProgram} is missing: the operator scenarios need raftkv-operator beside raftkv (make chaos publishes both to bin/)");
        }

        var crd = FindRepositoryFile("config/crd/raftkv.io_raftclusters.yaml");
        var env = new KubeEnvironment(root, operatorProgram, log);
        var clock = Stopwatch.StartNew();
        env._kube = await LocalKubeServer.StartAsync(new LocalKubeOptions
        {
            KubeconfigPath = env.KubeconfigPath,
            Runtime = new RuntimeOptions
            {
                Root = Path.Combine(root, "kube"),
                Images = new Dictionary<string, string>(StringComparer.Ordinal) { ["raftkv"] = raftkv },
                MaxRestartBackoff = TimeSpan.FromSeconds(2),
                NodeCount = 5, // required anti-affinity on the hostname: 5 members need 5 nodes
            },
        }, cancellationToken);
        env.Http.BaseAddress = env._kube.Url;
        env._kube.Apply(crd);
        log.Add($"local control plane at {env._kube.Url} in {clock.ElapsedMilliseconds} ms");
        env.StartOperator();
        return env;
    }

    /// <summary>Starts the operator program (output appended to operator.log).</summary>
    public void StartOperator()
    {
        var start = new ProcessStartInfo(_operatorProgram)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "--kubeconfig", KubeconfigPath, "--metrics-address", $"127.0.0.1:{OperatorPort}", "--resync-period", "2s",
            "--lease-namespace", Namespace, "--namespace", Namespace,
        })
        {
            start.ArgumentList.Add(a);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var writer = new StreamWriter(OperatorLogPath, append: true) { AutoFlush = true };
        var number = Interlocked.Increment(ref _operatorStarts);
        void Write(string? line)
        {
            if (line is not null)
            {
                lock (writer)
                {
                    writer.WriteLine($"[{number}] {line}");
                }
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) =>
        {
            bool expected;
            lock (_operatorLock)
            {
                expected = !ReferenceEquals(_operator, process);
            }

            if (!expected)
            {
                OperatorCrashes.Add($"operator run {number} exited by itself with code {process.ExitCode}");
                _log.Add($"operator run {number} exited by itself with code {process.ExitCode}");
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (_operatorLock)
        {
            _operator = process;
        }

        _log.Add($"operator run {number} started (pid {process.Id})");
    }

    /// <summary>SIGKILLs the operator (no graceful shutdown: the Lease is not released, work in flight is cut).</summary>
    public async Task KillOperatorAsync()
    {
        Process? process;
        lock (_operatorLock)
        {
            process = _operator;
            _operator = null;
        }

        if (process is null)
        {
            return;
        }

        try
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _log.Add($"operator SIGKILLed (pid {process.Id})");
        process.Dispose();
    }

    /// <summary>
    /// Polls the operator's /healthz for up to 60 s (the first request JIT-compiles the endpoint, which takes seconds on a
    /// loaded machine); says what is wrong if it never answered "ok" or the process is gone, else null.
    /// </summary>
    public async Task<string?> OperatorHealthProblemAsync(CancellationToken cancellationToken)
    {
        var health = "";
        for (var until = DateTime.UtcNow + TimeSpan.FromSeconds(60); health != "ok" && DateTime.UtcNow < until;)
        {
            health = await OperatorHealthAsync(cancellationToken);
        }

        return health != "ok" || !OperatorRunning
            ? $"the operator's /healthz answered '{health}' for 60 s (process running: {OperatorRunning})"
            : null;
    }

    /// <summary>The operator's /healthz answer, or the error.</summary>
    private async Task<string> OperatorHealthAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{OperatorPort}/healthz"), cancellationToken);
            var text = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
            return response.IsSuccessStatusCode ? text : $"{(int)response.StatusCode} {text}";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return $"unreachable: {e.Message}";
        }
    }

    public async Task<(HttpStatusCode Code, JsonNode? Body)> SendAsync(HttpMethod method, string path, JsonNode? body, string contentType, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        using var response = await Http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        JsonNode? parsed = null;
        try
        {
            parsed = text.Length > 0 ? JsonNode.Parse(text) : null;
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = JsonValue.Create(text);
        }

        return (response.StatusCode, parsed);
    }

    public static string ClusterPath(string name = ClusterName) => $"/apis/raftkv.io/v1alpha1/namespaces/{Namespace}/raftclusters/{name}";

    /// <summary>Creates a RaftCluster; returns the API server's answer.</summary>
    public Task<(HttpStatusCode Code, JsonNode? Body)> CreateClusterAsync(JsonObject spec, CancellationToken cancellationToken, string name = ClusterName) =>
        SendAsync(HttpMethod.Post, $"/apis/raftkv.io/v1alpha1/namespaces/{Namespace}/raftclusters", new JsonObject
        {
            ["apiVersion"] = "raftkv.io/v1alpha1",
            ["kind"] = "RaftCluster",
            ["metadata"] = new JsonObject { ["name"] = name },
            ["spec"] = spec,
        }, "application/json", cancellationToken);

    /// <summary>JSON merge patch of the RaftCluster's spec; throws when refused.</summary>
    public async Task PatchSpecAsync(JsonObject spec, CancellationToken cancellationToken)
    {
        var (code, body) = await SendAsync(HttpMethod.Patch, ClusterPath(), new JsonObject { ["spec"] = spec }, "application/merge-patch+json", cancellationToken);
        if (code != HttpStatusCode.OK)
        {
            throw new ChaosFailure($"patch {spec.ToJsonString()} refused: {(int)code} {body?.ToJsonString()}");
        }

        _log.Add($"patched spec {spec.ToJsonString()}");
    }

    /// <summary>GET; null when not found or when the API server cannot be reached (it may be restarting).</summary>
    public async Task<JsonNode?> GetAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            var (code, body) = await SendAsync(HttpMethod.Get, path, null, "application/json", cancellationToken);
            return code == HttpStatusCode.OK ? body : null;
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return null;
        }
    }

    public Task<JsonArray> PodsAsync(CancellationToken cancellationToken) => PodsAsync(ClusterName, cancellationToken);

    /// <summary>The member pods of the RaftCluster <paramref name="cluster"/>.</summary>
    public async Task<JsonArray> PodsAsync(string cluster, CancellationToken cancellationToken) =>
        (await GetAsync($"/api/v1/namespaces/{Namespace}/pods?labelSelector=app.kubernetes.io/instance%3D{cluster}", cancellationToken))?["items"]?.AsArray() ?? [];

    /// <summary>
    /// Replaces the RaftCluster's whole spec (GET, then PUT with its resourceVersion; again after a conflict), so fields
    /// left out of <paramref name="spec"/> are removed; returns the API server's answer.
    /// </summary>
    public async Task<(HttpStatusCode Code, JsonNode? Body)> ReplaceSpecAsync(string name, JsonNode spec, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = await GetAsync(ClusterPath(name), cancellationToken) ?? throw new ChaosFailure($"RaftCluster {name} is gone");
            current["spec"] = spec.DeepClone();
            current.AsObject().Remove("status");
            var answer = await SendAsync(HttpMethod.Put, ClusterPath(name), current, "application/json", cancellationToken);
            if (answer.Code != HttpStatusCode.Conflict || attempt >= 10)
            {
                return answer;
            }
        }
    }

    /// <summary>Deletes the RaftCluster and waits until it and its pods are gone (the operator's finalizer removed).</summary>
    public async Task DeleteClusterAsync(string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var (code, body) = await SendAsync(HttpMethod.Delete, ClusterPath(name), null, "application/json", cancellationToken);
        if (code is not (HttpStatusCode.OK or HttpStatusCode.Accepted or HttpStatusCode.NotFound))
        {
            throw new ChaosFailure($"delete of RaftCluster {name} refused: {(int)code} {body?.ToJsonString()}");
        }

        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = await GetAsync(ClusterPath(name), cancellationToken);
            var pods = await PodsAsync(name, cancellationToken);
            if (left is null && pods.Count == 0)
            {
                _log.Add($"RaftCluster {name} deleted, its pods gone");
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"RaftCluster {name} not gone within {timeout.TotalSeconds:0} s of its deletion: finalizers " +
                    $"{left?["metadata"]?["finalizers"]?.ToJsonString() ?? "(object gone)"}, {pods.Count} pods left");
            }

            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>Deletes a pod at once (grace period 0: its process is killed).</summary>
    public async Task DeletePodAsync(string name, CancellationToken cancellationToken)
    {
        var (code, body) = await SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/{Namespace}/pods/{name}?gracePeriodSeconds=0", null, "application/json", cancellationToken);
        _log.Add($"pod {name} deleted with grace period 0: {(int)code}{(code == HttpStatusCode.OK ? "" : " " + body?.ToJsonString())}");
    }

    /// <summary>Events the operator recorded on RaftClusters, oldest first: (time, reason, message).</summary>
    public async Task<List<(string Time, string Reason, string Message)>> OperatorEventsAsync(CancellationToken cancellationToken)
    {
        var items = (await GetAsync($"/api/v1/namespaces/{Namespace}/events", cancellationToken))?["items"]?.AsArray() ?? [];
        return [.. items
            .Where(e => e?["involvedObject"]?["kind"]?.GetValue<string>() == "RaftCluster")
            .Select(e => (Time: Str(e!["eventTime"]) ?? Str(e["lastTimestamp"]) ?? Str(e["firstTimestamp"]) ?? "", Reason: Str(e["reason"]) ?? "", Message: Str(e["message"]) ?? "",
                Rv: long.Parse(Str(e["metadata"]?["resourceVersion"]) ?? "0", CultureInfo.InvariantCulture)))
            .OrderBy(e => e.Rv)
            .Select(e => (e.Time, e.Reason, e.Message))];
    }

    private static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    public static bool IsReady(JsonNode? pod) =>
        pod?["status"]?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True") == true;

    public static bool IsAvailable(JsonNode? status) =>
        status?["conditions"]?.AsArray().Any(c => c?["type"]?.GetValue<string>() == "Available" && c["status"]?.GetValue<string>() == "True") == true
        && !string.IsNullOrEmpty(Str(status?["leader"]));

    /// <summary>A gRPC channel to the client Service's ClusterIP (the proxy relays each connection to a ready member).</summary>
    public async Task<GrpcChannel> ServiceChannelAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var service = await GetAsync($"/api/v1/namespaces/{Namespace}/services/{ClusterName}-client", cancellationToken);
            if (Str(service?["spec"]?["clusterIP"]) is { Length: > 0 } ip)
            {
                return GrpcChannel.ForAddress($"http://{ip}:2379");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"service {ClusterName}-client has no ClusterIP within 2 minutes");
            }

            await Task.Delay(250, cancellationToken);
        }
    }

    /// <summary>A channel straight to one pod's client port (its loopback address), made once per pod name.</summary>
    public GrpcChannel PodChannel(string name, string ip)
    {
        lock (_podChannels)
        {
            if (!_podChannels.TryGetValue(name, out var channel))
            {
                channel = GrpcChannel.ForAddress($"http://{ip}:2379");
                _podChannels[name] = channel;
            }

            return channel;
        }
    }

    /// <summary>
    /// The member list as the leader sees it (asked of the member that says it leads, so the list is the newest
    /// applied one), with the leader's name; null when no running pod names itself leader right now.
    /// </summary>
    public async Task<(string Leader, List<(string Name, ulong Id, bool Learner)> Members)?> LeaderMemberListAsync(CancellationToken cancellationToken)
    {
        foreach (var pod in await PodsAsync(cancellationToken))
        {
            var name = Str(pod?["metadata"]?["name"]);
            var ip = Str(pod?["status"]?["podIP"]);
            if (name is null || ip is null)
            {
                continue;
            }

            try
            {
                var channel = PodChannel(name, ip);
                var status = await new Maintenance.MaintenanceClient(channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken);
                if (status.Leader == 0 || status.Leader != status.Header.MemberId)
                {
                    continue;
                }

                var list = await new Cluster.ClusterClient(channel).MemberListAsync(new MemberListRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken);
                return (name, [.. list.Members.Select(m => (m.Name, m.ID, m.IsLearner))]);
            }
            catch (RpcException)
            {
                // Down or starting: ask the next pod.
            }
        }

        return null;
    }

    /// <summary>
    /// Waits until the RaftCluster is Available with <paramref name="replicas"/> voters, every pod is Ready (and, with
    /// <paramref name="podTemplateAnnotation"/>, runs a template carrying it), and the leader's member list names exactly
    /// CLUSTER-0..N-1, all voters. Fails with what it last saw.
    /// </summary>
    public async Task WaitHealthyAsync(int replicas, TimeSpan timeout, CancellationToken cancellationToken, (string Key, string Value)? podTemplateAnnotation = null)
    {
        var expected = Enumerable.Range(0, replicas).Select(i => $"{ClusterName}-{i}").ToList();
        var deadline = DateTime.UtcNow + timeout;
        var seen = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var status = (await GetAsync(ClusterPath(), cancellationToken))?["status"];
                var pods = await PodsAsync(cancellationToken);
                var ready = pods.Count(IsReady);
                var updated = podTemplateAnnotation is { } a
                    ? pods.Count(p => Str(p?["metadata"]?["annotations"]?[a.Key]) == a.Value)
                    : pods.Count;
                seen = $"status {status?.ToJsonString()}; pods {pods.Count}, ready {ready}, on the wanted template {updated}";
                if (IsAvailable(status) && status?["voters"]?.GetValue<int>() == replicas && pods.Count == replicas && ready == replicas && updated == replicas)
                {
                    var list = await LeaderMemberListAsync(cancellationToken);
                    seen += list is null ? "; no leader answered" : $"; leader {list.Value.Leader}'s member list [{string.Join(", ", list.Value.Members.Select(m => m.Name + (m.Learner ? " (learner)" : "")))}]";
                    if (list is { } l && l.Members.Select(m => m.Name).Order(StringComparer.Ordinal).SequenceEqual(expected) && l.Members.All(m => !m.Learner))
                    {
                        _log.Add($"healthy with {replicas} members: {seen}");
                        return;
                    }
                }
            }
            catch (HttpRequestException e)
            {
                seen = $"API server: {e.Message}";
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                seen = "API server did not answer within 10 s";
            }

            await Task.Delay(500, cancellationToken);
        }

        throw new ChaosFailure($"{ClusterName} not healthy with {replicas} members within {timeout.TotalSeconds:0} s; last seen: {seen}");
    }

    /// <summary>Copies the operator's log and every pod's log into <paramref name="dir"/>.</summary>
    public void KeepLogs(string dir)
    {
        if (File.Exists(OperatorLogPath))
        {
            File.Copy(OperatorLogPath, Path.Combine(dir, "operator.log"), overwrite: true);
        }

        var pods = Path.Combine(Root, "kube", "pods");
        if (Directory.Exists(pods))
        {
            foreach (var log in Directory.EnumerateFiles(pods, "*.log", SearchOption.AllDirectories))
            {
                File.Copy(log, Path.Combine(dir, Path.GetFileName(Path.GetDirectoryName(log)!) + "_" + Path.GetFileName(log)), overwrite: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillOperatorAsync();
        lock (_podChannels)
        {
            foreach (var c in _podChannels.Values)
            {
                c.Dispose();
            }
        }

        if (_kube is not null)
        {
            await _kube.DisposeAsync(); // stops every pod process
        }

        Http.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A file of the repository: above the current directory or above this program.</summary>
    public static string FindRepositoryFile(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, relative);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new ChaosFailure($"{relative} not found above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}: run inside the repository");
    }
}
