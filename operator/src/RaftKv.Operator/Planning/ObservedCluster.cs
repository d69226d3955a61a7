using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Planning;

/// <summary>One Raft member as the leader reports it.</summary>
/// <param name="Ordinal">The StatefulSet ordinal of the member's pod (resolved from its name or peer URL), or null for a member that is none of this cluster's pods.</param>
/// <param name="Id">Raft member ID.</param>
/// <param name="IsLearner">A non-voting member catching up.</param>
/// <param name="Healthy">The leader hears from it and it replicates (for safety checks: counts toward quorum).</param>
/// <param name="CaughtUp">Its log is close enough to the leader's to vote without stalling commits (what a learner needs before promotion).</param>
/// <param name="Rtt">Median round-trip time from the leader, if measured.</param>
internal sealed record ObservedMember(int? Ordinal, ulong Id, bool IsLearner, bool Healthy, bool CaughtUp, TimeSpan? Rtt = null);

/// <summary>One member pod.</summary>
/// <param name="Ordinal">Its StatefulSet ordinal.</param>
/// <param name="Ready">Its readiness probe passes.</param>
/// <param name="UpToDate">It runs the StatefulSet's current template revision (its <c>controller-revision-hash</c> is the update revision).</param>
/// <param name="Problem">Why it cannot run, when Kubernetes says so (unschedulable, image not pulled, crash loop), else null.</param>
internal sealed record ObservedPod(int Ordinal, bool Ready, bool UpToDate, PodProblem? Problem = null);

/// <summary>Why a member pod cannot run, as Kubernetes reports it.</summary>
/// <param name="Reason">A CamelCase condition reason (see <see cref="PodProblem.Reasons"/>).</param>
/// <param name="Message">What Kubernetes said, for the Degraded condition's message.</param>
internal sealed record PodProblem(string Reason, string Message)
{
    /// <summary>Every reason a pod problem can have.</summary>
    public static IReadOnlySet<string> Reasons { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        ConditionReasons.Unschedulable,
        ConditionReasons.StorageClassNotFound,
        ConditionReasons.ImagePullFailed,
        ConditionReasons.CrashLoopBackOff,
        ConditionReasons.ContainerCannotRun,
        ConditionReasons.DataInconsistent,
    };
}

/// <summary>
/// Everything the planner looks at, gathered by the reconciler from the API server and the cluster.
/// The planner does not know where the facts came from; it only decides.
/// </summary>
internal sealed record ObservedCluster
{
    public required RaftClusterSpec Spec { get; init; }

    /// <summary>metadata.name, for names and validation.</summary>
    public required string Name { get; init; }

    public long Generation { get; init; }

    /// <summary>Owned objects (besides the StatefulSet's replica count) that are missing or differ from what the builders make.</summary>
    public IReadOnlyList<string> ObjectsToApply { get; init; } = [];

    /// <summary>The StatefulSet's spec.replicas, or null when there is no StatefulSet.</summary>
    public int? StatefulSetReplicas { get; init; }

    public IReadOnlyList<ObservedPod> Pods { get; init; } = [];

    /// <summary>
    /// The cluster has had a leader since its StatefulSet was first created. Before that, the initial
    /// members are still forming the cluster. The record of it lives in the cluster, so a restarted
    /// operator finds it: the <c>NAME-members</c> ConfigMap says <c>initial-cluster-state: existing</c>
    /// (written on the first leader, see ReconcilePlanner.MembersConfig); a leader seen now counts too.
    /// </summary>
    public bool Bootstrapped { get; init; }

    /// <summary>Raft members per the leader; empty when no member could be asked.</summary>
    public IReadOnlyList<ObservedMember> Members { get; init; } = [];

    /// <summary>The current leader's member ID, or null if there is none (or none could be reached).</summary>
    public ulong? LeaderId { get; init; }

    /// <summary>Ordinals of members whose data volume was lost (new empty PVC, or the member reports its data gone).</summary>
    public IReadOnlySet<int> LostVolumes { get; init; } = new HashSet<int>();

    /// <summary>Member count recorded in status, to recreate a deleted StatefulSet at the right size.</summary>
    public int PreviousMemberCount { get; init; }

    /// <summary>The largest WAL fsync p99 over members, if measured (for the SlowDisk message).</summary>
    public TimeSpan? FsyncP99 { get; init; }

    /// <summary>What is wrong with the Secrets named in spec.tls (missing, unreadable, not naming the members), or null.</summary>
    public string? TlsProblem { get; init; }

    /// <summary>This round's tuning decision, if the cluster could be measured.</summary>
    public TuningDecision? Tuning { get; init; }
}
