using System.Globalization;
using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Controllers;

namespace LocalKube.Runtime;

/// <summary>Base of the workload controllers: typed access to the service and status writes that happen only
/// when the status changed (so a quiet cluster produces no events).</summary>
internal abstract class WorkloadController(ResourceService service, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(1))
{
    protected ResourceService Service => service;

    protected ResourceType Type(string group, string plural) => service.Registry.Find(group, group.Length == 0 ? "v1" : "v1", plural)!;

    protected List<JsonObject> All(string group, string plural, string? ns = null) =>
        service.Store.List(Type(group, plural).StorageKey, ns).Select(s => s.Object).ToList();

    protected string Now() => Meta.Timestamp(service.Time.GetUtcNow());

    protected void WriteStatus(ResourceType type, JsonObject obj, JsonObject status)
    {
        if (JsonNode.DeepEquals(obj["status"], status))
        {
            return;
        }

        var updated = (JsonObject)obj.DeepClone();
        updated["status"] = status;
        Try(() => service.Update(type, Meta.Namespace(obj), Meta.Name(obj)!, updated, new WriteOptions(), "status"));
    }

    protected static void Try(Action action)
    {
        try
        {
            action();
        }
        catch (ApiException e) when (e.Code is 404 or 409 or 403)
        {
            // Changed or going away meanwhile; the next pass sees the new state.
        }
    }

    /// <summary>A pod from a template: labels and annotations from the template's metadata, the template's spec.</summary>
    protected static JsonObject PodFromTemplate(JsonObject template, JsonObject owner)
    {
        var meta = (template["metadata"] as JsonObject)?.DeepClone() as JsonObject ?? [];
        meta.Remove("name");
        meta.Remove("namespace");
        meta["ownerReferences"] = new JsonArray(Objects.OwnerReference(owner));
        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = meta,
            ["spec"] = template["spec"]?.DeepClone(),
        };
    }
}

/// <summary>ReplicaSets: keeps the number of active pods it controls at spec.replicas (deleting not-ready pods
/// first when there are too many) and reports replicas, ready and available counts.</summary>
internal sealed class ReplicaSetController(ResourceService service, ILogger logger) : WorkloadController(service, logger)
{
    protected override string Name => "replicaset";

    protected override void Reconcile()
    {
        var rsType = Type("apps", "replicasets");
        var podType = Type("", "pods");
        foreach (var rs in All("apps", "replicasets"))
        {
            var ns = Meta.Namespace(rs);
            var pods = All("", "pods", ns).Where(p => Objects.IsControlledBy(p, rs) && Objects.IsPodActive(p)).ToList();
            if (!Meta.IsDeleting(rs))
            {
                var desired = Meta.Int(rs["spec"]?["replicas"]) ?? 1;
                for (var i = pods.Count; i < desired; i++)
                {
                    var pod = PodFromTemplate((JsonObject)rs["spec"]!["template"]!, rs);
                    Meta.Of(pod)["generateName"] = Meta.Name(rs) + "-";
                    Try(() => Service.Create(podType, ns, pod, new WriteOptions(FieldManager: "replicaset-controller")));
                }

                foreach (var extra in pods.OrderBy(p => Objects.IsPodReady(p)).ThenByDescending(p => Meta.Str(p["metadata"]?["creationTimestamp"])).Take(Math.Max(0, pods.Count - desired)))
                {
                    Try(() => Service.Delete(podType, ns, Meta.Name(extra)!, new DeleteOptions()));
                }
            }

            var ready = pods.Count(Objects.IsPodReady);
            WriteStatus(rsType, rs, new JsonObject
            {
                ["replicas"] = pods.Count,
                ["fullyLabeledReplicas"] = pods.Count,
                ["readyReplicas"] = ready,
                ["availableReplicas"] = ready,
                ["observedGeneration"] = Meta.Long(rs["metadata"]?["generation"]),
            });
        }
    }
}

/// <summary>Deployments through ReplicaSets: the ReplicaSet of the current template (named by its hash) is
/// scaled to spec.replicas; older ones shrink as new pods become ready (RollingUpdate) or at once (Recreate).</summary>
internal sealed class DeploymentController(ResourceService service, ILogger logger) : WorkloadController(service, logger)
{
    protected override string Name => "deployment";

    protected override void Reconcile()
    {
        var dType = Type("apps", "deployments");
        var rsType = Type("apps", "replicasets");
        foreach (var d in All("apps", "deployments"))
        {
            if (Meta.IsDeleting(d))
            {
                continue;
            }

            var ns = Meta.Namespace(d);
            var desired = Meta.Int(d["spec"]?["replicas"]) ?? 1;
            var template = (JsonObject)d["spec"]!["template"]!;
            var hash = Objects.TemplateHash(template);
            var newName = $"{Meta.Name(d)}-{hash}";
            var owned = All("apps", "replicasets", ns).Where(rs => Objects.IsControlledBy(rs, d)).ToList();
            var current = owned.FirstOrDefault(rs => Meta.Name(rs) == newName);
            if (current is null)
            {
                var podTemplate = (JsonObject)template.DeepClone();
                var labels = podTemplate["metadata"]?["labels"] as JsonObject ?? [];
                labels["pod-template-hash"] = hash;
                ((JsonObject)podTemplate["metadata"]!)["labels"] = labels;
                var selector = (JsonObject)d["spec"]!["selector"]!.DeepClone();
                var matchLabels = selector["matchLabels"] as JsonObject ?? [];
                matchLabels["pod-template-hash"] = hash;
                selector["matchLabels"] = matchLabels;
                var rs = new JsonObject
                {
                    ["metadata"] = new JsonObject
                    {
                        ["name"] = newName,
                        ["labels"] = labels.DeepClone(),
                        ["annotations"] = new JsonObject { ["deployment.kubernetes.io/desired-replicas"] = desired.ToString(CultureInfo.InvariantCulture) },
                        ["ownerReferences"] = new JsonArray(Objects.OwnerReference(d)),
                    },
                    ["spec"] = new JsonObject { ["replicas"] = desired, ["selector"] = selector, ["template"] = podTemplate },
                };
                Try(() => Service.Create(rsType, ns, rs, new WriteOptions(FieldManager: "deployment-controller")));
                continue;
            }

            Scale(rsType, current, desired);
            var recreate = Meta.Str(d["spec"]?["strategy"]?["type"]) == "Recreate";
            var newReady = Meta.Int(current["status"]?["readyReplicas"]) ?? 0;
            foreach (var old in owned.Where(rs => Meta.Name(rs) != newName))
            {
                var oldReplicas = Meta.Int(old["spec"]?["replicas"]) ?? 0;
                var target = recreate ? 0 : Math.Min(oldReplicas, Math.Max(0, desired - newReady));
                Scale(rsType, old, target);
            }

            var replicas = owned.Sum(rs => Meta.Int(rs["status"]?["replicas"]) ?? 0);
            var ready = owned.Sum(rs => Meta.Int(rs["status"]?["readyReplicas"]) ?? 0);
            var updated = Meta.Int(current["status"]?["replicas"]) ?? 0;
            var status = (d["status"] as JsonObject)?.DeepClone() as JsonObject ?? [];
            status["observedGeneration"] = Meta.Long(d["metadata"]?["generation"]);
            status["replicas"] = replicas;
            status["updatedReplicas"] = updated;
            status["readyReplicas"] = ready;
            status["availableReplicas"] = ready;
            status["unavailableReplicas"] = Math.Max(0, desired - ready);
            Objects.SetCondition(status, ready >= desired
                ? Objects.Condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", Now())
                : Objects.Condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", Now()));
            Objects.SetCondition(status, updated == desired && newReady == desired
                ? Objects.Condition("Progressing", "True", "NewReplicaSetAvailable", $"ReplicaSet \"{newName}\" has successfully progressed.", Now())
                : Objects.Condition("Progressing", "True", "ReplicaSetUpdated", $"ReplicaSet \"{newName}\" is progressing.", Now()));
            WriteStatus(dType, d, status);
        }
    }

    private void Scale(ResourceType rsType, JsonObject rs, int replicas)
    {
        if (Meta.Int(rs["spec"]?["replicas"]) == replicas)
        {
            return;
        }

        var updated = (JsonObject)rs.DeepClone();
        updated["spec"]!["replicas"] = replicas;
        Try(() => Service.Update(rsType, Meta.Namespace(rs), Meta.Name(rs)!, updated, new WriteOptions(FieldManager: "deployment-controller")));
    }
}
