using System.Net;
using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>kube-proxy: each TCP port of a Service with a ClusterIP gets a listener on that loopback address, which
/// relays every connection to one ready endpoint of the Service (picked at random per connection).</summary>
internal sealed partial class ServiceProxy(ResourceService service, ILogger logger) : WorkloadController(service, logger)
{
    private readonly Dictionary<string, TcpRelay> _relays = new(StringComparer.Ordinal);
    private readonly Random _random = new();

    protected override string Name => "service-proxy";

    protected override void Reconcile()
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var svc in All("", "services"))
        {
            var ip = Meta.Str(svc["spec"]?["clusterIP"]);
            if (ip is null or "None" or "" || Meta.IsDeleting(svc))
            {
                continue;
            }

            var ns = Meta.Namespace(svc)!;
            var name = Meta.Name(svc)!;
            foreach (var port in (svc["spec"]?["ports"] as JsonArray ?? []).OfType<JsonObject>())
            {
                if ((Meta.Str(port["protocol"]) ?? "TCP") != "TCP" || Meta.Int(port["port"]) is not { } number)
                {
                    continue;
                }

                var key = $"{ip}:{number}";
                wanted.Add(key);
                if (_relays.ContainsKey(key))
                {
                    continue;
                }

                var portName = Meta.Str(port["name"]);
                try
                {
                    _relays[key] = new TcpRelay(new IPEndPoint(IPAddress.Parse(ip), number), () => PickEndpoint(ns, name, portName), () => LinkFaults.None, _random);
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    LogListenFailed(Logger, key, ns, name, e);
                }
            }
        }

        foreach (var key in _relays.Keys.Where(k => !wanted.Contains(k)).ToList())
        {
            _ = _relays[key].DisposeAsync().AsTask();
            _relays.Remove(key);
        }
    }

    private IPEndPoint? PickEndpoint(string ns, string service, string? portName)
    {
        var epType = Type("", "endpoints");
        var endpoints = Service.Store.Get(epType.StorageKey, ns, service)?.Object;
        var candidates = new List<IPEndPoint>();
        foreach (var subset in (endpoints?["subsets"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var port = (subset["ports"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(p => Meta.Str(p["name"]) == portName)
                ?? (subset["ports"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault();
            if (Meta.Int(port?["port"]) is not { } number)
            {
                continue;
            }

            foreach (var address in (subset["addresses"] as JsonArray ?? []).OfType<JsonObject>())
            {
                if (IPAddress.TryParse(Meta.Str(address["ip"]), out var ip))
                {
                    candidates.Add(new IPEndPoint(ip, number));
                }
            }
        }

        lock (_random)
        {
            return candidates.Count == 0 ? null : candidates[_random.Next(candidates.Count)];
        }
    }

    public async Task StopAsync()
    {
        foreach (var relay in _relays.Values)
        {
            await relay.DisposeAsync();
        }

        _relays.Clear();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot listen on {Address} for service {Namespace}/{Service}")]
    private static partial void LogListenFailed(ILogger logger, string address, string @namespace, string service, Exception error);
}
