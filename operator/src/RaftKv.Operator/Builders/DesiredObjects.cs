using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Builders;

/// <summary>One object the operator keeps, keyed <c>Kind/name</c> (the key the planner's CreateObjects names).</summary>
internal sealed record DesiredObject(string Key, IKubernetesObject<V1ObjectMeta> Object)
{
    public static string KeyOf(IKubernetesObject<V1ObjectMeta> obj) => $"{obj.Kind}/{obj.Metadata.Name}";
}

/// <summary>
/// Everything a RaftCluster should own, and which of those a live copy still matches. Pure: the
/// reconciler fetches the live objects and passes them in.
/// </summary>
internal static class DesiredObjects
{
    /// <summary>The owned objects in creation order (Services and ConfigMaps before the pods that use them).</summary>
    /// <param name="cluster">The RaftCluster.</param>
    /// <param name="builder">The builders, with the operator's settings.</param>
    /// <param name="timing">The Raft timing in force (the tuning decision's).</param>
    /// <param name="membersConfig">ReconcilePlanner.MembersConfig's answer; null leaves the members ConfigMap out (unknown now).</param>
    /// <param name="statefulSetReplicas">The StatefulSet's replica count to keep (the planner changes it, not this).</param>
    public static IReadOnlyList<DesiredObject> For(RaftCluster cluster, ClusterObjectBuilder builder, RaftTiming timing,
        (int MemberCount, bool Bootstrapped)? membersConfig, int statefulSetReplicas)
    {
        var objects = new List<IKubernetesObject<V1ObjectMeta>>
        {
            builder.PeerService(cluster),
            builder.ClientService(cluster),
            builder.TuningConfigMap(cluster, timing),
        };
        if (membersConfig is { } members)
        {
            objects.Add(builder.MembersConfigMap(cluster, members.MemberCount, members.Bootstrapped));
        }

        objects.Add(builder.PodDisruptionBudget(cluster));
        // The snapshot to start from is mounted only while the cluster forms: afterwards no member needs it, and a claim that
        // one node mounts cannot be in every member's pod.
        objects.Add(builder.StatefulSet(cluster, statefulSetReplicas, restoring: membersConfig is { Bootstrapped: false }));
        return [.. objects.Select(o => new DesiredObject(DesiredObject.KeyOf(o), o))];
    }

    /// <summary>
    /// Whether <paramref name="live"/> (null: absent) needs <paramref name="desired"/> applied. Only the
    /// fields the builders set are compared: everything the API server defaults or other controllers
    /// add (clusterIP, status, resourceVersion, extra labels) is ignored, as is a StatefulSet's replica
    /// count, which only the planner's ScaleStatefulSet changes.
    /// </summary>
    public static bool NeedsApply(IKubernetesObject<V1ObjectMeta> desired, IKubernetesObject<V1ObjectMeta>? live)
    {
        if (live is null)
        {
            return true;
        }

        var want = JsonNode.Parse(KubernetesJson.Serialize(desired))!.AsObject();
        var have = JsonNode.Parse(KubernetesJson.Serialize(live))!.AsObject();
        if (desired is V1StatefulSet)
        {
            (want["spec"] as JsonObject)?.Remove("replicas");
        }

        return !Covers(have, want);
    }

    /// <summary>Whether every value set in <paramref name="want"/> is the same in <paramref name="have"/>.</summary>
    internal static bool Covers(JsonNode? have, JsonNode? want) => (have, want) switch
    {
        (_, null) => true,
        (null, _) => false,
        (JsonObject h, JsonObject w) => w.All(p => Covers(h[p.Key], p.Value)),
        // Lists are owned whole: the same items in the same order, each covered.
        (JsonArray h, JsonArray w) => h.Count == w.Count && h.Zip(w).All(p => Covers(p.First, p.Second)),
        (JsonValue h, JsonValue w) => SameScalar(h, w),
        _ => false,
    };

    private static bool SameScalar(JsonValue have, JsonValue want)
    {
        if (JsonNode.DeepEquals(have, want))
        {
            return true;
        }

        // Quantities come back canonicalized ("1024Mi" may read "1Gi"); compare their values.
        if (have.GetValueKind() == System.Text.Json.JsonValueKind.String && want.GetValueKind() == System.Text.Json.JsonValueKind.String)
        {
            try
            {
                return new ResourceQuantity(have.GetValue<string>()).ToDecimal() == new ResourceQuantity(want.GetValue<string>()).ToDecimal();
            }
            catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
            {
                return false;
            }
        }

        return false;
    }
}
