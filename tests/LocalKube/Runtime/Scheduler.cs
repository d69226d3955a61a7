using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Controllers;

namespace LocalKube.Runtime;

/// <summary>Places pending pods on nodes, honouring nodeSelector, required node affinity, required pod
/// anti-affinity and topology spread constraints (DoNotSchedule); among fitting nodes it prefers the one with the
/// fewest pods (which also spreads preferred anti-affinity). A pod that fits nowhere stays Pending with
/// PodScheduled=False, reason Unschedulable, and a message saying why each node was refused.</summary>
internal sealed class Scheduler(ResourceService service, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(1))
{
    protected override string Name => "scheduler";

    protected override void Reconcile()
    {
        var podType = service.Registry.Find("", "v1", "pods")!;
        var nodeType = service.Registry.Find("", "v1", "nodes")!;
        var nodes = service.Store.List(nodeType.StorageKey, null).Select(n => n.Object).ToList();
        var pods = service.Store.List(podType.StorageKey, null).Select(p => p.Object).ToList();
        foreach (var pod in pods.ToList())
        {
            if (Meta.IsDeleting(pod) || Meta.Str(pod["spec"]?["nodeName"]) is { Length: > 0 }
                || (Meta.Str(pod["spec"]?["schedulerName"]) ?? "default-scheduler") != "default-scheduler")
            {
                continue;
            }

            var placed = pods.Where(p => Meta.Str(p["spec"]?["nodeName"]) is { Length: > 0 } && Objects.IsPodActive(p)).ToList();
            var reasons = new Dictionary<string, int>(StringComparer.Ordinal);
            JsonObject? best = null;
            var bestLoad = int.MaxValue;
            foreach (var node in nodes)
            {
                var why = Refusal(pod, node, nodes, placed);
                if (why is not null)
                {
                    reasons[why] = reasons.GetValueOrDefault(why) + 1;
                    continue;
                }

                var load = placed.Count(p => Meta.Str(p["spec"]?["nodeName"]) == Meta.Name(node));
                if (load < bestLoad)
                {
                    best = node;
                    bestLoad = load;
                }
            }

            try
            {
                if (best is not null)
                {
                    Bind(podType, pod, Meta.Name(best)!);
                    pods[pods.IndexOf(pod)] = service.Get(podType, Meta.Namespace(pod), Meta.Name(pod)!);
                }
                else
                {
                    var message = $"0/{nodes.Count} nodes are available: " + string.Join(", ", reasons.Select(kv => $"{kv.Value} {kv.Key}")) + ".";
                    MarkUnschedulable(podType, pod, message);
                }
            }
            catch (ApiException e) when (e.Code is 404 or 409)
            {
                // Changed meanwhile; the next pass sees it.
            }
        }
    }

    private void Bind(ResourceType podType, JsonObject pod, string node)
    {
        var ns = Meta.Namespace(pod);
        var name = Meta.Name(pod)!;
        var bound = (JsonObject)pod.DeepClone();
        ((JsonObject)bound["spec"]!)["nodeName"] = node;
        service.Update(podType, ns, name, bound, new WriteOptions(FieldManager: "default-scheduler"));
        var current = service.Get(podType, ns, name);
        var status = current["status"] as JsonObject ?? [];
        Objects.SetCondition(status, Objects.Condition("PodScheduled", "True", null, null, Meta.Timestamp(service.Time.GetUtcNow())));
        current["status"] = status;
        service.Update(podType, ns, name, current, new WriteOptions(), "status");
        Events.Record(service, current, "Normal", "Scheduled", $"Successfully assigned {ns}/{name} to {node}", "default-scheduler");
    }

    private void MarkUnschedulable(ResourceType podType, JsonObject pod, string message)
    {
        var status = (pod["status"] as JsonObject)?.DeepClone() as JsonObject ?? [];
        var existing = (status["conditions"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(c => Meta.Str(c["type"]) == "PodScheduled");
        if (existing is not null && Meta.Str(existing["message"]) == message)
        {
            return;
        }

        Objects.SetCondition(status, Objects.Condition("PodScheduled", "False", "Unschedulable", message, Meta.Timestamp(service.Time.GetUtcNow())));
        status["phase"] = "Pending";
        var updated = (JsonObject)pod.DeepClone();
        updated["status"] = status;
        service.Update(podType, Meta.Namespace(pod), Meta.Name(pod)!, updated, new WriteOptions(), "status");
        Events.Record(service, pod, "Warning", "FailedScheduling", message, "default-scheduler");
    }

    /// <summary>Why a pod cannot go on a node, or null when it can.</summary>
    internal static string? Refusal(JsonObject pod, JsonObject node, IReadOnlyList<JsonObject> nodes, IReadOnlyList<JsonObject> placed)
    {
        var nodeLabels = Meta.Labels(node) ?? [];
        if (!LabelSelector.FromMap(pod["spec"]?["nodeSelector"] as JsonObject).Matches(nodeLabels))
        {
            return "node(s) didn't match Pod's node affinity/selector";
        }

        var terms = pod["spec"]?["affinity"]?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"] as JsonArray;
        if (terms is { Count: > 0 } && !terms.OfType<JsonObject>().Any(t => LabelSelector.FromObject(new JsonObject { ["matchExpressions"] = t["matchExpressions"]?.DeepClone() })!.Matches(nodeLabels)))
        {
            return "node(s) didn't match Pod's node affinity/selector";
        }

        var ns = Meta.Namespace(pod);
        var nodeOf = nodes.ToDictionary(n => Meta.Name(n)!, n => Meta.Labels(n) ?? []);
        foreach (var term in (pod["spec"]?["affinity"]?["podAntiAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var key = Meta.Str(term["topologyKey"]) ?? "kubernetes.io/hostname";
            var selector = LabelSelector.FromObject(term["labelSelector"] as JsonObject) ?? LabelSelector.Everything;
            var namespaces = (term["namespaces"] as JsonArray ?? []).Select(Meta.Str).ToHashSet();
            if (namespaces.Count == 0)
            {
                namespaces.Add(ns);
            }

            var domain = Meta.Str(nodeLabels[key]);
            if (domain is null)
            {
                continue;
            }

            var clash = placed.Any(p => namespaces.Contains(Meta.Namespace(p)) && selector.Matches(Meta.Labels(p))
                && nodeOf.TryGetValue(Meta.Str(p["spec"]?["nodeName"]) ?? "", out var labels) && Meta.Str(labels[key]) == domain);
            if (clash)
            {
                return "node(s) didn't match pod anti-affinity rules";
            }
        }

        foreach (var constraint in (pod["spec"]?["topologySpreadConstraints"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (Meta.Str(constraint["whenUnsatisfiable"]) != "DoNotSchedule")
            {
                continue;
            }

            var key = Meta.Str(constraint["topologyKey"]) ?? "";
            var maxSkew = Meta.Long(constraint["maxSkew"]) ?? 1;
            var selector = LabelSelector.FromObject(constraint["labelSelector"] as JsonObject) ?? LabelSelector.Everything;
            var domain = Meta.Str(nodeLabels[key]);
            if (domain is null)
            {
                return "node(s) didn't match pod topology spread constraints (missing required label)";
            }

            var counts = nodes.Select(n => Meta.Str((Meta.Labels(n) ?? [])[key])).OfType<string>().Distinct().ToDictionary(d => d, _ => 0);
            foreach (var p in placed.Where(p => Meta.Namespace(p) == ns && selector.Matches(Meta.Labels(p))))
            {
                if (nodeOf.TryGetValue(Meta.Str(p["spec"]?["nodeName"]) ?? "", out var labels) && Meta.Str(labels[key]) is { } d && counts.TryGetValue(d, out var n))
                {
                    counts[d] = n + 1;
                }
            }

            if (counts[domain] + 1 - counts.Values.Min() > maxSkew)
            {
                return "node(s) didn't match pod topology spread constraints";
            }
        }

        return null;
    }
}
