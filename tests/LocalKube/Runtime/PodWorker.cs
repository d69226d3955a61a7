using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>Runs one pod: its init containers in order, then its containers, as local processes with the pod's
/// environment (env, envFrom, downward API), volumes (emptyDir, PVC and hostPath as directories, ConfigMap and
/// Secret as files refreshed when they change), restart policy with exponential back-off, readiness and liveness
/// probes (httpGet, tcpSocket, exec), and graceful termination. Processes cannot see other mount points without
/// root, so a container's mountPath is replaced by the volume's directory in its command, args and env values.
/// The worker writes the pod's status (phase, conditions, IP, container states) whenever it changes.</summary>
internal sealed partial class PodWorker : IDisposable
{
    private Dictionary<string, string> _runtimeVariables = new(StringComparer.Ordinal);
    private readonly Kubelet _kubelet;
    private readonly string _ns;
    private readonly string _name;
    private readonly string _uid;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Dictionary<string, ContainerRun> _runs = new(StringComparer.Ordinal);
    private readonly string _dir;
    private readonly string _ip;
    private DateTimeOffset _nextVolumeSync;
    private string? _startTime;

    private PodWorker(Kubelet kubelet, string ns, string name, string uid)
    {
        _kubelet = kubelet;
        _ns = ns;
        _name = name;
        _uid = uid;
        _dir = PodDirectory(kubelet.Options.Root, ns, name, uid);
        _ip = kubelet.Network.AddressOf(ns, name);
        Completion = Task.CompletedTask;
    }

    public Task Completion { get; private set; }

    /// <summary>Where a pod's logs and per-pod volumes live.</summary>
    public static string PodDirectory(string root, string ns, string name, string uid) => Path.Combine(root, "pods", $"{ns}_{name}_{uid[..Math.Min(8, uid.Length)]}");

    /// <summary>The log file of one container.</summary>
    public static string LogPath(string root, string ns, string name, string uid, string container) =>
        Path.Combine(PodDirectory(root, ns, name, uid), $"{container.Replace(':', '_')}.log");

    public bool Finished => Completion.IsCompleted;

    public static PodWorker Start(Kubelet kubelet, string ns, string name, string uid)
    {
        var worker = new PodWorker(kubelet, ns, name, uid);
        worker.Completion = Task.Run(worker.RunAsync);
        return worker;
    }

    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    public void Stop() => _stop.Cancel();

    public void Dispose()
    {
        _stop.Dispose();
        _wake.Dispose();
        foreach (var run in _runs.Values)
        {
            run.Dispose();
        }
    }

    private ResourceService Service => _kubelet.Service;

    private DateTimeOffset Now => Service.Time.GetUtcNow();

    private sealed class ContainerRun : IDisposable
    {
        public required string Name { get; init; }

        public Process? Process { get; set; }

        public int Restarts { get; set; }

        public DateTimeOffset? NextStart { get; set; }

        public string? StartedAt { get; set; }

        public JsonObject? Terminated { get; set; }

        public JsonObject? LastTerminated { get; set; }

        public string? WaitingReason { get; set; }

        public string? WaitingMessage { get; set; }

        public bool Done { get; set; }

        public bool Ready { get; set; }

        public int ReadyStreak { get; set; }

        public int LiveFailures { get; set; }

        public DateTimeOffset NextReadinessProbe { get; set; }

        public DateTimeOffset NextLivenessProbe { get; set; }

        public string Program { get; set; } = "";

        /// <summary>Copies of the process's stdout and stderr into the log; done when both pipes closed.</summary>
        public Task Logging { get; set; } = Task.CompletedTask;

        public bool Running => Process is { HasExited: false };

        public void Dispose() => Process?.Dispose();
    }

    private async Task RunAsync()
    {
        var podType = Service.Registry.Find("", "v1", "pods")!;
        try
        {
            Directory.CreateDirectory(_dir);
            while (true)
            {
                var stored = Service.Store.Get(podType.StorageKey, _ns, _name);
                if (stored is null || Meta.Uid(stored.Object) != _uid || _stop.IsCancellationRequested)
                {
                    return;
                }

                var pod = stored.Object;
                if (Meta.IsDeleting(pod))
                {
                    await TerminateAsync(TimeSpan.FromSeconds(Meta.Long(pod["metadata"]?["deletionGracePeriodSeconds"]) ?? 30));
                    try
                    {
                        Service.Delete(podType, _ns, _name, new DeleteOptions(GracePeriodSeconds: 0, PreconditionUid: _uid));
                    }
                    catch (ApiException e) when (e.Code is 404 or 409)
                    {
                        // Already gone.
                    }

                    return;
                }

                await StepAsync(pod);
                WriteStatus(podType, pod);
                try
                {
                    await _wake.WaitAsync(_kubelet.Options.Tick, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ApiException or UnauthorizedAccessException)
        {
            LogWorkerFailed(_kubelet.Logger, _ns, _name, e);
        }
        finally
        {
            foreach (var run in _runs.Values)
            {
                KillNow(run);
            }

            TryDeleteDirectory(Path.Combine(_dir, "volumes"));
        }
    }

    private async Task StepAsync(JsonObject pod)
    {
        var spec = (JsonObject)pod["spec"]!;
        if (Now >= _nextVolumeSync)
        {
            SyncVolumes(spec);
            _nextVolumeSync = Now + TimeSpan.FromSeconds(1);
        }

        _startTime ??= Meta.Timestamp(Now);
        var policy = Meta.Str(spec["restartPolicy"]) ?? "Always";
        foreach (var init in (spec["initContainers"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var run = RunFor("init:" + Meta.Str(init["name"]));
            if (run.Done && Meta.Long(run.Terminated?["exitCode"]) == 0)
            {
                continue;
            }

            Supervise(run, init, pod, policy == "Always" ? "OnFailure" : policy);
            return;
        }

        foreach (var container in (spec["containers"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var run = RunFor(Meta.Str(container["name"])!);
            Supervise(run, container, pod, policy);
            await ProbeAsync(run, container);
        }
    }

    private ContainerRun RunFor(string name)
    {
        if (!_runs.TryGetValue(name, out var run))
        {
            run = new ContainerRun { Name = name };
            _runs[name] = run;
        }

        return run;
    }

    /// <summary>Starts, notices the exit of, and restarts one container according to the restart policy.</summary>
    private void Supervise(ContainerRun run, JsonObject container, JsonObject pod, string policy)
    {
        if (run.Process is { HasExited: true } exited)
        {
            var code = exited.ExitCode;
            run.LastTerminated = new JsonObject
            {
                ["exitCode"] = code,
                ["reason"] = code == 0 ? "Completed" : "Error",
                ["startedAt"] = run.StartedAt,
                ["finishedAt"] = Meta.Timestamp(Now),
                ["containerID"] = $"localkube://{exited.Id}",
            };
            run.Terminated = run.LastTerminated;
            run.Process.Dispose();
            run.Process = null;
            run.Ready = false;
            run.ReadyStreak = 0;
            var restart = policy == "Always" || (policy == "OnFailure" && code != 0);
            if (restart)
            {
                run.Restarts++;
                var backoff = TimeSpan.FromSeconds(Math.Min(_kubelet.Options.MaxRestartBackoff.TotalSeconds, Math.Pow(2, run.Restarts - 1)));
                run.NextStart = Now + backoff;
                run.WaitingReason = "CrashLoopBackOff";
                Events.Record(Service, pod, "Warning", "BackOff", $"Back-off restarting failed container {Meta.Str(container["name"])} in pod {_name}_{_ns}({_uid})", "kubelet");
                run.WaitingMessage = $"back-off {backoff.TotalSeconds:0}s restarting failed container={Meta.Str(container["name"])} pod={_name}_{_ns}({_uid})";
            }
            else
            {
                run.Done = true;
            }
        }

        if (run.Process is not null || run.Done || (run.NextStart is { } next && Now < next))
        {
            return;
        }

        try
        {
            run.Process = Launch(run, container, pod);
            run.StartedAt = Meta.Timestamp(Now);
            Events.Record(Service, pod, "Normal", "Started", $"Started container {Meta.Str(container["name"])} (process {run.Process.Id}, {run.Program})", "kubelet");
            run.Terminated = null;
            run.WaitingReason = null;
            run.WaitingMessage = null;
            var readinessDelay = Meta.Long(container["readinessProbe"]?["initialDelaySeconds"]) ?? 0;
            var livenessDelay = Meta.Long(container["livenessProbe"]?["initialDelaySeconds"]) ?? 0;
            run.NextReadinessProbe = Now + TimeSpan.FromSeconds(readinessDelay);
            run.NextLivenessProbe = Now + TimeSpan.FromSeconds(livenessDelay);
        }
        catch (ContainerConfigException e)
        {
            if (run.WaitingReason != e.Reason)
            {
                Events.Record(Service, pod, "Warning", "Failed", $"Error: {e.Reason}: {e.Message}", "kubelet");
            }

            run.WaitingReason = e.Reason;
            run.WaitingMessage = e.Message;
            run.NextStart = Now + TimeSpan.FromSeconds(2);
        }
    }

    private sealed class ContainerConfigException(string reason, string message) : Exception(message)
    {
        public string Reason { get; } = reason;
    }

    private Process Launch(ContainerRun run, JsonObject container, JsonObject pod)
    {
        var image = Meta.Str(container["image"]) ?? "";
        var (program, prefix) = ResolveImage(image);
        var env = Environment(container, pod);
        string Expand(string s) => Regex.Replace(s, @"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", m => env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value, RegexOptions.None, TimeSpan.FromSeconds(1));
        var mounts = Mounts(container, (JsonObject)pod["spec"]!);
        // A path below a mountPath that already exists on the host (say a kubeconfig under /tmp/... that a test hands the
        // pod while the pod mounts an emptyDir at /tmp) names that host file: it is left alone.
        static bool OnHost(string path) => File.Exists(path) || Directory.Exists(path);
        string Remap(string s)
        {
            foreach (var (mountPath, dir) in mounts.OrderByDescending(m => m.MountPath.Length))
            {
                if (s == mountPath || (s.StartsWith(mountPath + "/", StringComparison.Ordinal) && !OnHost(s)))
                {
                    return dir + s[mountPath.Length..];
                }

                var eq = s.IndexOf("=" + mountPath, StringComparison.Ordinal);
                if (eq >= 0 && (s.Length == eq + 1 + mountPath.Length || (s[eq + 1 + mountPath.Length] == '/' && !OnHost(s[(eq + 1)..]))))
                {
                    return s[..(eq + 1)] + dir + s[(eq + 1 + mountPath.Length)..];
                }
            }

            return s;
        }

        var command = (container["command"] as JsonArray ?? []).Select(c => Remap(Expand(Meta.Str(c) ?? ""))).ToList();
        var args = (container["args"] as JsonArray ?? []).Select(c => Remap(Expand(Meta.Str(c) ?? ""))).ToList();
        var argv = new List<string>(prefix);
        if (command.Count > 0)
        {
            var first = command[0];
            if (Path.GetFileName(first) != Path.GetFileName(program) && Path.GetFileName(first) != ImageName(image))
            {
                // The command names another program (sh, a script): run it as given.
                program = first;
                argv.Clear();
            }

            argv.AddRange(command.Skip(1));
        }

        argv.AddRange(args);
        var psi = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            WorkingDirectory = _dir,
        };
        foreach (var a in argv)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = _runtimeVariables.TryGetValue(k, out var own) && own == v ? v : Remap(v);
        }

        var logPath = LogPath(_kubelet.Options.Root, _ns, _name, _uid, run.Name);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new ContainerConfigException("RunContainerError", $"could not start {program}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ContainerConfigException("RunContainerError", $"could not start {program}: {e.Message}");
        }

        run.Program = program;
        run.Logging = Task.WhenAll(Pump(process.StandardOutput, logPath), Pump(process.StandardError, logPath));
        return process;
    }

    private static readonly Lock LogLock = new();

    private static async Task Pump(StreamReader reader, string path)
    {
        try
        {
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null)
            {
                lock (LogLock)
                {
                    File.AppendAllText(path, line + "\n");
                }
            }
        }
        catch (IOException)
        {
            // The process or the pod directory went away.
        }
    }

    private static string ImageName(string image)
    {
        var last = image.Split('/')[^1];
        var colon = last.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? last : last[..colon];
    }

    private (string Program, List<string> Prefix) ResolveImage(string image)
    {
        var withoutTag = image.Contains(':', StringComparison.Ordinal) && !image[image.LastIndexOf(':')..].Contains('/', StringComparison.Ordinal) ? image[..image.LastIndexOf(':')] : image;
        if (ImageName(image) == "testpod" && withoutTag.EndsWith("localkube/testpod", StringComparison.Ordinal))
        {
            var self = Path.ChangeExtension(typeof(PodWorker).Assembly.Location, null);
            return (self, ["testpod"]);
        }

        var images = _kubelet.Options.Images;
        if (images.TryGetValue(image, out var program) || images.TryGetValue(withoutTag, out program) || images.TryGetValue(ImageName(image), out program))
        {
            return (program, []);
        }

        throw new ContainerConfigException("ErrImagePull", $"image \"{image}\" is not in localkube's image map (known: {string.Join(", ", images.Keys.Append("localkube/testpod"))}); add it with --image {ImageName(image)}=PATH");
    }

    private Dictionary<string, string> Environment(JsonObject container, JsonObject pod)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
            ["HOME"] = _dir,
            ["HOSTNAME"] = Meta.Str(pod["spec"]?["hostname"]) ?? _name,
            ["LOCALKUBE_POD_IP"] = _ip,
            ["LOCALKUBE_POD_NAME"] = _name,
            ["LOCALKUBE_POD_NAMESPACE"] = _ns,
            ["LOCALKUBE_HOSTS_FILE"] = PodLinks.HostsFileOf(_kubelet.Options.Root, _ns, _name, _uid),
        };
        if (System.Environment.GetEnvironmentVariable("DOTNET_ROOT") is { } dotnetRoot)
        {
            env["DOTNET_ROOT"] = dotnetRoot;
        }

        // Host paths the runtime itself provides are not container paths: mountPath remapping must leave them alone
        // (a hosts file under /tmp is not in the container's /tmp emptyDir).
        _runtimeVariables = new Dictionary<string, string>(env, StringComparer.Ordinal);

        foreach (var source in (container["envFrom"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var prefix = Meta.Str(source["prefix"]) ?? "";
            var (data, optional, what) = source["configMapRef"] is JsonObject cm
                ? (ConfigData("configmaps", Meta.Str(cm["name"])), Meta.Bool(cm["optional"]) == true, $"configmap \"{Meta.Str(cm["name"])}\"")
                : (ConfigData("secrets", Meta.Str(source["secretRef"]?["name"])), Meta.Bool(source["secretRef"]?["optional"]) == true, $"secret \"{Meta.Str(source["secretRef"]?["name"])}\"");
            if (data is null && !optional)
            {
                throw new ContainerConfigException("CreateContainerConfigError", $"{what} not found");
            }

            foreach (var (k, v) in data ?? [])
            {
                env[prefix + k] = v;
            }
        }

        foreach (var item in (container["env"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var name = Meta.Str(item["name"]) ?? "";
            if (Meta.Str(item["value"]) is { } value)
            {
                env[name] = Regex.Replace(value, @"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", m => env.TryGetValue(m.Groups[1].Value, out var v) ? v : m.Value, RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            else if (item["valueFrom"] is JsonObject from)
            {
                env[name] = ValueFrom(from, pod) ?? "";
            }
        }

        return env;
    }

    private string? ValueFrom(JsonObject from, JsonObject pod)
    {
        if (Meta.Str(from["fieldRef"]?["fieldPath"]) is { } field)
        {
            var m = Regex.Match(field, @"^metadata\.(labels|annotations)\['(.+)'\]$", RegexOptions.None, TimeSpan.FromSeconds(1));
            if (m.Success)
            {
                return Meta.Str(pod["metadata"]?[m.Groups[1].Value]?[m.Groups[2].Value]);
            }

            return field switch
            {
                "metadata.name" => _name,
                "metadata.namespace" => _ns,
                "metadata.uid" => _uid,
                "spec.nodeName" => Meta.Str(pod["spec"]?["nodeName"]),
                "spec.serviceAccountName" => Meta.Str(pod["spec"]?["serviceAccountName"]),
                "status.podIP" or "status.podIPs" => _ip,
                "status.hostIP" or "status.hostIPs" => "127.0.0.1",
                _ => throw new ContainerConfigException("CreateContainerConfigError", $"unsupported fieldRef {field}"),
            };
        }

        if (from["resourceFieldRef"] is not null)
        {
            return "0";
        }

        var (kind, reference) = from["configMapKeyRef"] is JsonObject c ? ("configmaps", c) : ("secrets", from["secretKeyRef"] as JsonObject);
        if (reference is null)
        {
            return null;
        }

        var data = ConfigData(kind, Meta.Str(reference["name"]));
        var key = Meta.Str(reference["key"]) ?? "";
        if (data is not null && data.TryGetValue(key, out var value))
        {
            return value;
        }

        if (Meta.Bool(reference["optional"]) == true)
        {
            return null;
        }

        throw new ContainerConfigException("CreateContainerConfigError", $"couldn't find key {key} in {kind[..^1]} {_ns}/{Meta.Str(reference["name"])}");
    }

    /// <summary>The data of a ConfigMap or Secret (decoded), or null when it does not exist.</summary>
    private Dictionary<string, string>? ConfigData(string plural, string? name)
    {
        var type = Service.Registry.Find("", "v1", plural)!;
        var stored = name is null ? null : Service.Store.Get(type.StorageKey, _ns, name);
        if (stored is null)
        {
            return null;
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in stored.Object["data"] as JsonObject ?? [])
        {
            result[k] = plural == "secrets" ? Encoding.UTF8.GetString(Convert.FromBase64String(Meta.Str(v) ?? "")) : Meta.Str(v) ?? "";
        }

        foreach (var (k, v) in stored.Object["stringData"] as JsonObject ?? [])
        {
            result[k] = Meta.Str(v) ?? "";
        }

        return result;
    }

    private string VolumeDirectory(JsonObject volume)
    {
        var name = Meta.Str(volume["name"]) ?? "";
        if (Meta.Str(volume["persistentVolumeClaim"]?["claimName"]) is { } claim)
        {
            return Path.Combine(_kubelet.Options.Root, "volumes", _ns, claim);
        }

        if (Meta.Str(volume["hostPath"]?["path"]) is { } hostPath)
        {
            return hostPath;
        }

        return Path.Combine(_dir, "volumes", name);
    }

    private List<(string MountPath, string Dir)> Mounts(JsonObject container, JsonObject spec)
    {
        var volumes = (spec["volumes"] as JsonArray ?? []).OfType<JsonObject>().ToDictionary(v => Meta.Str(v["name"]) ?? "");
        var result = new List<(string, string)>();
        foreach (var mount in (container["volumeMounts"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var volumeName = Meta.Str(mount["name"]) ?? "";
            if (!volumes.TryGetValue(volumeName, out var volume))
            {
                throw new ContainerConfigException("CreateContainerConfigError", $"volume \"{volumeName}\" is mounted but not defined in the pod");
            }

            var dir = VolumeDirectory(volume);
            if (Meta.Str(mount["subPath"]) is { Length: > 0 } sub)
            {
                dir = Path.Combine(dir, sub);
            }

            Directory.CreateDirectory(dir);
            result.Add((Meta.Str(mount["mountPath"]) ?? "/", dir));
        }

        return result;
    }

    /// <summary>Creates volume directories and (re)writes ConfigMap and Secret files whose content changed.</summary>
    private void SyncVolumes(JsonObject spec)
    {
        foreach (var volume in (spec["volumes"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var dir = VolumeDirectory(volume);
            Directory.CreateDirectory(dir);
            var (plural, source) = volume["configMap"] is JsonObject cm ? ("configmaps", cm) : ("secrets", volume["secret"] as JsonObject);
            if (source is null)
            {
                continue;
            }

            var data = ConfigData(plural, Meta.Str(source[plural == "configmaps" ? "name" : "secretName"]));
            if (data is null)
            {
                continue;
            }

            var items = (source["items"] as JsonArray ?? []).OfType<JsonObject>().ToDictionary(i => Meta.Str(i["key"]) ?? "", i => Meta.Str(i["path"]) ?? "");
            foreach (var (key, value) in data)
            {
                if (items.Count > 0 && !items.ContainsKey(key))
                {
                    continue;
                }

                var path = Path.Combine(dir, items.GetValueOrDefault(key, key));
                if (!File.Exists(path) || File.ReadAllText(path) != value)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    var temp = path + ".tmp";
                    File.WriteAllText(temp, value);
                    File.Move(temp, path, overwrite: true);
                }
            }
        }
    }

    private async Task ProbeAsync(ContainerRun run, JsonObject container)
    {
        if (!run.Running)
        {
            return;
        }

        if (container["readinessProbe"] is JsonObject readiness)
        {
            if (Now >= run.NextReadinessProbe)
            {
                run.NextReadinessProbe = Now + Period(readiness);
                var ok = await CheckAsync(readiness, container);
                run.ReadyStreak = ok ? Math.Max(1, run.ReadyStreak + 1) : Math.Min(-1, run.ReadyStreak - 1);
                if (ok && run.ReadyStreak >= (Meta.Long(readiness["successThreshold"]) ?? 1))
                {
                    run.Ready = true;
                }
                else if (!ok && -run.ReadyStreak >= (Meta.Long(readiness["failureThreshold"]) ?? 3))
                {
                    run.Ready = false;
                }
            }
        }
        else
        {
            run.Ready = true;
        }

        if (container["livenessProbe"] is JsonObject liveness && Now >= run.NextLivenessProbe)
        {
            run.NextLivenessProbe = Now + Period(liveness);
            if (await CheckAsync(liveness, container))
            {
                run.LiveFailures = 0;
            }
            else if (++run.LiveFailures >= (Meta.Long(liveness["failureThreshold"]) ?? 3))
            {
                // Liveness failed: kill the container; the restart policy brings it back.
                run.LiveFailures = 0;
                KillNow(run);
            }
        }
    }

    private static TimeSpan Period(JsonObject probe) => TimeSpan.FromSeconds(Meta.Long(probe["periodSeconds"]) ?? 10);

    private async Task<bool> CheckAsync(JsonObject probe, JsonObject container)
    {
        var timeout = TimeSpan.FromSeconds(Meta.Long(probe["timeoutSeconds"]) ?? 1);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            if (probe["httpGet"] is JsonObject http)
            {
                var port = Port(http["port"], container);
                var host = Meta.Str(http["host"]) ?? _ip;
                var scheme = (Meta.Str(http["scheme"]) ?? "HTTP").ToLowerInvariant();
                using var client = new HttpClient { Timeout = timeout };
                using var request = new HttpRequestMessage(HttpMethod.Get, $"{scheme}://{host}:{port}{Meta.Str(http["path"]) ?? "/"}");
                foreach (var header in (http["httpHeaders"] as JsonArray ?? []).OfType<JsonObject>())
                {
                    request.Headers.TryAddWithoutValidation(Meta.Str(header["name"]) ?? "", Meta.Str(header["value"]));
                }

                using var response = await client.SendAsync(request, cts.Token);
                return (int)response.StatusCode is >= 200 and < 400;
            }

            if (probe["tcpSocket"] is JsonObject tcp)
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync(Meta.Str(tcp["host"]) ?? _ip, Port(tcp["port"], container), cts.Token);
                return true;
            }

            if (probe["exec"]?["command"] is JsonArray command && command.Count > 0)
            {
                var psi = new ProcessStartInfo(Meta.Str(command[0])!) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
                foreach (var a in command.Skip(1))
                {
                    psi.ArgumentList.Add(Meta.Str(a) ?? "");
                }

                using var process = Process.Start(psi)!;
                await process.WaitForExitAsync(cts.Token);
                return process.ExitCode == 0;
            }

            return true;
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or OperationCanceledException or System.ComponentModel.Win32Exception or IOException)
        {
            return false;
        }
    }

    private static int Port(JsonNode? port, JsonObject container)
    {
        if (Meta.Int(port) is { } number)
        {
            return number;
        }

        var name = Meta.Str(port);
        return (container["ports"] as JsonArray ?? []).OfType<JsonObject>().Where(p => Meta.Str(p["name"]) == name).Select(p => Meta.Int(p["containerPort"])).FirstOrDefault()
            ?? (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0);
    }

    private void WriteStatus(ResourceType podType, JsonObject pod)
    {
        var spec = (JsonObject)pod["spec"]!;
        var previous = pod["status"] as JsonObject ?? [];
        var now = Meta.Timestamp(Now);
        var inits = (spec["initContainers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        var initialized = inits.All(i => _runs.TryGetValue("init:" + Meta.Str(i["name"]), out var r) && r.Done && Meta.Long(r.Terminated?["exitCode"]) == 0);
        var statuses = new JsonArray();
        var containers = (spec["containers"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        foreach (var c in containers)
        {
            statuses.Add(ContainerStatus(c, _runs.GetValueOrDefault(Meta.Str(c["name"])!)));
        }

        var runs = containers.Select(c => _runs.GetValueOrDefault(Meta.Str(c["name"])!)).ToList();
        var allReady = initialized && runs.All(r => r is { Running: true, Ready: true });
        var initFailed = inits.Any(i => _runs.TryGetValue("init:" + Meta.Str(i["name"]), out var r) && r.Done && Meta.Long(r.Terminated?["exitCode"]) != 0);
        var phase = initFailed ? "Failed"
            : runs.All(r => r is { Done: true }) ? (runs.All(r => Meta.Long(r!.Terminated?["exitCode"]) == 0) ? "Succeeded" : "Failed")
            : initialized && runs.All(r => r is not null && (r.Running || r.Restarts > 0 || r.Done)) ? "Running"
            : "Pending";
        var status = new JsonObject
        {
            ["phase"] = phase,
            ["conditions"] = previous["conditions"]?.DeepClone() ?? new JsonArray(),
            ["hostIP"] = "127.0.0.1",
            ["hostIPs"] = new JsonArray(new JsonObject { ["ip"] = "127.0.0.1" }),
            ["podIP"] = _ip,
            ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = _ip }),
            ["startTime"] = _startTime,
            ["qosClass"] = Meta.Str(previous["qosClass"]) ?? "BestEffort",
            ["containerStatuses"] = statuses,
        };
        if (inits.Count > 0)
        {
            status["initContainerStatuses"] = new JsonArray(inits.Select(i => (JsonNode?)ContainerStatus(i, _runs.GetValueOrDefault("init:" + Meta.Str(i["name"])))).ToArray());
        }

        Objects.SetCondition(status, Objects.Condition("PodReadyToStartContainers", "True", null, null, now));
        Objects.SetCondition(status, Objects.Condition("Initialized", initialized ? "True" : "False", initialized ? null : "ContainersNotInitialized", null, now));
        Objects.SetCondition(status, Objects.Condition("ContainersReady", allReady ? "True" : "False", allReady ? null : "ContainersNotReady", null, now));
        Objects.SetCondition(status, Objects.Condition("Ready", allReady ? "True" : "False", allReady ? null : "ContainersNotReady", null, now));
        Objects.SetCondition(status, Objects.Condition("PodScheduled", "True", null, null, now));
        if (JsonNode.DeepEquals(previous, status))
        {
            return;
        }

        var updated = (JsonObject)pod.DeepClone();
        updated["status"] = status;
        try
        {
            Service.Update(podType, _ns, _name, updated, new WriteOptions(), "status");
        }
        catch (ApiException e) when (e.Code is 404 or 409)
        {
            // Retried on the next tick with the newer object.
        }
    }

    private static JsonObject ContainerStatus(JsonObject container, ContainerRun? run)
    {
        JsonObject state;
        if (run?.Running == true)
        {
            state = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = run.StartedAt } };
        }
        else if (run is { Done: true, Terminated: not null })
        {
            state = new JsonObject { ["terminated"] = run.Terminated.DeepClone() };
        }
        else
        {
            state = new JsonObject { ["waiting"] = new JsonObject { ["reason"] = run?.WaitingReason ?? "ContainerCreating", ["message"] = run?.WaitingMessage } };
            if (run?.WaitingMessage is null)
            {
                ((JsonObject)state["waiting"]!).Remove("message");
            }
        }

        var status = new JsonObject
        {
            ["name"] = Meta.Str(container["name"]),
            ["image"] = Meta.Str(container["image"]),
            ["imageID"] = run is { Program.Length: > 0 } ? $"localkube://{run.Program}" : "",
            ["ready"] = run is { Running: true, Ready: true },
            ["started"] = run?.Running == true,
            ["restartCount"] = run?.Restarts ?? 0,
            ["state"] = state,
        };
        if (run?.Process is { } p)
        {
            status["containerID"] = $"localkube://{p.Id}";
        }

        if (run?.LastTerminated is { } last && !(run.Done && ReferenceEquals(last, run.Terminated)))
        {
            status["lastState"] = new JsonObject { ["terminated"] = last.DeepClone() };
        }

        return status;
    }

    private async Task TerminateAsync(TimeSpan grace)
    {
        foreach (var run in _runs.Values.Where(r => r.Running))
        {
            _ = SendSignal(run.Process!.Id, 15);
        }

        var deadline = Now + grace;
        while (_runs.Values.Any(r => r.Running) && Now < deadline && !_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(50, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        foreach (var run in _runs.Values)
        {
            KillNow(run);
        }

        // The last lines a program printed while stopping belong in its log before the pod is gone.
        await Task.WhenAny(Task.WhenAll(_runs.Values.Select(r => r.Logging)), Task.Delay(TimeSpan.FromSeconds(2)));
    }

    private static void KillNow(ContainerRun run)
    {
        try
        {
            if (run.Process is { HasExited: false } p)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (IOException)
        {
            // Best effort.
        }
        catch (UnauthorizedAccessException)
        {
            // Best effort.
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pod {Namespace}/{Name}: worker failed")]
    private static partial void LogWorkerFailed(ILogger logger, string @namespace, string name, Exception error);
}
