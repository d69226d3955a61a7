namespace RaftKv.Raft;

/// <summary>How the leader currently replicates to one follower (etcd-io/raft's progress states).</summary>
public enum ProgressState
{
    /// <summary>Match unknown: one MsgApp per heartbeat interval until the follower's log position is found.</summary>
    Probe = 0,

    /// <summary>Steady state: entries are streamed optimistically, bounded by the in-flight window.</summary>
    Replicate = 1,

    /// <summary>A snapshot is on its way; nothing else is sent until it is reported (or acknowledged).</summary>
    Snapshot = 2,
}

/// <summary>The leader's view of one member.</summary>
/// <param name="Match">Highest index known to be replicated on the member.</param>
/// <param name="Next">Next index to send.</param>
/// <param name="State">Replication state.</param>
/// <param name="IsLearner">True for a non-voting member.</param>
/// <param name="RecentActive">Heard from the member since the last check-quorum.</param>
/// <param name="Paused">No MsgApp can be sent now (probe sent, window full, or snapshot pending).</param>
/// <param name="InflightMessages">MsgApp sent and not acknowledged.</param>
/// <param name="PendingSnapshot">Index of the snapshot being sent (Snapshot state), else 0.</param>
public sealed record ProgressStatus(
    ulong Match, ulong Next, ProgressState State, bool IsLearner, bool RecentActive, bool Paused, int InflightMessages, ulong PendingSnapshot);

/// <summary>A snapshot of a node's state for diagnostics and for the host (leader id, progress of followers).</summary>
/// <param name="Id">This node.</param>
/// <param name="HardState">Term, vote, commit (as known in memory; may be ahead of what is persisted).</param>
/// <param name="SoftState">Leader and role.</param>
/// <param name="Applied">Last index the host reported applied (through Advance).</param>
/// <param name="LastIndex">Last index in the log (persisted or not).</param>
/// <param name="ConfState">Current membership.</param>
/// <param name="LeadTransferee">Target of an ongoing leadership transfer, else 0.</param>
/// <param name="HeartbeatTicks">Current heartbeat interval in ticks.</param>
/// <param name="ElectionTicks">Current election timeout in ticks.</param>
/// <param name="Progress">On the leader: every member's progress, by id (including itself); empty elsewhere.</param>
public sealed record RaftStatus(
    ulong Id,
    HardState HardState,
    SoftState SoftState,
    ulong Applied,
    ulong LastIndex,
    ConfState ConfState,
    ulong LeadTransferee,
    int HeartbeatTicks,
    int ElectionTicks,
    IReadOnlyDictionary<ulong, ProgressStatus> Progress);
