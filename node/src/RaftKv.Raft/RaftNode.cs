namespace RaftKv.Raft;

/// <summary>
/// One Raft member as a pure state machine (after etcd-io/raft's <c>RawNode</c>). Inputs: <see cref="Tick"/>,
/// <see cref="Step"/> (messages from peers), and the Propose/Read/Transfer/Conf calls. Output: <see cref="GetReady"/>,
/// handled by the host in the order documented on <see cref="Ready"/>, then acknowledged with <see cref="Advance"/>.
/// <para>Not thread-safe: one thread (or one actor) drives a node. It does no IO and reads no clock; the only randomness is
/// <see cref="RaftConfig.Random"/>.</para>
/// </summary>
public sealed class RaftNode
{
    /// <summary>Restores the node from <see cref="RaftConfig.Storage"/> (hard state, membership, log).</summary>
    public RaftNode(RaftConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        throw new NotImplementedException("Contract only; the algorithm follows in the next commit.");
    }

    public ulong Id => throw new NotImplementedException();

    public ulong Term => throw new NotImplementedException();

    public StateRole Role => throw new NotImplementedException();

    /// <summary>The known leader, 0 if none.</summary>
    public ulong Leader => throw new NotImplementedException();

    public RaftStatus Status => throw new NotImplementedException();

    public bool HasReady => throw new NotImplementedException();

    /// <summary>
    /// Starts a brand-new cluster on an empty log: appends AddNode conf-change entries for <paramref name="voters"/> at
    /// indexes 1..n in term 1, committed. They come out in the first Ready (persist, then apply with ApplyConfChange).
    /// Every founding member calls this with the same list. A node joining an existing cluster does not: it starts with
    /// an empty membership and learns it from the leader.
    /// </summary>
    /// <exception cref="InvalidOperationException">The log is not empty (restart: do not bootstrap again).</exception>
    public void Bootstrap(IReadOnlyList<ulong> voters) => throw new NotImplementedException();

    /// <summary>Advances logical time by one tick (election timer on followers, heartbeat and check-quorum on leaders).</summary>
    public void Tick() => throw new NotImplementedException();

    /// <summary>Starts an election now (with pre-vote), as if the election timer fired.</summary>
    public void Campaign() => throw new NotImplementedException();

    /// <summary>Feeds a message from a peer. Messages from unknown or stale senders are ignored as Raft prescribes.</summary>
    /// <exception cref="ArgumentException">A local message kind (<see cref="Message.IsLocal"/>).</exception>
    public void Step(Message message) => throw new NotImplementedException();

    /// <summary>Proposes data to append to the log: appended on the leader, forwarded (MsgProp) by a follower.</summary>
    /// <exception cref="ProposalDroppedException">No leader known, transfer in progress, or uncommitted-size limit reached.</exception>
    public void Propose(ReadOnlyMemory<byte> data) => throw new NotImplementedException();

    /// <summary>Proposes a membership change (one voter at a time; see <see cref="ConfChange"/>).</summary>
    /// <exception cref="ProposalDroppedException">As <see cref="Propose"/>, or <see cref="ProposalDropReason.ConfChangePending"/> on the leader.</exception>
    public void ProposeConfChange(ConfChange change) => throw new NotImplementedException();

    /// <summary>
    /// Requests a linearizable read point (thesis §6.4). The answer comes as a <see cref="ReadState"/> with the same
    /// context in a later Ready. Followers forward to the leader.
    /// </summary>
    /// <exception cref="ProposalDroppedException">No leader known.</exception>
    public void ReadIndex(ReadOnlyMemory<byte> context) => throw new NotImplementedException();

    /// <summary>Asks the leader to hand leadership to <paramref name="target"/> (thesis §3.10). Aborted after an election timeout.</summary>
    public void TransferLeadership(ulong target) => throw new NotImplementedException();

    /// <summary>What the host must do now; call only when <see cref="HasReady"/>, and <see cref="Advance"/> before the next one.</summary>
    public Ready GetReady() => throw new NotImplementedException();

    /// <summary>Tells the node the host has persisted, sent and applied <paramref name="ready"/>.</summary>
    public void Advance(Ready ready) => throw new NotImplementedException();

    /// <summary>Applies a committed membership change (when its entry is applied); returns the new membership to save.</summary>
    public ConfState ApplyConfChange(ConfChange change) => throw new NotImplementedException();

    /// <summary>The transport failed to deliver to <paramref name="id"/>: the leader falls back to probing it.</summary>
    public void ReportUnreachable(ulong id) => throw new NotImplementedException();

    /// <summary>Outcome of sending the snapshot of a MsgSnap to <paramref name="id"/>.</summary>
    public void ReportSnapshot(ulong id, SnapshotStatus status) => throw new NotImplementedException();

    /// <summary>Changes heartbeat and election timeout on a live node; takes effect from the next timer reset.</summary>
    /// <exception cref="ArgumentException">electionTicks &lt;= heartbeatTicks or heartbeatTicks &lt; 1.</exception>
    public void SetTiming(int heartbeatTicks, int electionTicks) => throw new NotImplementedException();
}
