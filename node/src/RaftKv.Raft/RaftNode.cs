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
    private readonly RaftCore _raft;
    private SoftState _prevSoftState;
    private HardState _prevHardState;
    private Ready? _outstanding;

    /// <summary>Restores the node from <see cref="RaftConfig.Storage"/> (hard state, membership, log).</summary>
    /// <exception cref="ArgumentException">Invalid options (the message says which).</exception>
    /// <exception cref="InvalidOperationException">Storage is inconsistent (hard state commit beyond the log).</exception>
    public RaftNode(RaftConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        _raft = new RaftCore(config);
        _prevSoftState = _raft.SoftState;
        _prevHardState = config.Storage.InitialState().HardState;
    }

    public ulong Id => _raft.Id;

    public ulong Term => _raft.Term;

    public StateRole Role => _raft.State;

    /// <summary>The known leader, 0 if none.</summary>
    public ulong Leader => _raft.Lead;

    /// <summary>Highest index known committed (in memory).</summary>
    public ulong Commit => _raft.Log.Committed;

    /// <summary>Index of the last entry in the log (persisted or not).</summary>
    public ulong LastIndex => _raft.Log.LastIndex();

    /// <summary>Current membership.</summary>
    public ConfState ConfState => _raft.ConfState;

    /// <summary>The core, for white-box tests and the simulator's invariant checks.</summary>
    internal RaftCore Core => _raft;

    public RaftStatus Status
    {
        get
        {
            var progress = new Dictionary<ulong, ProgressStatus>();
            if (_raft.State == StateRole.Leader)
            {
                foreach (var (id, p) in _raft.Progress)
                {
                    progress[id] = p.ToStatus();
                }
            }

            return new RaftStatus(_raft.Id, _raft.HardState, _raft.SoftState, _raft.Log.Applied, _raft.Log.LastIndex(),
                _raft.ConfState, _raft.LeadTransferee, _raft.HeartbeatTimeout, _raft.ElectionTimeout, progress);
        }
    }

    /// <summary>True when there is work for the host. False while a Ready is handed out and not yet advanced.</summary>
    public bool HasReady
    {
        get
        {
            if (_outstanding is not null)
            {
                return false;
            }

            var log = _raft.Log;
            var hs = _raft.HardState;
            return _raft.Messages.Count > 0
                || log.Unstable.Count > 0
                || log.Unstable.Snapshot is not null
                || log.HasNextCommittedEntries()
                || _raft.ReadStates.Count > 0
                || _raft.DroppedProposals.Count > 0
                || _raft.SoftState != _prevSoftState
                || (!hs.IsEmpty && hs != _prevHardState);
        }
    }

    /// <summary>
    /// The log a new cluster starts with: one committed entry per founding voter's <paramref name="changes"/> (AddNode), at
    /// indexes 1..n in term 1. <see cref="Bootstrap"/> appends them; a tool that writes a new member's log itself (snapshot
    /// restore) saves them with <c>HardState(1, 0, n)</c>, which a restarting node then applies like any committed entries.
    /// </summary>
    public static Entry[] BootstrapEntries(IReadOnlyList<ConfChange> changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var entries = new Entry[changes.Count];
        for (var i = 0; i < changes.Count; i++)
        {
            if (changes[i].Type != ConfChangeType.AddNode)
            {
                throw new ArgumentException($"a founding member is added as a voter (AddNode), not {changes[i].Type}", nameof(changes));
            }

            entries[i] = new Entry((ulong)i + 1, 1, EntryType.ConfChange, changes[i].Encode());
        }

        return entries;
    }

    /// <summary>
    /// Starts a brand-new cluster on an empty log: appends AddNode conf-change entries for <paramref name="voters"/> at
    /// indexes 1..n in term 1, committed. They come out in the first Ready (persist, then apply with ApplyConfChange).
    /// Every founding member calls this with the same list. A node joining an existing cluster does not: it starts with
    /// an empty membership and learns it from the leader.
    /// </summary>
    /// <exception cref="InvalidOperationException">The log is not empty (restart: do not bootstrap again).</exception>
    public void Bootstrap(IReadOnlyList<ulong> voters)
    {
        ArgumentNullException.ThrowIfNull(voters);
        if (voters.Count == 0)
        {
            throw new ArgumentException("Bootstrap needs at least one voter.", nameof(voters));
        }

        if (_raft.Log.LastIndex() != 0 || !_raft.HardState.IsEmpty)
        {
            throw new InvalidOperationException(
                $"Cannot bootstrap: the log is not empty (last index {_raft.Log.LastIndex()}, term {_raft.Term}). A restarting member must not bootstrap again.");
        }

        _raft.BecomeFollower(1, 0);
        var entries = BootstrapEntries([.. voters.Select(v => new ConfChange(ConfChangeType.AddNode, v))]);
        _raft.Log.Append(entries);
        _raft.Log.CommitTo((ulong)entries.Length);
        foreach (var id in voters)
        {
            _raft.ApplyConfChange(new ConfChange(ConfChangeType.AddNode, id));
        }
    }

    /// <summary>Advances logical time by one tick (election timer on followers, heartbeat and check-quorum on leaders).</summary>
    public void Tick() => _raft.Tick();

    /// <summary>Starts an election now (with pre-vote), as if the election timer fired.</summary>
    public void Campaign() => _raft.Hup(transfer: false);

    /// <summary>Feeds a message from a peer. Messages from unknown or stale senders are ignored as Raft prescribes.</summary>
    /// <exception cref="ArgumentException">A local message kind (<see cref="Message.IsLocal"/>).</exception>
    public void Step(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.IsLocal)
        {
            throw new ArgumentException($"{message.Type} is a local message; use the RaftNode method for it instead of Step.", nameof(message));
        }

        if (message.IsResponse && message.Type != MessageType.MsgReadIndexResp && !_raft.Progress.ContainsKey(message.From))
        {
            return; // response from a peer that is not a member
        }

        try
        {
            _raft.Step(message);
        }
        catch (ProposalDroppedException e)
        {
            // A forwarded read that cannot proceed here is dropped (its sender retries the round after an election timeout);
            // a forwarded proposal's sender is told at once, so its client does not wait for a timeout.
            if (message.Type == MessageType.MsgProp && message.From != 0 && message.From != _raft.Id)
            {
                _raft.RefuseForwardedProposal(message, e.Reason);
            }
        }
    }

    /// <summary>Proposes data to append to the log: appended on the leader, forwarded (MsgProp) by a follower.</summary>
    /// <exception cref="ProposalDroppedException">No leader known, transfer in progress, or uncommitted-size limit reached.</exception>
    public void Propose(ReadOnlyMemory<byte> data) =>
        _raft.Step(new Message { Type = MessageType.MsgProp, From = _raft.Id, Entries = [new Entry(0, 0, EntryType.Normal, data)] });

    /// <summary>Proposes a batch of data entries in one message (one log append, one MsgApp round).</summary>
    /// <exception cref="ProposalDroppedException">As <see cref="Propose"/>.</exception>
    public void ProposeBatch(IReadOnlyList<ReadOnlyMemory<byte>> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        var entries = new Entry[batch.Count];
        for (var i = 0; i < entries.Length; i++)
        {
            entries[i] = new Entry(0, 0, EntryType.Normal, batch[i]);
        }

        _raft.Step(new Message { Type = MessageType.MsgProp, From = _raft.Id, Entries = entries });
    }

    /// <summary>
    /// Proposes a membership change (one at a time: refused while a previous one is not applied, and before this leader
    /// committed an entry of its term). Adding a voter: add it as a learner first, let it catch up, then AddNode.
    /// </summary>
    /// <exception cref="ProposalDroppedException">As <see cref="Propose"/>, or <see cref="ProposalDropReason.ConfChangePending"/>
    /// / <see cref="ProposalDropReason.InvalidConfChange"/> on the leader.</exception>
    public void ProposeConfChange(ConfChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        _raft.Step(new Message
        {
            Type = MessageType.MsgProp,
            From = _raft.Id,
            Entries = [new Entry(0, 0, EntryType.ConfChange, change.Encode())],
        });
    }

    /// <summary>
    /// Requests a linearizable read point (thesis §6.4). The answer comes as a <see cref="ReadState"/> with the same
    /// context in a later Ready (on this node, also when it is a follower). Use a unique context per request.
    /// </summary>
    /// <exception cref="ProposalDroppedException">No leader known.</exception>
    public void ReadIndex(ReadOnlyMemory<byte> context) =>
        _raft.Step(new Message { Type = MessageType.MsgReadIndex, Entries = [new Entry(0, 0, EntryType.Normal, context)] });

    /// <summary>
    /// Asks the leader to hand leadership to <paramref name="target"/> (thesis §3.10): it stops accepting proposals, catches
    /// the target up, then sends it MsgTimeoutNow. Aborted after an election timeout. On a follower it is forwarded to the leader.
    /// </summary>
    /// <exception cref="ProposalDroppedException">No leader known.</exception>
    public void TransferLeadership(ulong target) =>
        _raft.Step(new Message { Type = MessageType.MsgTransferLeader, From = target });

    /// <summary>What the host must do now; call only when <see cref="HasReady"/>, and <see cref="Advance"/> before the next one.</summary>
    /// <exception cref="InvalidOperationException">The previous Ready was not advanced.</exception>
    public Ready GetReady()
    {
        if (_outstanding is not null)
        {
            throw new InvalidOperationException("The previous Ready has not been advanced; call Advance(ready) first.");
        }

        var log = _raft.Log;
        var soft = _raft.SoftState;
        var hard = _raft.HardState;
        var entries = log.Unstable.Count == 0 ? (IReadOnlyList<Entry>)[] : [.. log.Unstable.Entries];
        var snapshot = log.Unstable.Snapshot;
        var committed = log.NextCommittedEntries();

        List<Message>? now = null;
        List<Message>? later = null;
        foreach (var m in _raft.Messages)
        {
            if (CanSendBeforePersist(m))
            {
                (now ??= []).Add(m);
            }
            else
            {
                (later ??= []).Add(m);
            }
        }

        _raft.Messages.Clear();
        IReadOnlyList<ReadState> readStates = _raft.ReadStates.Count == 0 ? [] : [.. _raft.ReadStates];
        _raft.ReadStates.Clear();
        IReadOnlyList<DroppedProposal> dropped = _raft.DroppedProposals.Count == 0 ? [] : [.. _raft.DroppedProposals];
        _raft.DroppedProposals.Clear();

        var hardChanged = !hard.IsEmpty && hard != _prevHardState;
        var ready = new Ready
        {
            SoftState = soft != _prevSoftState ? soft : null,
            HardState = hardChanged ? hard : null,
            Entries = entries,
            Snapshot = snapshot,
            CommittedEntries = committed,
            Messages = (IReadOnlyList<Message>?)now ?? [],
            MessagesAfterPersist = (IReadOnlyList<Message>?)later ?? [],
            ReadStates = readStates,
            DroppedProposals = dropped,
            // Commit-only changes need no fsync: a lost commit index is relearned from the leader.
            MustSync = entries.Count > 0 || snapshot is not null || hard.Term != _prevHardState.Term || hard.Vote != _prevHardState.Vote,
        };
        _outstanding = ready;
        return ready;
    }

    /// <summary>
    /// True for messages whose meaning does not depend on this node's unpersisted state: what a leader sends to followers
    /// (its own entries count toward commitment only after it persisted them), forwarded requests and their refusals, and pre-votes (which
    /// change nothing at the receiver). Votes, vote answers and acknowledgements promise persisted state.
    /// </summary>
    private static bool CanSendBeforePersist(Message m) => m.Type is MessageType.MsgApp or MessageType.MsgHeartbeat
        or MessageType.MsgSnap or MessageType.MsgTimeoutNow or MessageType.MsgProp or MessageType.MsgReadIndex
        or MessageType.MsgReadIndexResp or MessageType.MsgTransferLeader or MessageType.MsgPreVote or MessageType.MsgPropDropped;

    /// <summary>Tells the node the host has persisted, sent and applied <paramref name="ready"/>.</summary>
    /// <exception cref="InvalidOperationException">Not the Ready last handed out.</exception>
    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        if (!ReferenceEquals(ready, _outstanding))
        {
            throw new InvalidOperationException("Advance must be called with the Ready last returned by GetReady, once.");
        }

        _outstanding = null;
        if (ready.SoftState is { } soft)
        {
            _prevSoftState = soft;
        }

        if (ready.HardState is { } hard)
        {
            _prevHardState = hard;
        }

        var log = _raft.Log;
        if (ready.Snapshot is { } snap)
        {
            log.StableSnapTo(snap.Metadata.Index);
            log.AppliedTo(Math.Min(snap.Metadata.Index, log.Committed));
        }

        if (ready.Entries.Count > 0)
        {
            var last = ready.Entries[^1];
            _raft.OnPersisted(last.Index, last.Term);
        }

        if (ready.CommittedEntries.Count > 0)
        {
            log.AppliedTo(ready.CommittedEntries[^1].Index);
            _raft.ReduceUncommittedSize(ready.CommittedEntries);
        }
    }

    /// <summary>
    /// Applies a committed membership change (call it when its entry is applied, in log order); returns the new
    /// membership, which the host should persist with its state (a snapshot's metadata needs it). A change that is not
    /// valid for the current membership (see <see cref="ProposalDropReason.InvalidConfChange"/>) is ignored identically on all members.
    /// </summary>
    public ConfState ApplyConfChange(ConfChange change)
    {
        ArgumentNullException.ThrowIfNull(change);
        return _raft.ApplyConfChange(change);
    }

    /// <summary>The transport failed to deliver to <paramref name="id"/>: the leader falls back to probing it.</summary>
    public void ReportUnreachable(ulong id) =>
        _raft.Step(new Message { Type = MessageType.MsgUnreachable, From = id });

    /// <summary>
    /// Outcome of sending the snapshot of a MsgSnap to <paramref name="id"/>. The host must report every MsgSnap it was
    /// given (Finish once delivered, Failure if the transfer failed): until then the leader sends nothing else to that
    /// follower, so a lost snapshot that is never reported stalls it.
    /// </summary>
    public void ReportSnapshot(ulong id, SnapshotStatus status) =>
        _raft.Step(new Message { Type = MessageType.MsgSnapStatus, From = id, Reject = status == SnapshotStatus.Failure });

    /// <summary>Changes heartbeat and election timeout on a live node; the election timer is re-drawn in [E, 2E) at once.</summary>
    /// <exception cref="ArgumentException">electionTicks &lt;= heartbeatTicks or heartbeatTicks &lt; 1.</exception>
    public void SetTiming(int heartbeatTicks, int electionTicks) => _raft.SetTiming(heartbeatTicks, electionTicks);
}
