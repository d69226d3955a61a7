namespace RaftKv.Raft;

/// <summary>
/// The Raft algorithm proper (after etcd-io/raft's <c>raft</c> struct): state transitions driven by ticks and messages.
/// <see cref="RaftNode"/> wraps it with the Ready/Advance protocol.
/// <para>Invariants kept here:</para>
/// <list type="bullet">
/// <item>At most one vote per term: <see cref="Vote"/> changes only when <see cref="Term"/> changes or from 0.</item>
/// <item>A leader never overwrites or deletes its own entries; it commits only an index whose entry is from its own
/// term (§5.4.2), counting its own copy only once durable (<see cref="OnPersisted"/>).</item>
/// <item>Committed never decreases; a follower never truncates below Committed.</item>
/// </list>
/// </summary>
internal sealed class RaftCore
{
    private readonly RaftConfig _config;
    private readonly Random _random;
    private readonly List<Message> _msgs = [];
    private readonly List<ReadState> _readStates = [];
    private readonly List<DroppedProposal> _droppedProposals = [];
    private readonly List<Message> _pendingReadIndexMessages = [];
    private readonly ReadOnlyRequests _readOnly = new();
    private readonly Dictionary<ulong, Progress> _progress = [];
    private readonly Dictionary<ulong, bool> _votes = [];
    private ulong[] _voters = [];
    private ulong[] _learners = [];
    private ulong[] _members = [];
    private ulong[] _matchBuffer = [];
    private readonly HashSet<ulong> _leavingAcks = [];
    private int _randomizedElectionTimeout;
    private ulong _uncommittedSize;

    // A removed leader "leaving": the commit index the remaining voters must confirm before it steps down (0 = not leaving).
    private ulong _leavingCommit;
    private int _leavingElapsed;

    public RaftCore(RaftConfig config)
    {
        _config = config;
        _random = config.Random ?? new Random(unchecked((int)config.Id));
        Id = config.Id;
        HeartbeatTimeout = config.HeartbeatTicks;
        ElectionTimeout = config.ElectionTicks;
        Log = new RaftLog(config.Storage, config.MaxCommittedSizePerReady);

        var initial = config.Storage.InitialState();
        SetConfState(initial.ConfState);
        if (!initial.HardState.IsEmpty)
        {
            LoadHardState(initial.HardState);
        }

        if (config.Applied > 0)
        {
            Log.AppliedTo(config.Applied);
        }

        BecomeFollower(Term, 0);
    }

    public ulong Id { get; }

    public ulong Term { get; private set; }

    public ulong Vote { get; private set; }

    public ulong Lead { get; private set; }

    public StateRole State { get; private set; }

    public RaftLog Log { get; }

    public int HeartbeatTimeout { get; private set; }

    public int ElectionTimeout { get; private set; }

    public int ElectionElapsed { get; private set; }

    public int HeartbeatElapsed { get; private set; }

    public ulong LeadTransferee { get; private set; }

    /// <summary>Index of the latest conf change appended by this leader; no new one until Applied reaches it.</summary>
    public ulong PendingConfIndex { get; private set; }

    public List<Message> Messages => _msgs;

    public List<ReadState> ReadStates => _readStates;

    /// <summary>Proposals this node forwarded and the receiver dropped (reported by MsgPropDropped), for the next Ready.</summary>
    public List<DroppedProposal> DroppedProposals => _droppedProposals;

    public IReadOnlyDictionary<ulong, Progress> Progress => _progress;

    public IReadOnlyList<ulong> Voters => _voters;

    public IReadOnlyList<ulong> Learners => _learners;

    public HardState HardState => new(Term, Vote, Log.Committed);

    public SoftState SoftState => new(Lead, State);

    /// <summary>Current membership (rebuilt only when it changes).</summary>
    public ConfState ConfState { get; private set; } = ConfState.Empty;

    public bool IsLearner => _progress.TryGetValue(Id, out var p) && p.IsLearner;

    private int Quorum => (_voters.Length / 2) + 1;

    private void LoadHardState(HardState hs)
    {
        if (hs.Commit < Log.Committed || hs.Commit > Log.LastIndex())
        {
            throw new InvalidOperationException(
                $"Persisted commit index {hs.Commit} is out of range [{Log.Committed}, {Log.LastIndex()}]: the log and hard state disagree (storage lost entries?).");
        }

        Log.Committed = hs.Commit;
        Term = hs.Term;
        Vote = hs.Vote;
    }

    // ---------------------------------------------------------------- membership

    /// <summary>Replaces the membership (start-up or snapshot). Progress of remaining members is kept.</summary>
    public void SetConfState(ConfState cs)
    {
        var last = Log.LastIndex();
        var keep = new HashSet<ulong>(cs.Voters);
        keep.UnionWith(cs.Learners);
        foreach (var id in _members)
        {
            if (!keep.Contains(id))
            {
                _progress.Remove(id);
            }
        }

        foreach (var id in cs.Voters)
        {
            EnsureProgress(id, false, last);
        }

        foreach (var id in cs.Learners)
        {
            EnsureProgress(id, true, last);
        }

        RebuildMemberArrays();
    }

    private void EnsureProgress(ulong id, bool learner, ulong lastIndex)
    {
        if (_progress.TryGetValue(id, out var p))
        {
            p.IsLearner = learner;
            return;
        }

        // A new member: probe from our last index; count it active so check-quorum does not fire before it answers.
        _progress[id] = new Progress(Math.Max(lastIndex, 1), _config.MaxInflightMessages, _config.MaxInflightBytes, learner)
        {
            RecentActive = true,
        };
    }

    private void RebuildMemberArrays()
    {
        var voters = new List<ulong>();
        var learners = new List<ulong>();
        foreach (var (id, p) in _progress)
        {
            (p.IsLearner ? learners : voters).Add(id);
        }

        voters.Sort();
        learners.Sort();
        _voters = [.. voters];
        _learners = [.. learners];
        var all = new List<ulong>(voters);
        all.AddRange(learners);
        all.Sort();
        _members = [.. all];
        _matchBuffer = new ulong[_voters.Length];
        ConfState = new ConfState(_voters, _learners);
    }

    private bool IsVoter(ulong id) => _progress.TryGetValue(id, out var p) && !p.IsLearner;

    /// <summary>Checks a conf change against the current membership; null if valid, else why not.</summary>
    public string? ValidateConfChange(ConfChange cc)
    {
        if (cc.NodeId == 0)
        {
            return "node id 0 is reserved; use ids >= 1";
        }

        var known = _progress.TryGetValue(cc.NodeId, out var p);
        return cc.Type switch
        {
            ConfChangeType.AddNode when known && !p!.IsLearner => $"node {cc.NodeId:x} is already a voter",
            ConfChangeType.AddLearnerNode when known && !p!.IsLearner =>
                $"node {cc.NodeId:x} is a voter; demote it by removing it first, then adding it as a learner",
            ConfChangeType.AddLearnerNode when known => $"node {cc.NodeId:x} is already a learner",
            ConfChangeType.RemoveNode when !known => $"node {cc.NodeId:x} is not a member",
            ConfChangeType.RemoveNode when !p!.IsLearner && _voters.Length == 1 => "cannot remove the last voter",
            _ => null,
        };
    }

    /// <summary>
    /// Applies a committed conf change (every member applies the same ones in log order, so they agree).
    /// An invalid change (see <see cref="ValidateConfChange"/>) leaves the membership unchanged on every member.
    /// </summary>
    public ConfState ApplyConfChange(ConfChange cc)
    {
        if (ValidateConfChange(cc) is null)
        {
            var last = Log.LastIndex();
            switch (cc.Type)
            {
                case ConfChangeType.AddNode:
                    if (_progress.TryGetValue(cc.NodeId, out var learner))
                    {
                        learner.IsLearner = false; // promotion keeps its replication progress
                    }
                    else
                    {
                        EnsureProgress(cc.NodeId, false, last);
                    }

                    break;
                case ConfChangeType.AddLearnerNode:
                    EnsureProgress(cc.NodeId, true, last);
                    break;
                case ConfChangeType.RemoveNode:
                    _progress.Remove(cc.NodeId);
                    _votes.Remove(cc.NodeId);
                    break;
            }

            RebuildMemberArrays();
            AfterConfChange();
        }

        return ConfState;
    }

    private void AfterConfChange()
    {
        if (State != StateRole.Leader)
        {
            return;
        }

        if (!IsVoter(Id))
        {
            // Removed (or demoted) leader. It must step down, but not before the remaining voters know the removal is
            // committed: a survivor that still counts this node as a voter could never form a quorum without it (two
            // voters shrinking to one). So it keeps leading, without counting itself, until a quorum of the new voters
            // reported a commit index >= now, or an election timeout passed.
            if (_voters.Length == 0)
            {
                BecomeFollower(Term, 0);
                return;
            }

            _leavingCommit = Log.Committed;
            _leavingElapsed = 0;
            _leavingAcks.Clear();
            BroadcastAppend();
            BroadcastHeartbeat();
            return;
        }

        if (LeadTransferee != 0 && !IsVoter(LeadTransferee))
        {
            AbortLeaderTransfer();
        }

        // The quorum changed: commitment may advance, and new members need the log.
        if (MaybeCommit())
        {
            BroadcastAppend();
        }
        else
        {
            foreach (var id in _members)
            {
                if (id != Id)
                {
                    MaybeSendAppend(id, false);
                }
            }
        }
    }

    /// <summary>The quorum-th largest Match among voters: the highest index stored durably on a majority.</summary>
    private ulong QuorumMatch()
    {
        var n = _voters.Length;
        if (n == 0)
        {
            return 0;
        }

        var buf = _matchBuffer;
        for (var i = 0; i < n; i++)
        {
            buf[i] = _progress[_voters[i]].Match;
        }

        // Insertion sort, descending: n is tiny (1..9).
        for (var i = 1; i < n; i++)
        {
            var v = buf[i];
            var j = i - 1;
            while (j >= 0 && buf[j] < v)
            {
                buf[j + 1] = buf[j];
                j--;
            }

            buf[j + 1] = v;
        }

        return buf[Quorum - 1];
    }

    private bool HasQuorum(HashSet<ulong> ids)
    {
        var count = 0;
        foreach (var v in _voters)
        {
            if (ids.Contains(v))
            {
                count++;
            }
        }

        return count >= Quorum;
    }

    // ---------------------------------------------------------------- role changes

    private void Reset(ulong term)
    {
        if (Term != term)
        {
            Term = term;
            Vote = 0;
        }

        Lead = 0;
        ElectionElapsed = 0;
        HeartbeatElapsed = 0;
        ResetRandomizedElectionTimeout();
        AbortLeaderTransfer();
        _votes.Clear();
        var last = Log.LastIndex();
        foreach (var id in _members)
        {
            var learner = _progress[id].IsLearner;
            var fresh = new Progress(last + 1, _config.MaxInflightMessages, _config.MaxInflightBytes, learner);
            if (id == Id)
            {
                // Only what is durable counts toward commitment.
                fresh.Match = Log.PersistedLastIndex();
                fresh.RecentActive = true;
            }

            _progress[id] = fresh;
        }

        PendingConfIndex = 0;
        _uncommittedSize = 0;
        _leavingCommit = 0;
        _leavingAcks.Clear();
        _readOnly.Clear();
        _pendingReadIndexMessages.Clear();
    }

    private void ResetRandomizedElectionTimeout() =>
        _randomizedElectionTimeout = ElectionTimeout + _random.Next(ElectionTimeout);

    public void BecomeFollower(ulong term, ulong lead)
    {
        Reset(term);
        Lead = lead;
        State = StateRole.Follower;
    }

    private void BecomePreCandidate()
    {
        if (State == StateRole.Leader)
        {
            throw new InvalidOperationException("Invalid transition leader -> pre-candidate.");
        }

        // Pre-vote changes neither term nor vote (thesis §9.6).
        _votes.Clear();
        Lead = 0;
        State = StateRole.PreCandidate;
    }

    private void BecomeCandidate()
    {
        if (State == StateRole.Leader)
        {
            throw new InvalidOperationException("Invalid transition leader -> candidate.");
        }

        Reset(Term + 1);
        Vote = Id;
        State = StateRole.Candidate;
    }

    private void BecomeLeader()
    {
        if (State == StateRole.Follower)
        {
            throw new InvalidOperationException("Invalid transition follower -> leader.");
        }

        Reset(Term);
        Lead = Id;
        State = StateRole.Leader;
        _progress[Id].BecomeReplicate();

        // An empty entry of the new term: committing it commits everything before it (§5.4.2), and until then
        // ReadIndex and conf changes wait (thesis §6.4, §4.1 bug fix).
        AppendEntries([new Entry(0, 0, EntryType.Normal, ReadOnlyMemory<byte>.Empty)], countSize: false);
        PendingConfIndex = Log.LastIndex();
    }

    private bool Promotable => IsVoter(Id) && Log.Unstable.Snapshot is null;

    // ---------------------------------------------------------------- ticks

    public void Tick()
    {
        if (State == StateRole.Leader)
        {
            TickHeartbeat();
        }
        else
        {
            TickElection();
        }
    }

    private void TickElection()
    {
        ElectionElapsed++;
        if (Promotable && ElectionElapsed >= _randomizedElectionTimeout)
        {
            ElectionElapsed = 0;
            Hup(transfer: false);
        }
    }

    private void TickHeartbeat()
    {
        HeartbeatElapsed++;
        ElectionElapsed++;
        if (ElectionElapsed >= ElectionTimeout)
        {
            ElectionElapsed = 0;
            CheckQuorum();
            if (State == StateRole.Leader && LeadTransferee != 0)
            {
                AbortLeaderTransfer(); // not done within an election timeout
            }
        }

        if (State != StateRole.Leader)
        {
            return;
        }

        if (_leavingCommit != 0 && ++_leavingElapsed >= ElectionTimeout)
        {
            BecomeFollower(Term, 0); // removed leader: do not linger
            return;
        }

        if (HeartbeatElapsed >= HeartbeatTimeout)
        {
            HeartbeatElapsed = 0;
            BroadcastHeartbeat();
        }
    }

    /// <summary>Check-quorum: a leader that did not hear from a quorum during the last election timeout steps down.</summary>
    private void CheckQuorum()
    {
        var active = 0;
        foreach (var id in _voters)
        {
            if (id == Id || _progress[id].RecentActive)
            {
                active++;
            }
        }

        foreach (var (id, p) in _progress)
        {
            if (id != Id)
            {
                p.RecentActive = false;
            }
        }

        if (active < Quorum)
        {
            BecomeFollower(Term, 0);
        }
    }

    public void SetTiming(int heartbeatTicks, int electionTicks)
    {
        RaftConfig.ValidateTiming(heartbeatTicks, electionTicks);
        HeartbeatTimeout = heartbeatTicks;
        ElectionTimeout = electionTicks;
        ResetRandomizedElectionTimeout();
    }

    // ---------------------------------------------------------------- elections

    /// <summary>Starts a pre-vote (or, for a transfer, a real election) if allowed.</summary>
    public void Hup(bool transfer)
    {
        if (State == StateRole.Leader || !Promotable)
        {
            return;
        }

        if (HasUnappliedConfChanges())
        {
            // Campaigning with a membership that is about to change could count the wrong voters.
            return;
        }

        if (transfer)
        {
            Campaign(preVote: false, transfer: true);
        }
        else
        {
            Campaign(preVote: true, transfer: false);
        }
    }

    private bool HasUnappliedConfChanges()
    {
        if (Log.Applied >= Log.Committed)
        {
            return false;
        }

        var lo = Math.Max(Log.Applied + 1, Log.FirstIndex());
        var hi = Log.Committed + 1;
        while (lo < hi)
        {
            var ents = Log.Slice(lo, hi, 4 * 1024 * 1024);
            foreach (var e in ents)
            {
                if (e.Type == EntryType.ConfChange)
                {
                    return true;
                }
            }

            lo += (ulong)ents.Count;
        }

        return false;
    }

    private void Campaign(bool preVote, bool transfer)
    {
        ulong term;
        MessageType voteType;
        if (preVote)
        {
            BecomePreCandidate();
            voteType = MessageType.MsgPreVote;
            term = Term + 1; // the term we would campaign in; ours is unchanged
        }
        else
        {
            BecomeCandidate();
            voteType = MessageType.MsgVote;
            term = Term;
        }

        if (Poll(Id, true) == VoteResult.Won)
        {
            // Single voter: we win at once.
            if (preVote)
            {
                Campaign(preVote: false, transfer);
            }
            else
            {
                BecomeLeader();
                BroadcastAppend();
            }

            return;
        }

        var lastIndex = Log.LastIndex();
        var lastTerm = Log.LastTerm();
        foreach (var id in _voters)
        {
            if (id == Id)
            {
                continue;
            }

            Send(new Message
            {
                Type = voteType,
                To = id,
                Term = term,
                Index = lastIndex,
                LogTerm = lastTerm,
                Context = transfer ? Message.CampaignTransferContext : default,
            });
        }
    }

    private enum VoteResult
    {
        Pending,
        Won,
        Lost,
    }

    private VoteResult Poll(ulong id, bool granted)
    {
        _votes.TryAdd(id, granted);
        var yes = 0;
        var no = 0;
        foreach (var v in _voters)
        {
            if (_votes.TryGetValue(v, out var g))
            {
                if (g)
                {
                    yes++;
                }
                else
                {
                    no++;
                }
            }
        }

        if (yes >= Quorum)
        {
            return VoteResult.Won;
        }

        return _voters.Length - no < Quorum ? VoteResult.Lost : VoteResult.Pending;
    }

    // ---------------------------------------------------------------- step

    /// <summary>Handles a message. Throws <see cref="ProposalDroppedException"/> for proposals/reads that cannot proceed.</summary>
    public void Step(Message m)
    {
        if (m.Term == 0)
        {
            // Local message, or a term-less forwarded MsgProp/MsgReadIndex.
        }
        else if (m.Term > Term)
        {
            if (m.Type is MessageType.MsgVote or MessageType.MsgPreVote)
            {
                var force = m.Context.Span.SequenceEqual(Message.CampaignTransferContext.Span);
                var inLease = Lead != 0 && ElectionElapsed < ElectionTimeout;
                if (!force && inLease)
                {
                    // Leader lease (check-quorum): we heard from a leader recently, so a disruptive candidate
                    // (for example a rejoining partitioned node) must not depose it. Neither update term nor grant.
                    return;
                }
            }

            switch (m.Type)
            {
                case MessageType.MsgPreVote:
                    // Never change our term in response to a pre-vote.
                    break;
                case MessageType.MsgPreVoteResp when !m.Reject:
                    // A granted pre-vote carries the future term; we bump it when we win the pre-vote.
                    break;
                case MessageType.MsgApp or MessageType.MsgHeartbeat or MessageType.MsgSnap:
                    BecomeFollower(m.Term, m.From);
                    break;
                default:
                    BecomeFollower(m.Term, 0);
                    break;
            }
        }
        else if (m.Term < Term)
        {
            if (m.Type is MessageType.MsgHeartbeat or MessageType.MsgApp)
            {
                // A stale leader (partitioned, or we advanced through a pre-vote-less path): tell it our term so it steps
                // down. Without this, with check-quorum a node with a higher term could never rejoin.
                Send(new Message { Type = MessageType.MsgAppResp, To = m.From });
            }
            else if (m.Type == MessageType.MsgPreVote)
            {
                Send(new Message { Type = MessageType.MsgPreVoteResp, To = m.From, Term = Term, Reject = true });
            }

            return; // otherwise ignore stale messages
        }

        switch (m.Type)
        {
            case MessageType.MsgHup:
                Hup(transfer: false);
                return;
            case MessageType.MsgPropDropped:
                // In any role: the proposal went nowhere, whoever leads now.
                _droppedProposals.Add(new DroppedProposal(m.From, (ProposalDropReason)m.RejectHint, m.Entries));
                return;
            case MessageType.MsgVote or MessageType.MsgPreVote:
                HandleVoteRequest(m);
                return;
        }

        switch (State)
        {
            case StateRole.Leader:
                StepLeader(m);
                break;
            case StateRole.Candidate or StateRole.PreCandidate:
                StepCandidate(m);
                break;
            default:
                StepFollower(m);
                break;
        }
    }

    private void HandleVoteRequest(Message m)
    {
        // We can vote if we already voted for this candidate (a duplicate), or we have not voted and know no leader
        // in this term, or it is a pre-vote for a future term.
        var canVote = Vote == m.From
            || (Vote == 0 && Lead == 0)
            || (m.Type == MessageType.MsgPreVote && m.Term > Term);
        var respType = m.Type == MessageType.MsgVote ? MessageType.MsgVoteResp : MessageType.MsgPreVoteResp;
        if (canVote && (_config.UnsafeGrantVoteWithoutLogCheck || Log.IsUpToDate(m.Index, m.LogTerm)))
        {
            // §5.4.1 election restriction passed. The response carries the candidate's term (for a pre-vote our own
            // term is lower; the candidate must recognise the answer as for its future term).
            Send(new Message { Type = respType, To = m.From, Term = m.Term });
            if (m.Type == MessageType.MsgVote)
            {
                ElectionElapsed = 0;
                Vote = m.From;
            }
        }
        else
        {
            Send(new Message { Type = respType, To = m.From, Term = Term, Reject = true });
        }
    }

    private void StepLeader(Message m)
    {
        switch (m.Type)
        {
            case MessageType.MsgBeat:
                BroadcastHeartbeat();
                return;
            case MessageType.MsgCheckQuorum:
                CheckQuorum();
                return;
            case MessageType.MsgProp:
                HandleProposal(m);
                return;
            case MessageType.MsgReadIndex:
                HandleReadIndex(m);
                return;
        }

        if (!_progress.TryGetValue(m.From, out var pr))
        {
            return; // not a member (any more)
        }

        if (_leavingCommit != 0 && m.Type is MessageType.MsgAppResp or MessageType.MsgHeartbeatResp && m.Commit >= _leavingCommit
            && !pr.IsLearner)
        {
            _leavingAcks.Add(m.From);
            if (HasQuorum(_leavingAcks))
            {
                BecomeFollower(Term, 0); // the remaining voters know the removal committed
                return;
            }
        }

        switch (m.Type)
        {
            case MessageType.MsgAppResp:
                HandleAppendResponse(m, pr);
                break;
            case MessageType.MsgHeartbeatResp:
                HandleHeartbeatResponse(m, pr);
                break;
            case MessageType.MsgSnapStatus:
                if (pr.State != ProgressState.Snapshot)
                {
                    return;
                }

                if (m.Reject)
                {
                    // Failed: forget the pending snapshot so BecomeProbe resumes from Match and retries.
                    pr.ClearPendingSnapshot();
                }

                // Either way wait for a heartbeat response before probing again (the snapshot may still be applying).
                pr.BecomeProbe();
                pr.ProbeSent = true;
                break;
            case MessageType.MsgUnreachable:
                // The transport lost messages: stop streaming optimistically and probe.
                if (pr.State == ProgressState.Replicate)
                {
                    pr.BecomeProbe();
                }

                break;
            case MessageType.MsgTransferLeader:
                HandleTransferLeader(m, pr);
                break;
        }
    }

    private void HandleProposal(Message m)
    {
        if (m.Entries.Count == 0)
        {
            throw new ArgumentException("A proposal needs at least one entry.", nameof(m));
        }

        if (!_progress.ContainsKey(Id))
        {
            throw new ProposalDroppedException(ProposalDropReason.NotAMember, "raft proposal dropped: this leader was removed from the cluster");
        }

        if (LeadTransferee != 0)
        {
            throw new ProposalDroppedException(ProposalDropReason.LeadershipTransferInProgress,
                $"raft proposal dropped: leadership is being transferred to {LeadTransferee:x}; retry on the new leader");
        }

        var ents = m.Entries;
        Entry[]? rewritten = null;
        ulong confIndex = 0; // index the accepted conf change will get, if any
        for (var i = 0; i < ents.Count; i++)
        {
            if (ents[i].Type != EntryType.ConfChange)
            {
                continue;
            }

            string? refusal = null;
            var pending = confIndex != 0 || PendingConfIndex > Log.Applied;
            if (pending)
            {
                refusal = $"a membership change is still pending (index {PendingConfIndex}, applied {Log.Applied}); only one change at a time, and not before the leader commits an entry of its term";
            }
            else
            {
                ConfChange cc;
                try
                {
                    cc = ConfChange.Decode(ents[i].Data);
                    refusal = ValidateConfChange(cc);
                }
                catch (FormatException e)
                {
                    refusal = e.Message;
                }
            }

            if (refusal is null)
            {
                confIndex = Log.LastIndex() + (ulong)i + 1;
                continue;
            }

            if (m.From == Id)
            {
                var reason = pending ? ProposalDropReason.ConfChangePending : ProposalDropReason.InvalidConfChange;
                throw new ProposalDroppedException(reason, "raft conf change refused: " + refusal);
            }

            // Forwarded from a follower: keep the batch but neutralise the change (etcd-io/raft does the same).
            rewritten ??= [.. ents];
            rewritten[i] = new Entry(0, 0, EntryType.Normal, ReadOnlyMemory<byte>.Empty);
        }

        if (!AppendEntries(rewritten ?? ents, countSize: true))
        {
            throw new ProposalDroppedException(ProposalDropReason.UncommittedSizeLimit,
                $"raft proposal dropped: too many uncommitted bytes ({_uncommittedSize} >= MaxUncommittedEntriesSize {_config.MaxUncommittedEntriesSize}); retry later");
        }

        if (confIndex != 0)
        {
            PendingConfIndex = confIndex;
        }

        BroadcastAppend();
    }

    /// <summary>Leader: assigns index and term to new entries and appends them (unstable until the host persists them).</summary>
    private bool AppendEntries(IReadOnlyList<Entry> ents, bool countSize)
    {
        if (countSize && _config.MaxUncommittedEntriesSize > 0)
        {
            ulong size = 0;
            for (var i = 0; i < ents.Count; i++)
            {
                size += (ulong)ents[i].Data.Length;
            }

            // Always admit something when nothing is uncommitted, so a single large entry cannot block forever.
            if (_uncommittedSize > 0 && size > 0 && _uncommittedSize + size > _config.MaxUncommittedEntriesSize)
            {
                return false;
            }

            _uncommittedSize += size;
        }

        var li = Log.LastIndex();
        var stamped = new Entry[ents.Count];
        for (var i = 0; i < ents.Count; i++)
        {
            var e = ents[i];
            stamped[i] = new Entry(li + 1 + (ulong)i, Term, e.Type, e.Data);
        }

        Log.Append(stamped);
        return true;
    }

    public void ReduceUncommittedSize(IReadOnlyList<Entry> committed)
    {
        if (_uncommittedSize == 0)
        {
            return;
        }

        ulong size = 0;
        for (var i = 0; i < committed.Count; i++)
        {
            size += (ulong)committed[i].Data.Length;
        }

        _uncommittedSize = size > _uncommittedSize ? 0 : _uncommittedSize - size;
    }

    private void HandleAppendResponse(Message m, Progress pr)
    {
        pr.RecentActive = true;
        if (m.Reject)
        {
            // Use the follower's hint to skip a whole term of mismatching entries at once.
            var nextProbe = m.RejectHint;
            if (m.LogTerm > 0)
            {
                nextProbe = Log.FindConflictByTerm(m.RejectHint, m.LogTerm).Index;
            }

            if (pr.MaybeDecrTo(m.Index, nextProbe))
            {
                if (pr.State == ProgressState.Replicate)
                {
                    pr.BecomeProbe();
                }

                SendAppend(m.From);
            }

            return;
        }

        if (m.Index > Log.LastIndex())
        {
            // Cannot acknowledge what we never sent (only possible when the safety rules were switched off in tests):
            // ignore it rather than track a match beyond our log.
            return;
        }

        var wasPaused = pr.IsPaused;
        if (!pr.MaybeUpdate(m.Index) && !(pr.Match == m.Index && pr.State == ProgressState.Probe))
        {
            return; // stale
        }

        switch (pr.State)
        {
            case ProgressState.Probe:
                pr.BecomeReplicate();
                break;
            case ProgressState.Snapshot when pr.Match + 1 >= Log.FirstIndex():
                // The snapshot (or enough of the log) arrived: resume normal replication.
                pr.BecomeProbe();
                pr.BecomeReplicate();
                break;
            case ProgressState.Replicate:
                pr.Inflights.FreeLE(m.Index);
                break;
        }

        if (MaybeCommit())
        {
            ReleasePendingReadIndexMessages();
            BroadcastAppend();
        }
        else if (wasPaused)
        {
            SendAppend(m.From);
        }

        // Fill the window with what the follower still lacks.
        while (MaybeSendAppend(m.From, false))
        {
        }

        if (m.From == LeadTransferee && pr.Match == Log.LastIndex())
        {
            SendTimeoutNow(m.From);
        }
    }

    private void HandleHeartbeatResponse(Message m, Progress pr)
    {
        pr.RecentActive = true;
        pr.ProbeSent = false;
        if (pr.State == ProgressState.Replicate && pr.Inflights.Full)
        {
            // The follower is alive but its acknowledgements may have been lost: free a slot so replication resumes.
            pr.Inflights.FreeFirstOne();
        }

        if (pr.Match < Log.LastIndex() || pr.State == ProgressState.Probe)
        {
            SendAppend(m.From);
        }

        if (m.Context.IsEmpty || _readOnly.Count == 0)
        {
            return;
        }

        var acks = _readOnly.RecvAck(m.From, m.Context);
        if (acks is null || !HasQuorum(acks))
        {
            return;
        }

        foreach (var rs in _readOnly.Advance(m.Context))
        {
            RespondToReadIndex(rs.Request, rs.Index);
        }
    }

    private void HandleTransferLeader(Message m, Progress pr)
    {
        if (pr.IsLearner)
        {
            return; // a learner cannot lead
        }

        var target = m.From;
        if (LeadTransferee != 0)
        {
            if (LeadTransferee == target)
            {
                return; // already in progress
            }

            AbortLeaderTransfer();
        }

        if (target == Id)
        {
            return; // already leader
        }

        // The transfer must complete within one election timeout, or it is aborted (TickHeartbeat).
        ElectionElapsed = 0;
        LeadTransferee = target;
        if (pr.Match == Log.LastIndex())
        {
            SendTimeoutNow(target);
        }
        else
        {
            SendAppend(target);
        }
    }

    private void SendTimeoutNow(ulong to) => Send(new Message { Type = MessageType.MsgTimeoutNow, To = to });

    private void AbortLeaderTransfer() => LeadTransferee = 0;

    private bool CommittedEntryInCurrentTerm() => Log.Term(Log.Committed) == Term;

    private void HandleReadIndex(Message m)
    {
        if (_voters.Length == 1 && _voters[0] == Id)
        {
            // Single voter: our commit index is the read index (nobody else can be leader).
            RespondToReadIndex(m, Log.Committed);
            return;
        }

        if (!CommittedEntryInCurrentTerm())
        {
            // Thesis §6.4: until the leader commits an entry of its term it may not know the latest commit index.
            _pendingReadIndexMessages.Add(m);
            return;
        }

        SendReadIndexRound(m);
    }

    private void SendReadIndexRound(Message m)
    {
        // Remember the commit index now, then confirm leadership with a heartbeat round to a quorum.
        var ctx = m.Entries[0].Data;
        _readOnly.Add(Log.Committed, m, ctx);
        var acks = _readOnly.RecvAck(Id, ctx);
        if (acks is not null && HasQuorum(acks))
        {
            foreach (var rs in _readOnly.Advance(ctx))
            {
                RespondToReadIndex(rs.Request, rs.Index);
            }

            return;
        }

        BroadcastHeartbeat(ctx);
    }

    private void ReleasePendingReadIndexMessages()
    {
        if (_pendingReadIndexMessages.Count == 0 || !CommittedEntryInCurrentTerm())
        {
            return;
        }

        var pending = _pendingReadIndexMessages.ToArray();
        _pendingReadIndexMessages.Clear();
        foreach (var m in pending)
        {
            SendReadIndexRound(m);
        }
    }

    private void RespondToReadIndex(Message request, ulong index)
    {
        if (request.From == 0 || request.From == Id)
        {
            _readStates.Add(new ReadState(index, request.Entries[0].Data));
        }
        else
        {
            Send(new Message { Type = MessageType.MsgReadIndexResp, To = request.From, Index = index, Entries = request.Entries });
        }
    }

    private void StepCandidate(Message m)
    {
        var myResp = State == StateRole.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
        switch (m.Type)
        {
            case MessageType.MsgProp:
                throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft proposal dropped: no leader (election in progress); retry");
            case MessageType.MsgReadIndex:
                throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft read index dropped: no leader (election in progress); retry");
            case MessageType.MsgTransferLeader:
                throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft leadership transfer dropped: no leader (election in progress)");
            case MessageType.MsgApp:
                BecomeFollower(m.Term, m.From); // a leader of our term exists
                HandleAppend(m);
                break;
            case MessageType.MsgHeartbeat:
                BecomeFollower(m.Term, m.From);
                HandleHeartbeat(m);
                break;
            case MessageType.MsgSnap:
                BecomeFollower(m.Term, m.From);
                HandleSnapshot(m);
                break;
            case var t when t == myResp:
                switch (Poll(m.From, !m.Reject))
                {
                    case VoteResult.Won:
                        if (State == StateRole.PreCandidate)
                        {
                            Campaign(preVote: false, transfer: false);
                        }
                        else
                        {
                            BecomeLeader();
                            BroadcastAppend();
                        }

                        break;
                    case VoteResult.Lost:
                        // A pre-vote loss leaves the term alone; a vote loss keeps the incremented term.
                        BecomeFollower(Term, 0);
                        break;
                }

                break;
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.MsgProp:
                if (Lead == 0)
                {
                    throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft proposal dropped: no leader; retry when a leader is elected");
                }

                Send(m with { To = Lead, Term = 0 });
                break;
            case MessageType.MsgApp:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleAppend(m);
                break;
            case MessageType.MsgHeartbeat:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleHeartbeat(m);
                break;
            case MessageType.MsgSnap:
                ElectionElapsed = 0;
                Lead = m.From;
                HandleSnapshot(m);
                break;
            case MessageType.MsgTransferLeader:
                if (Lead == 0)
                {
                    throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft leadership transfer dropped: no leader");
                }

                Send(m with { To = Lead, Term = 0 });
                break;
            case MessageType.MsgTimeoutNow:
                // The leader hands over: campaign at once, skipping pre-vote, overriding the followers' leases.
                Hup(transfer: true);
                break;
            case MessageType.MsgReadIndex:
                if (Lead == 0)
                {
                    throw new ProposalDroppedException(ProposalDropReason.NoLeader, "raft read index dropped: no leader; retry when a leader is elected");
                }

                Send(m with { To = Lead, Term = 0 });
                break;
            case MessageType.MsgReadIndexResp:
                if (m.Entries.Count == 1)
                {
                    _readStates.Add(new ReadState(m.Index, m.Entries[0].Data));
                }

                break;
        }
    }

    private void HandleAppend(Message m)
    {
        if (m.Index < Log.Committed)
        {
            // Everything up to our commit index matches the leader (Log Matching); tell it where we are.
            Send(new Message { Type = MessageType.MsgAppResp, To = m.From, Index = Log.Committed, Commit = Log.Committed });
            return;
        }

        if (Log.MaybeAppend(m.Index, m.LogTerm, m.Commit, m.Entries) is { } lastNew)
        {
            Send(new Message { Type = MessageType.MsgAppResp, From = Id, Term = Term, To = m.From, Index = lastNew, Commit = Log.Committed });
            return;
        }

        // Mismatch at m.Index: hint the largest index whose term is <= the leader's term there, so the leader can skip.
        var hintIndex = Math.Min(m.Index, Log.LastIndex());
        var (index, term) = Log.FindConflictByTerm(hintIndex, m.LogTerm);
        Send(new Message
        {
            Type = MessageType.MsgAppResp,
            To = m.From,
            Index = m.Index,
            Reject = true,
            RejectHint = index,
            LogTerm = term,
        });
    }

    private void HandleHeartbeat(Message m)
    {
        Log.CommitTo(Math.Min(m.Commit, Log.LastIndex()));
        Send(new Message { Type = MessageType.MsgHeartbeatResp, To = m.From, Context = m.Context, Commit = Log.Committed });
    }

    private void HandleSnapshot(Message m)
    {
        if (m.Snapshot is { IsEmpty: false } s && Restore(s))
        {
            Send(new Message { Type = MessageType.MsgAppResp, To = m.From, Index = Log.LastIndex(), Commit = Log.Committed });
        }
        else
        {
            Send(new Message { Type = MessageType.MsgAppResp, To = m.From, Index = Log.Committed, Commit = Log.Committed });
        }
    }

    /// <summary>Installs a snapshot from the leader if it is ahead of our commit index; false if ignored.</summary>
    private bool Restore(Snapshot s)
    {
        var meta = s.Metadata;
        if (meta.Index <= Log.Committed)
        {
            return false;
        }

        if (State != StateRole.Follower)
        {
            BecomeFollower(Term + 1, 0); // defensive: only followers install snapshots
        }

        if (Log.MatchTerm(meta.Index, meta.Term))
        {
            // We already have the entry the snapshot ends with: just fast-forward the commit index.
            Log.CommitTo(meta.Index);
            return false;
        }

        Log.Restore(s);
        SetConfState(meta.ConfState);
        var last = Log.LastIndex();
        foreach (var (id, p) in _progress)
        {
            p.Match = 0;
            p.Next = last + 1;
            if (id == Id)
            {
                p.Match = Log.PersistedLastIndex();
            }
        }

        return true;
    }

    // ---------------------------------------------------------------- replication

    /// <summary>Called when the host made entries up to (index, term) durable. The leader counts its own copy only now.</summary>
    public void OnPersisted(ulong index, ulong term)
    {
        Log.StableTo(index, term);
        if (State != StateRole.Leader || !Log.MatchTerm(index, term))
        {
            return;
        }

        // A leader that applied its own removal has no progress of its own: it leads on (see _leavingCommit)
        // without counting itself, so its persist moves nothing.
        if (!_progress.TryGetValue(Id, out var self))
        {
            return;
        }

        if (self.MaybeUpdate(index) && MaybeCommit())
        {
            ReleasePendingReadIndexMessages();
            BroadcastAppend();
        }
    }

    private bool MaybeCommit() =>
        Log.MaybeCommit(QuorumMatch(), Term, _config.UnsafeCommitPreviousTermByCounting);

    private void BroadcastAppend()
    {
        foreach (var id in _members)
        {
            if (id != Id)
            {
                SendAppend(id);
            }
        }
    }

    private void SendAppend(ulong to) => MaybeSendAppend(to, true);

    /// <summary>
    /// Sends the next MsgApp to <paramref name="to"/> if its progress allows (or a snapshot when the entries it needs are
    /// compacted). Returns true if a message was sent.
    /// </summary>
    private bool MaybeSendAppend(ulong to, bool sendIfEmpty)
    {
        if (!_progress.TryGetValue(to, out var pr) || pr.IsPaused)
        {
            return false;
        }

        var prevIndex = pr.Next - 1;
        if (!Log.TryTerm(prevIndex, out var prevTerm))
        {
            return MaybeSendSnapshot(to, pr);
        }

        IReadOnlyList<Entry> ents;
        try
        {
            ents = Log.EntriesFrom(pr.Next, _config.MaxSizePerMessage);
        }
        catch (RaftLogCompactedException)
        {
            return MaybeSendSnapshot(to, pr);
        }

        if (ents.Count == 0 && !sendIfEmpty)
        {
            return false;
        }

        ulong bytes = 0;
        for (var i = 0; i < ents.Count; i++)
        {
            bytes += (ulong)ents[i].Size;
        }

        Send(new Message
        {
            Type = MessageType.MsgApp,
            From = Id,
            Term = Term,
            To = to,
            Index = prevIndex,
            LogTerm = prevTerm,
            Entries = ents,
            Commit = Log.Committed,
        });
        pr.SentEntries(ents.Count, ents.Count > 0 ? ents[^1].Index : prevIndex, bytes);
        return true;
    }

    private bool MaybeSendSnapshot(ulong to, Progress pr)
    {
        if (!pr.RecentActive)
        {
            return false; // do not ship a snapshot to a member that may be down
        }

        Snapshot snapshot;
        try
        {
            snapshot = Log.Snapshot();
        }
        catch (SnapshotTemporarilyUnavailableException)
        {
            return false; // retried on a later heartbeat response
        }

        if (snapshot.IsEmpty)
        {
            throw new InvalidOperationException(
                $"Follower {to:x} needs entries from index {pr.Next}, which are compacted, but storage has no snapshot.");
        }

        pr.BecomeSnapshot(snapshot.Metadata.Index);
        Send(new Message { Type = MessageType.MsgSnap, To = to, Snapshot = snapshot });
        return true;
    }

    private void BroadcastHeartbeat() => BroadcastHeartbeat(_readOnly.LastPendingContext());

    private void BroadcastHeartbeat(ReadOnlyMemory<byte> context)
    {
        foreach (var id in _members)
        {
            if (id == Id)
            {
                continue;
            }

            // Never tell a follower to commit beyond what it is known to have: it may lack those entries.
            var commit = Math.Min(_progress[id].Match, Log.Committed);
            Send(new Message { Type = MessageType.MsgHeartbeat, From = Id, Term = Term, To = id, Commit = commit, Context = context });
        }
    }

    /// <summary>
    /// A proposal forwarded by <c>m.From</c> was dropped here before anything was appended: tell its proposer (term-less,
    /// like the MsgProp), so its client gets an answer now rather than a timeout.
    /// </summary>
    public void RefuseForwardedProposal(Message m, ProposalDropReason reason) =>
        Send(new Message { Type = MessageType.MsgPropDropped, To = m.From, Entries = m.Entries, RejectHint = (ulong)reason });

    private void Send(Message m)
    {
        // Proposals and read requests forwarded to the leader, and refusals of proposals, are term-less (handled as local there); vote messages
        // carry their own term; everything else carries ours. A forwarded MsgTransferLeader keeps From = the target.
        var keepTerm = m.Type is MessageType.MsgProp or MessageType.MsgReadIndex or MessageType.MsgTransferLeader or MessageType.MsgPropDropped
            or MessageType.MsgVote or MessageType.MsgVoteResp or MessageType.MsgPreVote or MessageType.MsgPreVoteResp;
        var from = m.Type == MessageType.MsgTransferLeader ? m.From : Id;
        var term = keepTerm ? m.Term : Term;
        _msgs.Add(m.From == from && m.Term == term ? m : m with { From = from, Term = term });
    }
}
