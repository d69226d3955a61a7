using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Validation;

namespace LocalKube.Runtime;

/// <summary>Network faults between pods, driven by pod annotations. Each pod A has its own hosts file
/// (<c>LOCALKUBE_HOSTS_FILE</c>) in which the names of every other pod B of its namespace resolve to a link address
/// L(A,B) instead of B's own address; on L(A,B) a relay listens on each of B's container ports and forwards to B,
/// applying the faults of A and B to both directions: <c>localkube.raftkv.io/delay</c> (a Go duration, "25ms")
/// adds up, <c>localkube.raftkv.io/loss</c> (a share, "0.05") combines as independent losses (a lost chunk is
/// held back 200 ms, as a TCP retransmission would be), and <c>localkube.raftkv.io/partition: "true"</c> on
/// either pod closes their connections and refuses new ones. Changes apply within a second; removing the
/// annotation heals. A terminating pod keeps its links (both ways) until its processes have exited. Traffic that uses pod addresses directly (not names) is not affected.</summary>
internal sealed partial class PodLinks(ResourceService service, PodNetwork network, RuntimeOptions options, ILogger logger) : WorkloadController(service, logger)
{
    public const string DelayAnnotation = "localkube.raftkv.io/delay";
    public const string LossAnnotation = "localkube.raftkv.io/loss";
    public const string PartitionAnnotation = "localkube.raftkv.io/partition";

    private readonly Dictionary<string, TcpRelay> _relays = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LinkFaults> _faults = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _hostsWritten = new(StringComparer.Ordinal);
    private readonly Lock _faultsLock = new();
    private readonly Random _random = new();

    protected override string Name => "pod-links";

    /// <summary>The hosts file of one pod.</summary>
    public static string HostsFileOf(string root, string ns, string name, string uid) => Path.Combine(PodWorker.PodDirectory(root, ns, name, uid), "hosts");

    /// <summary>Reads the fault annotations of a pod; malformed values count as absent.</summary>
    internal static LinkFaults FaultsOf(JsonObject pod)
    {
        var annotations = pod["metadata"]?["annotations"] as JsonObject;
        var delay = TimeSpan.Zero;
        if (Meta.Str(annotations?[DelayAnnotation]) is { } d)
        {
            try
            {
                delay = Cel.ParseDuration(d);
            }
            catch (CelException)
            {
                delay = TimeSpan.Zero;
            }
        }

        var loss = double.TryParse(Meta.Str(annotations?[LossAnnotation]), NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 0, 1) : 0;
        var partitioned = string.Equals(Meta.Str(annotations?[PartitionAnnotation]), "true", StringComparison.OrdinalIgnoreCase);
        return new LinkFaults(delay < TimeSpan.Zero ? TimeSpan.Zero : delay, loss, partitioned);
    }

    internal static LinkFaults Combine(LinkFaults a, LinkFaults b) =>
        new(a.Delay + b.Delay, 1 - ((1 - a.Loss) * (1 - b.Loss)), a.Partitioned || b.Partitioned);

    protected override void Reconcile()
    {
        // Terminating pods keep their links until their processes exit, as a pod keeps its network in a cluster.
        var pods = All("", "pods").Where(Objects.HasPodNetwork).ToList();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var newFaults = pods.ToDictionary(p => $"{Meta.Namespace(p)}/{Meta.Name(p)}", FaultsOf, StringComparer.Ordinal);
        Dictionary<string, LinkFaults> oldFaults;
        lock (_faultsLock)
        {
            oldFaults = new Dictionary<string, LinkFaults>(_faults, StringComparer.Ordinal);
            _faults.Clear();
            foreach (var (k, v) in newFaults)
            {
                _faults[k] = v;
            }
        }

        foreach (var group in pods.GroupBy(p => Meta.Namespace(p)!))
        {
            var members = group.ToList();
            foreach (var a in members)
            {
                var aKey = $"{group.Key}/{Meta.Name(a)}";
                var lines = new StringBuilder("# written by localkube for pod ").Append(aKey).Append(": peers resolve to fault-injecting links\n");
                foreach (var b in members.Where(b => b != a))
                {
                    var bName = Meta.Name(b)!;
                    var bKey = $"{group.Key}/{bName}";
                    var link = network.LinkAddressOf(aKey, bKey);
                    var bIp = network.AddressOf(group.Key, bName);
                    foreach (var port in (b["spec"]?["containers"] as JsonArray ?? []).OfType<JsonObject>()
                        .SelectMany(c => (c["ports"] as JsonArray ?? []).OfType<JsonObject>())
                        .Select(p => Meta.Int(p["containerPort"])).OfType<int>().Distinct())
                    {
                        var relayKey = $"{aKey}>{bKey}:{port}";
                        wanted.Add(relayKey);
                        if (!_relays.TryGetValue(relayKey, out var relay))
                        {
                            try
                            {
                                var target = new IPEndPoint(IPAddress.Parse(bIp), port);
                                _relays[relayKey] = new TcpRelay(new IPEndPoint(IPAddress.Parse(link), port), () => target, () => Faults(aKey, bKey), _random);
                            }
                            catch (System.Net.Sockets.SocketException e)
                            {
                                LogLinkFailed(Logger, link, port, e);
                            }
                        }
                        else if (Combine(oldFaults.GetValueOrDefault(aKey, LinkFaults.None), oldFaults.GetValueOrDefault(bKey, LinkFaults.None)) is { Partitioned: false }
                            && Faults(aKey, bKey).Partitioned)
                        {
                            // A partition starts: established connections go too.
                            relay.CloseConnections();
                        }
                    }

                    var host = Meta.Str(b["spec"]?["hostname"]) ?? bName;
                    if (Meta.Str(b["spec"]?["subdomain"]) is { Length: > 0 } sub)
                    {
                        lines.Append(link).Append(' ').Append($"{host}.{sub}.{group.Key}.svc.cluster.local").Append('\n');
                        lines.Append(link).Append(' ').Append($"{host}.{sub}.{group.Key}.svc").Append('\n');
                        lines.Append(link).Append(' ').Append($"{host}.{sub}.{group.Key}").Append('\n');
                    }

                    lines.Append(link).Append(' ').Append($"{bIp.Replace('.', '-')}.{group.Key}.pod.cluster.local").Append('\n');
                }

                // Everything else (services, this pod itself, other namespaces) as in the cluster-wide file.
                if (File.Exists(network.HostsFile))
                {
                    foreach (var line in File.ReadAllLines(network.HostsFile))
                    {
                        if (line.StartsWith('#') || members.Any(b => b != a && IsNameOf(line, b, group.Key)))
                        {
                            continue;
                        }

                        lines.Append(line).Append('\n');
                    }
                }

                WriteHosts(HostsFileOf(options.Root, group.Key, Meta.Name(a)!, Meta.Uid(a)!), lines.ToString());
            }
        }

        foreach (var key in _relays.Keys.Where(k => !wanted.Contains(k)).ToList())
        {
            _ = _relays[key].DisposeAsync().AsTask();
            _relays.Remove(key);
        }
    }

    private static bool IsNameOf(string hostsLine, JsonObject pod, string ns)
    {
        var name = hostsLine.Split(' ', 2) is [_, var n] ? n : "";
        var host = Meta.Str(pod["spec"]?["hostname"]) ?? Meta.Name(pod)!;
        var sub = Meta.Str(pod["spec"]?["subdomain"]);
        return (sub is not null && name.StartsWith($"{host}.{sub}.{ns}", StringComparison.Ordinal))
            || (Meta.Str(pod["status"]?["podIP"]) is { } ip && name == $"{ip.Replace('.', '-')}.{ns}.pod.cluster.local");
    }

    private LinkFaults Faults(string a, string b)
    {
        lock (_faultsLock)
        {
            return Combine(_faults.GetValueOrDefault(a, LinkFaults.None), _faults.GetValueOrDefault(b, LinkFaults.None));
        }
    }

    private void WriteHosts(string path, string text)
    {
        if (_hostsWritten.TryGetValue(path, out var previous) && previous == text)
        {
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
        _hostsWritten[path] = text;
    }

    public async Task StopAsync()
    {
        foreach (var relay in _relays.Values)
        {
            await relay.DisposeAsync();
        }

        _relays.Clear();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot listen on link address {Address}:{Port}")]
    private static partial void LogLinkFailed(ILogger logger, string address, int port, Exception error);
}
