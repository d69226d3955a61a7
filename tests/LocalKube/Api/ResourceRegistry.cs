using System.Globalization;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>The resources the server serves: the built-in ones plus those that established CRDs define.</summary>
internal sealed class ResourceRegistry
{
    private readonly Lock _lock = new();
    private List<ResourceType> _types = [.. BuiltIn()];

    public IReadOnlyList<ResourceType> All
    {
        get
        {
            lock (_lock)
            {
                return _types;
            }
        }
    }

    /// <summary>Finds a resource by group, version and plural name.</summary>
    public ResourceType? Find(string group, string version, string plural) =>
        All.FirstOrDefault(t => t.Group == group && t.Version == version && t.Plural == plural);

    /// <summary>Finds a resource by apiVersion and kind (used to follow owner references).</summary>
    public ResourceType? FindByKind(string apiVersion, string kind) =>
        All.FirstOrDefault(t => t.ApiVersion == apiVersion && t.Kind == kind)
        ?? All.FirstOrDefault(t => t.Kind == kind && apiVersion.StartsWith(t.Group + "/", StringComparison.Ordinal));

    /// <summary>One served version of each stored resource (used to walk all objects).</summary>
    public ResourceType? FindByStorageKey(string storageKey) => All.FirstOrDefault(t => t.StorageKey == storageKey);

    /// <summary>Replaces the resources a CRD defines (an empty list removes them).</summary>
    public void SetCustom(string crdName, IReadOnlyList<ResourceType> types)
    {
        lock (_lock)
        {
            _types = [.. _types.Where(t => t.DefinedBy != crdName), .. types];
        }
    }

    private static IEnumerable<ResourceType> BuiltIn()
    {
        var age = new PrinterColumn("Age", "date", ".metadata.creationTimestamp");
        yield return new ResourceType("", "v1", "Namespace", "namespaces", "namespace", false)
        {
            ShortNames = ["ns"],
            HasStatus = true,
            Columns = [new("Status", "string", ".status.phase"), age],
            Verbs = ["create", "delete", "get", "list", "patch", "update", "watch"],
        };
        yield return new ResourceType("", "v1", "Node", "nodes", "node", false)
        {
            ShortNames = ["no"],
            HasStatus = true,
            Columns =
            [
                new("Status", "string", "") { Compute = o => ConditionStatus(o, "Ready") == "True" ? "Ready" : "NotReady" },
                new("Roles", "string", "") { Compute = _ => "<none>" },
                age,
                new("Version", "string", ".status.nodeInfo.kubeletVersion"),
            ],
        };
        yield return new ResourceType("", "v1", "Pod", "pods", "pod", true)
        {
            ShortNames = ["po"],
            Categories = ["all"],
            HasStatus = true,
            TracksGeneration = true,
            Columns =
            [
                new("Ready", "string", "") { Compute = PodReady },
                new("Status", "string", "") { Compute = PodStatus },
                new("Restarts", "string", "") { Compute = o => (o["status"]?["containerStatuses"] as JsonArray)?.Sum(c => Meta.Int(c?["restartCount"]) ?? 0).ToString(CultureInfo.InvariantCulture) ?? "0" },
                age,
                new("IP", "string", ".status.podIP", 1),
                new("Node", "string", ".spec.nodeName", 1),
            ],
        };
        yield return new ResourceType("", "v1", "Service", "services", "service", true)
        {
            ShortNames = ["svc"],
            Categories = ["all"],
            HasStatus = true,
            Columns =
            [
                new("Type", "string", ".spec.type"),
                new("Cluster-IP", "string", ".spec.clusterIP"),
                new("External-IP", "string", "") { Compute = _ => "<none>" },
                new("Port(s)", "string", "") { Compute = ServicePorts },
                age,
                new("Selector", "string", "") { Priority = 1, Compute = o => Pairs(o["spec"]?["selector"] as JsonObject) },
            ],
        };
        yield return new ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", true)
        {
            ShortNames = ["ep"],
            Columns = [new("Endpoints", "string", "") { Compute = EndpointsColumn }, age],
        };
        yield return new ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", true)
        {
            ShortNames = ["cm"],
            Columns = [new("Data", "integer", "") { Compute = o => (o["data"] as JsonObject)?.Count + (o["binaryData"] as JsonObject)?.Count ?? (o["data"] as JsonObject)?.Count ?? 0 }, age],
        };
        yield return new ResourceType("", "v1", "Secret", "secrets", "secret", true)
        {
            Columns =
            [
                new("Type", "string", ".type"),
                new("Data", "integer", "") { Compute = o => (o["data"] as JsonObject)?.Count ?? 0 },
                age,
            ],
        };
        yield return new ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true)
        {
            ShortNames = ["pvc"],
            HasStatus = true,
            Columns =
            [
                new("Status", "string", ".status.phase"),
                new("Volume", "string", ".spec.volumeName"),
                new("Capacity", "string", ".status.capacity.storage"),
                new("Access Modes", "string", "") { Compute = o => string.Join(",", (o["status"]?["accessModes"] as JsonArray ?? []).Select(m => m?.GetValue<string>() switch { "ReadWriteOnce" => "RWO", "ReadOnlyMany" => "ROX", "ReadWriteMany" => "RWX", "ReadWriteOncePod" => "RWOP", var x => x })) },
                new("StorageClass", "string", ".spec.storageClassName"),
                age,
            ],
        };
        yield return new ResourceType("", "v1", "Event", "events", "event", true)
        {
            ShortNames = ["ev"],
            Columns =
            [
                new("Type", "string", ".type"),
                new("Reason", "string", ".reason"),
                new("Object", "string", "") { Compute = o => $"{o["involvedObject"]?["kind"]?.GetValue<string>()?.ToLowerInvariant()}/{o["involvedObject"]?["name"]}" },
                new("Message", "string", ".message"),
                age,
            ],
        };
        yield return new ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true)
        {
            ShortNames = ["sa"],
            Columns = [new("Secrets", "integer", "") { Compute = o => (o["secrets"] as JsonArray)?.Count ?? 0 }, age],
        };
        var replicasScale = new ScaleSubresource(".spec.replicas", ".status.replicas", null);
        yield return new ResourceType("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true)
        {
            ShortNames = ["sts"],
            Categories = ["all"],
            HasStatus = true,
            TracksGeneration = true,
            Scale = replicasScale,
            Columns = [new("Ready", "string", "") { Compute = o => $"{Int(o["status"]?["readyReplicas"])}/{Int(o["spec"]?["replicas"], 1)}" }, age],
        };
        yield return new ResourceType("apps", "v1", "Deployment", "deployments", "deployment", true)
        {
            ShortNames = ["deploy"],
            Categories = ["all"],
            HasStatus = true,
            TracksGeneration = true,
            Scale = replicasScale,
            Columns =
            [
                new("Ready", "string", "") { Compute = o => $"{Int(o["status"]?["readyReplicas"])}/{Int(o["spec"]?["replicas"], 1)}" },
                new("Up-to-date", "integer", "") { Compute = o => Int(o["status"]?["updatedReplicas"]) },
                new("Available", "integer", "") { Compute = o => Int(o["status"]?["availableReplicas"]) },
                age,
            ],
        };
        yield return new ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true)
        {
            ShortNames = ["rs"],
            Categories = ["all"],
            HasStatus = true,
            TracksGeneration = true,
            Scale = replicasScale,
            Columns =
            [
                new("Desired", "integer", "") { Compute = o => Int(o["spec"]?["replicas"], 1) },
                new("Current", "integer", "") { Compute = o => Int(o["status"]?["replicas"]) },
                new("Ready", "integer", "") { Compute = o => Int(o["status"]?["readyReplicas"]) },
                age,
            ],
        };
        yield return new ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true)
        {
            Columns = [new("Revision", "integer", ".revision"), age],
        };
        yield return new ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true)
        {
            ShortNames = ["pdb"],
            HasStatus = true,
            TracksGeneration = true,
            Columns =
            [
                new("Min Available", "string", "") { Compute = o => o["spec"]?["minAvailable"]?.ToString() ?? "N/A" },
                new("Max Unavailable", "string", "") { Compute = o => o["spec"]?["maxUnavailable"]?.ToString() ?? "N/A" },
                new("Allowed Disruptions", "integer", "") { Compute = o => Int(o["status"]?["disruptionsAllowed"]) },
                age,
            ],
        };
        yield return new ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", true)
        {
            Columns = [new("Holder", "string", ".spec.holderIdentity"), age],
        };
        yield return new ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true)
        {
            Columns =
            [
                new("AddressType", "string", ".addressType"),
                new("Ports", "string", "") { Compute = o => string.Join(",", (o["ports"] as JsonArray ?? []).Select(p => p?["port"]?.ToString())) is { Length: > 0 } s ? s : "<unset>" },
                new("Endpoints", "string", "") { Compute = o => string.Join(",", (o["endpoints"] as JsonArray ?? []).SelectMany(e => (e?["addresses"] as JsonArray ?? []).Select(a => a?.ToString()))) is { Length: > 0 } s ? s : "<unset>" },
                age,
            ],
        };
        foreach (var (kind, plural, ns) in new[] { ("Role", "roles", true), ("RoleBinding", "rolebindings", true), ("ClusterRole", "clusterroles", false), ("ClusterRoleBinding", "clusterrolebindings", false) })
        {
            yield return new ResourceType("rbac.authorization.k8s.io", "v1", kind, plural, kind.ToLowerInvariant(), ns)
            {
                Columns = kind.EndsWith("Binding", StringComparison.Ordinal)
                    ? [new("Role", "string", "") { Compute = o => $"{o["roleRef"]?["kind"]}/{o["roleRef"]?["name"]}" }, age]
                    : [new("Created At", "date", ".metadata.creationTimestamp")],
            };
        }

        yield return new ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", false)
        {
            ShortNames = ["crd", "crds"],
            HasStatus = true,
            TracksGeneration = true,
            Columns = [new("Created At", "date", ".metadata.creationTimestamp")],
        };
        yield return new ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false)
        {
            ShortNames = ["sc"],
            Columns = [new("Provisioner", "string", ".provisioner"), new("ReclaimPolicy", "string", ".reclaimPolicy"), new("VolumeBindingMode", "string", ".volumeBindingMode"), age],
        };
        yield return new ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false)
        {
            ShortNames = ["pc"],
            Columns = [new("Value", "integer", ".value"), new("Global-Default", "boolean", ".globalDefault"), age],
        };
    }

    private static int Int(JsonNode? n, int fallback = 0) => Meta.Int(n) ?? fallback;

    internal static string? ConditionStatus(JsonObject o, string type) =>
        (o["status"]?["conditions"] as JsonArray)?.FirstOrDefault(c => c?["type"]?.GetValue<string>() == type)?["status"]?.GetValue<string>();

    private static string Pairs(JsonObject? map) =>
        map is null || map.Count == 0 ? "<none>" : string.Join(",", map.Select(kv => $"{kv.Key}={kv.Value}"));

    private static JsonNode PodReady(JsonObject o)
    {
        var containers = (o["spec"]?["containers"] as JsonArray)?.Count ?? 0;
        var ready = (o["status"]?["containerStatuses"] as JsonArray)?.Count(c => Meta.Bool(c?["ready"]) == true) ?? 0;
        return $"{ready}/{containers}";
    }

    private static JsonNode? PodStatus(JsonObject o)
    {
        if (o["metadata"]?["deletionTimestamp"] is not null)
        {
            return "Terminating";
        }

        foreach (var c in o["status"]?["containerStatuses"] as JsonArray ?? [])
        {
            if (c?["state"]?["waiting"]?["reason"] is JsonValue reason)
            {
                return reason.GetValue<string>();
            }

            if (c?["state"]?["terminated"]?["reason"] is JsonValue treason)
            {
                return treason.GetValue<string>();
            }
        }

        return o["status"]?["reason"]?.GetValue<string>() ?? o["status"]?["phase"]?.GetValue<string>() ?? "Pending";
    }

    private static JsonNode ServicePorts(JsonObject o)
    {
        var ports = (o["spec"]?["ports"] as JsonArray ?? []).Select(p =>
            $"{p?["port"]}{(p?["nodePort"] is { } np ? ":" + np : "")}/{p?["protocol"]?.GetValue<string>() ?? "TCP"}").ToList();
        return ports.Count == 0 ? "<none>" : string.Join(",", ports);
    }

    private static JsonNode EndpointsColumn(JsonObject o)
    {
        var list = new List<string>();
        foreach (var subset in o["subsets"] as JsonArray ?? [])
        {
            foreach (var a in subset?["addresses"] as JsonArray ?? [])
            {
                foreach (var p in subset?["ports"] as JsonArray ?? [])
                {
                    list.Add($"{a?["ip"]}:{p?["port"]}");
                }
            }
        }

        return list.Count == 0 ? "<none>" : string.Join(",", list);
    }
}
