using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>Keeps each selector Service's Endpoints and EndpointSlice (named SERVICE-local) in line with the pods
/// it selects: ready pods as addresses, others as not-ready (or as addresses when publishNotReadyAddresses),
/// named target ports resolved against each pod's container ports. A terminating pod (deletionTimestamp set) leaves
/// the Endpoints at once unless publishNotReadyAddresses, and stays in the EndpointSlice with
/// <c>terminating: true</c> and <c>ready: false</c> (serving as its readiness) until it is gone, as Kubernetes'
/// endpoint controllers do; the ClusterIP proxy routes only to ready addresses, so new connections avoid it.</summary>
internal sealed class EndpointsController(ResourceService service, ILogger logger) : WorkloadController(service, logger)
{
    protected override string Name => "endpoints";

    protected override void Reconcile()
    {
        var epType = Type("", "endpoints");
        var sliceType = Service.Registry.Find("discovery.k8s.io", "v1", "endpointslices")!;
        foreach (var svc in All("", "services"))
        {
            if (Meta.IsDeleting(svc) || svc["spec"]?["selector"] is not JsonObject { Count: > 0 } selectorMap)
            {
                continue;
            }

            var ns = Meta.Namespace(svc);
            var name = Meta.Name(svc)!;
            var selector = LabelSelector.FromMap(selectorMap);
            var publishNotReady = Meta.Bool(svc["spec"]?["publishNotReadyAddresses"]) == true;
            var pods = All("", "pods", ns).Where(p => selector.Matches(Meta.Labels(p)) && Meta.Str(p["status"]?["podIP"]) is { Length: > 0 } && !Objects.IsPodFinished(p))
                .OrderBy(p => Meta.Name(p), StringComparer.Ordinal).ToList();
            var ports = (svc["spec"]?["ports"] as JsonArray ?? []).OfType<JsonObject>().ToList();

            var ready = new JsonArray();
            var notReady = new JsonArray();
            var sliceEndpoints = new JsonArray();
            foreach (var pod in pods)
            {
                var isReady = Objects.IsPodReady(pod);
                var terminating = Meta.IsDeleting(pod);
                var serving = ResourceRegistry.ConditionStatus(pod, "Ready") == "True";
                var address = new JsonObject
                {
                    ["ip"] = Meta.Str(pod["status"]?["podIP"]),
                    ["nodeName"] = Meta.Str(pod["spec"]?["nodeName"]),
                    ["targetRef"] = new JsonObject { ["kind"] = "Pod", ["namespace"] = ns, ["name"] = Meta.Name(pod), ["uid"] = Meta.Uid(pod) },
                };
                if (Meta.Str(pod["spec"]?["hostname"]) is { } host && Meta.Str(pod["spec"]?["subdomain"]) == name)
                {
                    address["hostname"] = host;
                }

                if (isReady || publishNotReady)
                {
                    ready.Add(address);
                }
                else if (!terminating)
                {
                    notReady.Add(address);
                }

                var endpoint = new JsonObject
                {
                    ["addresses"] = new JsonArray(Meta.Str(pod["status"]?["podIP"])),
                    ["conditions"] = new JsonObject { ["ready"] = isReady || publishNotReady, ["serving"] = serving, ["terminating"] = terminating },
                    ["nodeName"] = Meta.Str(pod["spec"]?["nodeName"]),
                    ["targetRef"] = address["targetRef"]!.DeepClone(),
                };
                if (address["hostname"] is { } h)
                {
                    endpoint["hostname"] = h.DeepClone();
                }

                sliceEndpoints.Add(endpoint);
            }

            var epPorts = new JsonArray(ports.Select(p => (JsonNode?)new JsonObject
            {
                ["name"] = Meta.Str(p["name"]),
                ["port"] = TargetPort(p, pods.FirstOrDefault()),
                ["protocol"] = Meta.Str(p["protocol"]) ?? "TCP",
            }).ToArray());
            foreach (var port in epPorts.OfType<JsonObject>().Where(p => p["name"] is null))
            {
                port.Remove("name");
            }

            var subset = new JsonObject { ["ports"] = epPorts };
            if (ready.Count > 0)
            {
                subset["addresses"] = ready;
            }

            if (notReady.Count > 0)
            {
                subset["notReadyAddresses"] = notReady;
            }

            var owner = new JsonArray(Objects.OwnerReference(svc));
            Upsert(epType, ns, name, new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = Meta.Labels(svc)?.DeepClone() },
                ["subsets"] = ready.Count + notReady.Count == 0 ? new JsonArray() : new JsonArray(subset),
            });
            Upsert(sliceType, ns, name + "-local", new JsonObject
            {
                ["metadata"] = new JsonObject
                {
                    ["name"] = name + "-local",
                    ["labels"] = new JsonObject { ["kubernetes.io/service-name"] = name, ["endpointslice.kubernetes.io/managed-by"] = "localkube" },
                    ["ownerReferences"] = owner,
                },
                ["addressType"] = "IPv4",
                ["endpoints"] = sliceEndpoints,
                ["ports"] = epPorts.DeepClone(),
            });
        }
    }

    private static int TargetPort(JsonObject servicePort, JsonObject? pod)
    {
        var target = servicePort["targetPort"] ?? servicePort["port"];
        if (Meta.Int(target) is { } n)
        {
            return n;
        }

        var name = Meta.Str(target);
        var match = (pod?["spec"]?["containers"] as JsonArray ?? []).OfType<JsonObject>()
            .SelectMany(c => (c["ports"] as JsonArray ?? []).OfType<JsonObject>())
            .FirstOrDefault(p => Meta.Str(p["name"]) == name);
        return Meta.Int(match?["containerPort"]) ?? Meta.Int(servicePort["port"]) ?? 0;
    }

    private void Upsert(ResourceType type, string? ns, string name, JsonObject desired)
    {
        var current = Service.Store.Get(type.StorageKey, ns, name);
        if (current is null)
        {
            Try(() => Service.Create(type, ns, desired, new WriteOptions(FieldManager: "endpoint-controller")));
            return;
        }

        var updated = (JsonObject)current.Object.DeepClone();
        foreach (var (k, v) in desired)
        {
            if (k == "metadata")
            {
                var meta = Meta.Of(updated);
                foreach (var (mk, mv) in (JsonObject)v!)
                {
                    meta[mk] = mv?.DeepClone();
                }
            }
            else
            {
                updated[k] = v?.DeepClone();
            }
        }

        Try(() => Service.Update(type, ns, name, updated, new WriteOptions(FieldManager: "endpoint-controller")));
    }
}
