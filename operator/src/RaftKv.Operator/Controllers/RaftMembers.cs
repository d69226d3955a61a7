using RaftKv.Operator.Builders;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Tls;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Controllers;

/// <summary>A member pod the operator can reach: its ordinal and client address (<c>http://POD_IP:2379</c>, or https://).</summary>
internal sealed record MemberEndpoint(int Ordinal, string Address);

/// <summary>Which cluster to talk to, and through which pods.</summary>
/// <param name="Names">The cluster's names (a member's certificate must name <see cref="ClusterNames.Host"/> of its ordinal).</param>
/// <param name="Endpoints">The pods to call.</param>
/// <param name="Credentials">For https:// client URLs: whom to trust and what to present; null for http://.</param>
internal sealed record MemberTarget(ClusterNames Names, IReadOnlyList<MemberEndpoint> Endpoints, MemberClientCredentials? Credentials = null);

/// <summary>What the members say about themselves.</summary>
/// <param name="Members">The member list as the leader (or any member, if none leads) reports it; empty when none answered.</param>
/// <param name="LeaderId">The leader's ID, if a member reports one.</param>
/// <param name="Measurements">RTT and WAL fsync figures combined over members, if any reported them.</param>
/// <param name="TimingInForce">The heartbeat and election timeout the members run with (the leader's, else any member's).</param>
/// <param name="LostVolumes">Ordinals whose pod runs a member that is not the one listed under its name (it started empty).</param>
internal sealed record MemberObservation(
    IReadOnlyList<ObservedMember> Members,
    ulong? LeaderId,
    TuningMeasurements? Measurements,
    RaftTiming? TimingInForce,
    IReadOnlySet<int> LostVolumes)
{
    public static MemberObservation Unreachable { get; } = new([], null, null, null, new HashSet<int>());
}

/// <summary>
/// The Raft side of a cluster, as the reconciler sees and changes it: through the etcd Cluster and
/// Maintenance APIs and raftkv's Admin service. An interface so tests can put a model cluster behind it.
/// Every change is one Raft configuration change or one leadership transfer; the reconciler observes
/// again before the next.
/// </summary>
internal interface IRaftMembers
{
    Task<MemberObservation> ObserveAsync(MemberTarget target, CancellationToken cancellationToken);

    /// <summary>Add a learner with <paramref name="peerUrl"/>; returns its member ID.</summary>
    Task<ulong> AddLearnerAsync(MemberTarget target, string peerUrl, CancellationToken cancellationToken);

    Task PromoteAsync(MemberTarget target, ulong id, CancellationToken cancellationToken);

    Task RemoveAsync(MemberTarget target, ulong id, CancellationToken cancellationToken);

    /// <summary>Ask the current leader to hand leadership to <paramref name="toId"/>.</summary>
    Task MoveLeaderAsync(MemberTarget target, ulong toId, CancellationToken cancellationToken);

    /// <summary>Apply <paramref name="timing"/> live on every reachable member; returns how many took it.</summary>
    Task<int> SetTimingAsync(MemberTarget target, RaftTiming timing, CancellationToken cancellationToken);
}
