using System.Globalization;
using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>StatefulSets: pods NAME-0..NAME-(n-1) with stable names, hostname and subdomain; PVCs from
/// volumeClaimTemplates (TEMPLATE-NAME-i) created before their pod and kept when the pod goes, and when the set
/// shrinks unless <c>persistentVolumeClaimRetentionPolicy.whenScaled</c> is Delete. OrderedReady creates one pod at a time, each after all lower ordinals are Ready, and removes the
/// highest ordinal first, one at a time; Parallel does both at once. RollingUpdate replaces pods whose revision is
/// old, from the highest ordinal down to the partition, one at a time and only while all pods are Ready;
/// OnDelete only gives new pods the new template. Revisions are template hashes (no ControllerRevision
/// objects).</summary>
internal sealed class StatefulSetController(ResourceService service, ILogger logger) : WorkloadController(service, logger)
{
    public const string RevisionLabel = "controller-revision-hash";
    public const string PodNameLabel = "statefulset.kubernetes.io/pod-name";

    protected override string Name => "statefulset";

    protected override void Reconcile()
    {
        foreach (var sts in All("apps", "statefulsets"))
        {
            ReconcileOne(sts);
        }
    }

    private static int? Ordinal(string setName, string podName) =>
        podName.StartsWith(setName + "-", StringComparison.Ordinal)
        && int.TryParse(podName.AsSpan(setName.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : null;

    private void ReconcileOne(JsonObject sts)
    {
        var podType = Type("", "pods");
        var ns = Meta.Namespace(sts);
        var name = Meta.Name(sts)!;
        var spec = (JsonObject)sts["spec"]!;
        var desired = Meta.Int(spec["replicas"]) ?? 1;
        var revision = $"{name}-{Objects.TemplateHash(spec["template"])}";
        var parallel = Meta.Str(spec["podManagementPolicy"]) == "Parallel";
        var pods = All("", "pods", ns).Where(p => Objects.IsControlledBy(p, sts) && Ordinal(name, Meta.Name(p)!) is not null)
            .ToDictionary(p => Ordinal(name, Meta.Name(p)!)!.Value);

        if (!Meta.IsDeleting(sts))
        {
            // Create missing pods (and their claims) below the desired count.
            for (var i = 0; i < desired; i++)
            {
                if (pods.ContainsKey(i))
                {
                    continue;
                }

                if (!parallel && Enumerable.Range(0, i).Any(j => !pods.TryGetValue(j, out var p) || !Objects.IsPodReady(p)))
                {
                    break;
                }

                EnsureClaims(sts, i);
                var ordinal = i;
                Try(() =>
                {
                    Service.Create(podType, ns, NewPod(sts, ordinal, revision), new WriteOptions(FieldManager: "statefulset-controller"));
                    Events.Record(Service, sts, "Normal", "SuccessfulCreate", $"create Pod {name}-{ordinal} in StatefulSet {name} successful", "statefulset-controller");
                });
                if (!parallel)
                {
                    break;
                }
            }

            // Remove pods at or above the desired count, highest first.
            var surplus = pods.Keys.Where(i => i >= desired).OrderByDescending(i => i).ToList();
            var lowerReady = Enumerable.Range(0, desired).All(j => pods.TryGetValue(j, out var p) && Objects.IsPodReady(p));
            foreach (var i in surplus)
            {
                if (!parallel && (!lowerReady || pods.Where(kv => kv.Key > i).Any()))
                {
                    break;
                }

                if (!Meta.IsDeleting(pods[i]))
                {
                    Try(() => Service.Delete(podType, ns, Meta.Name(pods[i])!, new DeleteOptions()));
                }

                if (!parallel)
                {
                    break;
                }
            }

            // persistentVolumeClaimRetentionPolicy.whenScaled: Delete (Kubernetes 1.27+, on by default; GA in 1.32): the
            // claims of ordinals at or above the desired count go once their pod is gone.
            if (Meta.Str(spec["persistentVolumeClaimRetentionPolicy"]?["whenScaled"]) == "Delete")
            {
                DeleteScaledDownClaims(sts, desired, pods);
            }

            // Rolling update: one old pod at a time, highest ordinal first, down to the partition.
            var strategy = spec["updateStrategy"] as JsonObject;
            if ((Meta.Str(strategy?["type"]) ?? "RollingUpdate") == "RollingUpdate")
            {
                var partition = Meta.Int(strategy?["rollingUpdate"]?["partition"]) ?? 0;
                var allReady = Enumerable.Range(0, desired).All(j => pods.TryGetValue(j, out var p) && Objects.IsPodReady(p));
                if (allReady)
                {
                    var stale = pods.Where(kv => kv.Key < desired && kv.Key >= partition && Meta.Str(Meta.Labels(kv.Value)?[RevisionLabel]) != revision)
                        .OrderByDescending(kv => kv.Key).Select(kv => kv.Value).FirstOrDefault();
                    if (stale is not null)
                    {
                        Try(() => Service.Delete(podType, ns, Meta.Name(stale)!, new DeleteOptions()));
                    }
                }
            }
        }

        var active = pods.Values.Where(p => !Meta.IsDeleting(p)).ToList();
        var updated = active.Count(p => Meta.Str(Meta.Labels(p)?[RevisionLabel]) == revision);
        var ready = active.Count(Objects.IsPodReady);
        var status = (sts["status"] as JsonObject)?.DeepClone() as JsonObject ?? [];
        status["observedGeneration"] = Meta.Long(sts["metadata"]?["generation"]);
        status["replicas"] = active.Count;
        status["readyReplicas"] = ready;
        status["availableReplicas"] = ready;
        status["currentReplicas"] = updated == active.Count ? active.Count : active.Count - updated;
        status["updatedReplicas"] = updated;
        status["updateRevision"] = revision;
        status["currentRevision"] = updated == active.Count ? revision : Meta.Str(status["currentRevision"]) ?? revision;
        status["collisionCount"] = 0;
        WriteStatus(Type("apps", "statefulsets"), sts, status);
    }

    private static JsonObject NewPod(JsonObject sts, int ordinal, string revision)
    {
        var name = Meta.Name(sts)!;
        var spec = (JsonObject)sts["spec"]!;
        var pod = PodFromTemplate((JsonObject)spec["template"]!, sts);
        var podName = $"{name}-{ordinal}";
        var meta = Meta.Of(pod);
        meta["name"] = podName;
        var labels = meta["labels"] as JsonObject ?? [];
        labels[RevisionLabel] = revision;
        labels[PodNameLabel] = podName;
        labels["apps.kubernetes.io/pod-index"] = ordinal.ToString(CultureInfo.InvariantCulture);
        meta["labels"] = labels;
        var podSpec = (JsonObject)pod["spec"]!;
        podSpec["hostname"] = podName;
        if (Meta.Str(spec["serviceName"]) is { Length: > 0 } serviceName)
        {
            podSpec["subdomain"] = serviceName;
        }

        var volumes = podSpec["volumes"] as JsonArray ?? [];
        foreach (var template in (spec["volumeClaimTemplates"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var volumeName = Meta.Name(template)!;
            if (!volumes.OfType<JsonObject>().Any(v => Meta.Str(v["name"]) == volumeName))
            {
                volumes.Add(new JsonObject { ["name"] = volumeName, ["persistentVolumeClaim"] = new JsonObject { ["claimName"] = $"{volumeName}-{podName}" } });
            }
        }

        if (volumes.Count > 0)
        {
            podSpec["volumes"] = volumes;
        }

        return pod;
    }

    private void DeleteScaledDownClaims(JsonObject sts, int desired, Dictionary<int, JsonObject> pods)
    {
        var pvcType = Type("", "persistentvolumeclaims");
        var ns = Meta.Namespace(sts);
        var name = Meta.Name(sts)!;
        var prefixes = (sts["spec"]?["volumeClaimTemplates"] as JsonArray ?? []).OfType<JsonObject>().Select(t => $"{Meta.Name(t)}-{name}-").ToList();
        foreach (var claim in All("", "persistentvolumeclaims", ns).Where(c => !Meta.IsDeleting(c)))
        {
            var claimName = Meta.Name(claim)!;
            foreach (var prefix in prefixes.Where(p => claimName.StartsWith(p, StringComparison.Ordinal)))
            {
                if (int.TryParse(claimName.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var ordinal)
                    && ordinal >= desired && !pods.ContainsKey(ordinal))
                {
                    Try(() => Service.Delete(pvcType, ns, claimName, new DeleteOptions()));
                }
            }
        }
    }

    private void EnsureClaims(JsonObject sts, int ordinal)
    {
        var pvcType = Type("", "persistentvolumeclaims");
        var ns = Meta.Namespace(sts);
        var name = Meta.Name(sts)!;
        foreach (var template in (sts["spec"]?["volumeClaimTemplates"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var claimName = $"{Meta.Name(template)}-{name}-{ordinal}";
            if (Service.Store.Get(pvcType.StorageKey, ns, claimName) is not null)
            {
                continue;
            }

            var labels = (sts["spec"]?["selector"]?["matchLabels"] as JsonObject)?.DeepClone() as JsonObject ?? [];
            var claim = new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = claimName, ["labels"] = labels },
                ["spec"] = template["spec"]?.DeepClone() ?? new JsonObject(),
            };
            Try(() =>
            {
                var created = Service.Create(pvcType, ns, claim, new WriteOptions(FieldManager: "statefulset-controller"));
                // Claims bind at once to a directory-backed volume (see Kubelet): Bound, with the requested size.
                created["status"] = new JsonObject
                {
                    ["phase"] = "Bound",
                    ["accessModes"] = created["spec"]?["accessModes"]?.DeepClone() ?? new JsonArray("ReadWriteOnce"),
                    ["capacity"] = new JsonObject { ["storage"] = created["spec"]?["resources"]?["requests"]?["storage"]?.DeepClone() ?? "1Gi" },
                };
                Service.Update(pvcType, ns, claimName, created, new WriteOptions(), "status");
            });
        }
    }
}
