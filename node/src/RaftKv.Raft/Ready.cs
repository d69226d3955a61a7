namespace RaftKv.Raft;

/// <summary>The role a node plays in its current term.</summary>
public enum StateRole
{
    Follower = 0,
    Candidate = 1,
    Leader = 2,

    /// <summary>Running a pre-vote (thesis §9.6): has not incremented its term yet.</summary>
    PreCandidate = 3,
}

/// <summary>Volatile state worth telling the host about (not persisted). Leader 0 = unknown.</summary>
public readonly record struct SoftState(ulong Leader, StateRole Role);

/// <summary>
/// Answer to <see cref="RaftNode.ReadIndex"/>: once the local applied index reaches <see cref="Index"/>, a read
/// served from the state machine is linearizable. <see cref="Context"/> is the caller's request id.
/// </summary>
public sealed record ReadState(ulong Index, ReadOnlyMemory<byte> Context);

/// <summary>
/// Everything the host must do, handed out by <see cref="RaftNode.GetReady"/>. Handling order (one Ready at a time; do
/// not ask for the next until <see cref="RaftNode.Advance"/>):
/// <list type="number">
/// <item><see cref="Messages"/> may be sent at once, in parallel with the local write (the leader's MsgApp to followers
/// overlaps with its own fsync, thesis §10.2.1).</item>
/// <item>Persist <see cref="Snapshot"/> (if any), then append <see cref="Entries"/>, then save <see cref="HardState"/>
/// (if any), durably (fsync) when <see cref="MustSync"/>.</item>
/// <item>Only then send <see cref="MessagesAfterPersist"/> (votes, acknowledgements: they promise what was just persisted).</item>
/// <item>Apply the snapshot (if any) and then <see cref="CommittedEntries"/> to the state machine, in order; call
/// <see cref="RaftNode.ApplyConfChange"/> for each ConfChange entry as it is applied. Serve <see cref="ReadStates"/> once
/// applied &gt;= their index.</item>
/// <item>Call <see cref="RaftNode.Advance"/> with this Ready.</item>
/// </list>
/// A simple host may send both message lists after persisting; that is always correct, only slower.
/// </summary>
public sealed record Ready
{
    /// <summary>Set when leader or role changed since the last Ready.</summary>
    public SoftState? SoftState { get; init; }

    /// <summary>Set when term, vote or commit changed since the last Ready; persist it.</summary>
    public HardState? HardState { get; init; }

    /// <summary>Reads that became servable (see <see cref="ReadState"/>).</summary>
    public IReadOnlyList<ReadState> ReadStates { get; init; } = [];

    /// <summary>
    /// Entries to append to stable storage, in index order. They may overwrite (truncate) a conflicting suffix already in
    /// storage: the first entry's index may be &lt;= storage's last index.
    /// </summary>
    public IReadOnlyList<Entry> Entries { get; init; } = [];

    /// <summary>A snapshot received from the leader, to persist before <see cref="Entries"/> and to apply before <see cref="CommittedEntries"/>.</summary>
    public Snapshot? Snapshot { get; init; }

    /// <summary>
    /// Committed entries to apply to the state machine, in index order. They may include entries of this Ready's
    /// <see cref="Entries"/>: apply only after persisting (step 2), as the order above says.
    /// </summary>
    public IReadOnlyList<Entry> CommittedEntries { get; init; } = [];

    /// <summary>
    /// Messages that do not depend on this Ready's persistence: the leader's MsgApp/MsgHeartbeat/MsgSnap/MsgTimeoutNow, forwarded
    /// MsgProp/MsgReadIndex/MsgTransferLeader, MsgReadIndexResp, MsgPreVote. May be sent before or while persisting.
    /// </summary>
    public IReadOnlyList<Message> Messages { get; init; } = [];

    /// <summary>
    /// Messages that promise state contained in this Ready (MsgAppResp, MsgVote, MsgVoteResp, MsgPreVoteResp, MsgHeartbeatResp):
    /// send only after <see cref="Entries"/>, <see cref="HardState"/> and <see cref="Snapshot"/> are durable.
    /// </summary>
    public IReadOnlyList<Message> MessagesAfterPersist { get; init; } = [];

    /// <summary>
    /// Proposals this node forwarded that the node it forwarded them to dropped (see <see cref="MessageType.MsgPropDropped"/>):
    /// they were never appended, so they never commit. The host fails (or re-proposes) what waits for them.
    /// </summary>
    public IReadOnlyList<DroppedProposal> DroppedProposals { get; init; } = [];

    /// <summary>True when the hard state's term/vote or the entries changed: the write must be fsynced before MessagesAfterPersist go out.</summary>
    public bool MustSync { get; init; }

    /// <summary>Nothing to do.</summary>
    public bool IsEmpty => SoftState is null && HardState is null && ReadStates.Count == 0 && Entries.Count == 0
        && Snapshot is null && CommittedEntries.Count == 0 && Messages.Count == 0 && MessagesAfterPersist.Count == 0
        && DroppedProposals.Count == 0;
}

/// <summary>Entries of a proposal this node forwarded, dropped by node <see cref="By"/> for <see cref="Reason"/>; never appended.</summary>
public sealed record DroppedProposal(ulong By, ProposalDropReason Reason, IReadOnlyList<Entry> Entries);

/// <summary>Outcome of sending a snapshot, reported with <see cref="RaftNode.ReportSnapshot"/>.</summary>
public enum SnapshotStatus
{
    Finish = 0,
    Failure = 1,
}

/// <summary>Why a proposal, read or transfer was refused. The caller may retry (after a leader is known, etc.).</summary>
public enum ProposalDropReason
{
    /// <summary>No leader is known (election in progress, or partitioned). Retry after a leader appears.</summary>
    NoLeader = 0,

    /// <summary>The leader is handing leadership over; retry on the new leader.</summary>
    LeadershipTransferInProgress = 1,

    /// <summary>Too many bytes are proposed but not yet committed (<see cref="RaftConfig.MaxUncommittedEntriesSize"/>); back off.</summary>
    UncommittedSizeLimit = 2,

    /// <summary>This node is not (or no longer) a member of the cluster.</summary>
    NotAMember = 3,

    /// <summary>A membership change is still pending (proposed and not yet applied), or the leader has not committed an entry of its term yet.</summary>
    ConfChangePending = 4,

    /// <summary>The membership change is not allowed (for example removing the last voter, or adding a voter as learner).</summary>
    InvalidConfChange = 5,
}

/// <summary>A proposal, read or conf change was not accepted; nothing was appended. See <see cref="Reason"/>.</summary>
public sealed class ProposalDroppedException : Exception
{
    public ProposalDroppedException()
        : this(ProposalDropReason.NoLeader, "raft proposal dropped: no leader")
    {
    }

    public ProposalDroppedException(string message)
        : this(ProposalDropReason.NoLeader, message)
    {
    }

    public ProposalDroppedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ProposalDroppedException(ProposalDropReason reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public ProposalDropReason Reason { get; }
}
