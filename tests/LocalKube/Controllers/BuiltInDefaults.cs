using System.Globalization;
using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Controllers;

/// <summary>Defaulting and the few validations of built-in kinds that clients rely on: namespace finalizer and
/// phase, Service type, ports and loopback ClusterIP, workload defaults and selector checks.</summary>
internal sealed class BuiltInDefaults(ResourceService service) : IAdmission
{
    /// <summary>Services get ClusterIPs from 127.1.0.0/16 (loopback, so the runtime can listen there without root).</summary>
    public const string ClusterIpPrefix = "127.1.";

    public void Admit(AdmissionRequest request)
    {
        var o = request.Object;
        var t = request.Type;
        switch (t.Group, t.Plural)
        {
            case ("", "namespaces") when request.Operation == "CREATE":
                o["spec"] = new JsonObject { ["finalizers"] = new JsonArray("kubernetes") };
                o["status"] = new JsonObject { ["phase"] = "Active" };
                var labels = Meta.Of(o)["labels"] as JsonObject ?? [];
                labels["kubernetes.io/metadata.name"] = Meta.Name(o);
                Meta.Of(o)["labels"] = labels;
                break;
            case ("", "pods") when request.Operation == "CREATE":
                o["status"] ??= new JsonObject { ["phase"] = "Pending", ["qosClass"] = "BestEffort" };
                var spec = Spec(o);
                spec["restartPolicy"] ??= "Always";
                spec["terminationGracePeriodSeconds"] ??= 30;
                spec["dnsPolicy"] ??= "ClusterFirst";
                spec["schedulerName"] ??= "default-scheduler";
                spec["serviceAccountName"] ??= "default";
                RequireContainers(t, o, spec, "spec.containers");
                break;
            case ("", "services"):
                DefaultService(request);
                break;
            case ("", "secrets"):
                o["type"] ??= "Opaque";
                break;
            case ("", "persistentvolumeclaims") when request.Operation == "CREATE":
                o["status"] ??= new JsonObject { ["phase"] = "Pending" };
                Spec(o)["volumeMode"] ??= "Filesystem";
                break;
            case ("apps", "deployments"):
                DefaultWorkload(t, o);
                var strategy = Spec(o)["strategy"] as JsonObject ?? new JsonObject { ["type"] = "RollingUpdate" };
                if (Meta.Str(strategy["type"]) == "RollingUpdate")
                {
                    strategy["rollingUpdate"] ??= new JsonObject { ["maxUnavailable"] = "25%", ["maxSurge"] = "25%" };
                }

                Spec(o)["strategy"] = strategy;
                Spec(o)["progressDeadlineSeconds"] ??= 600;
                break;
            case ("apps", "statefulsets"):
                DefaultWorkload(t, o);
                Spec(o)["podManagementPolicy"] ??= "OrderedReady";
                var update = Spec(o)["updateStrategy"] as JsonObject ?? new JsonObject { ["type"] = "RollingUpdate" };
                if (Meta.Str(update["type"]) == "RollingUpdate")
                {
                    update["rollingUpdate"] ??= new JsonObject { ["partition"] = 0 };
                }

                Spec(o)["updateStrategy"] = update;
                Spec(o)["persistentVolumeClaimRetentionPolicy"] ??= new JsonObject { ["whenDeleted"] = "Retain", ["whenScaled"] = "Retain" };
                break;
            case ("apps", "replicasets"):
                DefaultWorkload(t, o);
                break;
            default:
                break;
        }
    }

    private static JsonObject Spec(JsonObject o)
    {
        if (o["spec"] is not JsonObject spec)
        {
            spec = [];
            o["spec"] = spec;
        }

        return spec;
    }

    private static void RequireContainers(ResourceType t, JsonObject o, JsonObject spec, string field)
    {
        if (spec["containers"] is not JsonArray { Count: > 0 } containers)
        {
            throw ApiException.Invalid(t, Meta.Name(o) ?? "", [new FieldError(field, "Required value", "FieldValueRequired")]);
        }

        foreach (var c in containers.OfType<JsonObject>())
        {
            c["terminationMessagePath"] ??= "/dev/termination-log";
            c["terminationMessagePolicy"] ??= "File";
            c["imagePullPolicy"] ??= "IfNotPresent";
            foreach (var p in c["ports"] as JsonArray ?? [])
            {
                if (p is JsonObject port)
                {
                    port["protocol"] ??= "TCP";
                }
            }
        }
    }

    private static void DefaultWorkload(ResourceType t, JsonObject o)
    {
        var spec = Spec(o);
        spec["replicas"] ??= 1;
        spec["revisionHistoryLimit"] ??= 10;
        var name = Meta.Name(o) ?? "";
        var template = spec["template"] as JsonObject ?? throw ApiException.Invalid(t, name, [new FieldError("spec.template", "Required value", "FieldValueRequired")]);
        var selector = LabelSelector.FromObject(spec["selector"] as JsonObject)
            ?? throw ApiException.Invalid(t, name, [new FieldError("spec.selector", "Required value", "FieldValueRequired")]);
        if (selector.IsEmpty)
        {
            throw ApiException.Invalid(t, name, [new FieldError("spec.selector", "Invalid value: empty selector is invalid for deployment")]);
        }

        if (!selector.Matches(template["metadata"]?["labels"] as JsonObject))
        {
            throw ApiException.Invalid(t, name, [new FieldError("spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`")]);
        }

        var podSpec = template["spec"] as JsonObject ?? throw ApiException.Invalid(t, name, [new FieldError("spec.template.spec", "Required value", "FieldValueRequired")]);
        RequireContainers(t, o, podSpec, "spec.template.spec.containers");
        podSpec["restartPolicy"] ??= "Always";
        podSpec["terminationGracePeriodSeconds"] ??= 30;
        podSpec["dnsPolicy"] ??= "ClusterFirst";
        podSpec["schedulerName"] ??= "default-scheduler";
    }

    private void DefaultService(AdmissionRequest request)
    {
        var o = request.Object;
        var spec = Spec(o);
        spec["type"] ??= "ClusterIP";
        spec["sessionAffinity"] ??= "None";
        foreach (var p in spec["ports"] as JsonArray ?? [])
        {
            if (p is JsonObject port)
            {
                port["protocol"] ??= "TCP";
                port["targetPort"] ??= port["port"]?.DeepClone();
            }
        }

        var oldIp = Meta.Str(request.OldObject?["spec"]?["clusterIP"]);
        var ip = Meta.Str(spec["clusterIP"]);
        if (request.OldObject is not null && oldIp is not null && (ip is null || ip == oldIp))
        {
            // clusterIP is immutable once set; an update that omits it keeps it.
            spec["clusterIP"] = oldIp;
            spec["clusterIPs"] = new JsonArray(oldIp);
            return;
        }

        if (request.OldObject is not null && oldIp is not null && ip != oldIp)
        {
            throw ApiException.Invalid(request.Type, Meta.Name(o) ?? "", [new FieldError("spec.clusterIPs[0]", "Invalid value: field is immutable")]);
        }

        if (ip == "None")
        {
            spec["clusterIPs"] = new JsonArray("None");
            return;
        }

        if (string.IsNullOrEmpty(ip))
        {
            ip = AllocateClusterIp();
        }
        else if (!ip.StartsWith(ClusterIpPrefix, StringComparison.Ordinal))
        {
            throw ApiException.Invalid(request.Type, Meta.Name(o) ?? "", [new FieldError("spec.clusterIP", $"Invalid value: \"{ip}\": provided IP is not in the valid range. The range of valid IPs is {ClusterIpPrefix}0.0/16")]);
        }

        spec["clusterIP"] = ip;
        spec["clusterIPs"] = new JsonArray(ip);
        spec["ipFamilies"] ??= new JsonArray("IPv4");
        spec["ipFamilyPolicy"] ??= "SingleStack";
        spec["internalTrafficPolicy"] ??= "Cluster";
    }

    /// <summary>The third octet ClusterIPs are handed out from first (wrapping around): set from the API server's port,
    /// so control planes on different ports on one machine do not hand out the same ClusterIPs.</summary>
    public int ClusterIpBlock { get; set; }

    private string AllocateClusterIp()
    {
        var services = service.Registry.Find("", "v1", "services")!;
        var used = service.Store.List(services.StorageKey, null)
            .Select(s => Meta.Str(s.Object["spec"]?["clusterIP"])).OfType<string>().ToHashSet();
        for (var i = 1; i < 65_534; i++)
        {
            var n = ((ClusterIpBlock * 256) + i) % 65_536;
            var ip = string.Create(CultureInfo.InvariantCulture, $"{ClusterIpPrefix}{n / 256}.{n % 256}");
            if (n % 256 != 0 && n % 256 != 255 && !used.Contains(ip))
            {
                return ip;
            }
        }

        throw new ApiException(500, "InternalError", "no free ClusterIP left in 127.1.0.0/16");
    }
}
