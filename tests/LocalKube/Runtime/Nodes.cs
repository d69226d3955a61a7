using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>The simulated nodes: Node objects with hostname and zone labels, always Ready. Their pods run as
/// local processes of this machine; the node only decides placement (anti-affinity, topology spread).</summary>
internal static class Nodes
{
    public static void Create(ResourceService service, int count, IReadOnlyList<string> zones)
    {
        var type = service.Registry.Find("", "v1", "nodes")!;
        var now = Meta.Timestamp(service.Time.GetUtcNow());
        for (var i = 1; i <= count; i++)
        {
            var name = $"node-{i}";
            var zone = zones[(i - 1) % zones.Count];
            var node = new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["name"] = name,
                    ["labels"] = new JsonObject
                    {
                        ["kubernetes.io/hostname"] = name,
                        ["kubernetes.io/os"] = "linux",
                        ["topology.kubernetes.io/zone"] = zone,
                        ["topology.kubernetes.io/region"] = "local",
                    },
                },
                ["spec"] = new JsonObject(),
            };
            service.Create(type, null, node, new WriteOptions());
            var stored = service.Get(type, null, name);
            stored["status"] = new JsonObject
            {
                ["conditions"] = new JsonArray(Objects.Condition("Ready", "True", "KubeletReady", "localkube runs this node's pods as local processes", now)),
                ["nodeInfo"] = new JsonObject { ["kubeletVersion"] = "v1.33.0-localkube", ["operatingSystem"] = "linux", ["architecture"] = "amd64" },
                ["addresses"] = new JsonArray(new JsonObject { ["type"] = "InternalIP", ["address"] = "127.0.0.1" }, new JsonObject { ["type"] = "Hostname", ["address"] = name }),
                ["capacity"] = new JsonObject { ["cpu"] = "8", ["memory"] = "16Gi", ["pods"] = "110" },
                ["allocatable"] = new JsonObject { ["cpu"] = "8", ["memory"] = "16Gi", ["pods"] = "110" },
            };
            service.Update(type, null, name, stored, new WriteOptions(), "status");
        }
    }
}
