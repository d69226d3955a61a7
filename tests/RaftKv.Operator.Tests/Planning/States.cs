using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Planning;

namespace RaftKv.Operator.Tests.Planning;

/// <summary>Compact builders of observations for planner tests. Member N has ID 0x100 + N.</summary>
internal static class States
{
    public static readonly ClusterNames Names = new("demo", "prod", "cluster.local");

    public static ulong Id(int ordinal) => 0x100UL + (ulong)ordinal;

    public static ObservedMember Voter(int ordinal, bool healthy = true) => new(ordinal, Id(ordinal), IsLearner: false, healthy, CaughtUp: healthy);

    public static ObservedMember Learner(int ordinal, bool caughtUp = false) => new(ordinal, Id(ordinal), IsLearner: true, Healthy: true, caughtUp);

    public static ObservedPod Pod(int ordinal, bool ready = true, bool upToDate = true) => new(ordinal, ready, upToDate);

    /// <summary>A healthy, bootstrapped cluster of <paramref name="members"/> voters led by member 0, with one ready pod each.</summary>
    public static ObservedCluster Steady(int members = 3, int? specReplicas = null) => new()
    {
        Name = "demo",
        Generation = 1,
        Spec = new RaftClusterSpec { Replicas = specReplicas ?? members },
        StatefulSetReplicas = members,
        Bootstrapped = true,
        Members = [.. Enumerable.Range(0, members).Select(i => Voter(i))],
        Pods = [.. Enumerable.Range(0, members).Select(i => Pod(i))],
        LeaderId = Id(0),
    };

    public static ObservedCluster WithSpec(this ObservedCluster state, int replicas) => state with { Spec = new RaftClusterSpec { Replicas = replicas } };
}
