namespace RaftKv.Raft;

/// <summary>
/// Kinds of <see cref="Message"/>, numbered as etcd-io/raft's <c>MessageType</c> so traces read alike.
/// "Local" kinds never cross the network: <see cref="RaftNode.Step"/> refuses them.
/// </summary>
public enum MessageType
{
    /// <summary>Local: start an election (see <see cref="RaftNode.Campaign"/>); also produced by the election timer.</summary>
    MsgHup = 0,

    /// <summary>Local: the leader's heartbeat timer fired.</summary>
    MsgBeat = 1,

    /// <summary>A proposal: local, or forwarded by a follower to the leader (Entries carry the data).</summary>
    MsgProp = 2,

    /// <summary>Leader → follower: entries after (Index, LogTerm), plus the leader's commit index.</summary>
    MsgApp = 3,

    /// <summary>Follower → leader: Index is the last index now matching (or, on Reject, the probed index with RejectHint/LogTerm as a hint).</summary>
    MsgAppResp = 4,

    /// <summary>Candidate → all: vote for me in Term; (Index, LogTerm) is my last entry.</summary>
    MsgVote = 5,

    /// <summary>Answer to <see cref="MsgVote"/> (Reject = false is a grant).</summary>
    MsgVoteResp = 6,

    /// <summary>Leader → follower: install <see cref="Message.Snapshot"/>.</summary>
    MsgSnap = 7,

    /// <summary>Leader → follower: I am alive; Commit is min(leader commit, follower match).</summary>
    MsgHeartbeat = 8,

    /// <summary>Answer to <see cref="MsgHeartbeat"/>; Context echoes a pending ReadIndex round.</summary>
    MsgHeartbeatResp = 9,

    /// <summary>Local: the transport could not reach a peer (see <see cref="RaftNode.ReportUnreachable"/>).</summary>
    MsgUnreachable = 10,

    /// <summary>Local: outcome of sending a snapshot (see <see cref="RaftNode.ReportSnapshot"/>); Reject = failure.</summary>
    MsgSnapStatus = 11,

    /// <summary>Local: the leader checks that a quorum was active during the last election timeout.</summary>
    MsgCheckQuorum = 12,

    /// <summary>Ask the leader to hand leadership to From (local via <see cref="RaftNode.TransferLeadership"/>, or forwarded).</summary>
    MsgTransferLeader = 13,

    /// <summary>Leader → transfer target: campaign now, ignoring the election timer and leader lease.</summary>
    MsgTimeoutNow = 14,

    /// <summary>Follower → leader: a linearizable read request; Entries[0].Data carries the request context.</summary>
    MsgReadIndex = 15,

    /// <summary>Leader → follower: the read index (Index) for the context in Entries[0].Data.</summary>
    MsgReadIndexResp = 16,

    /// <summary>Would you vote for me in Term? Changes no state at the receiver (Raft thesis §9.6).</summary>
    MsgPreVote = 17,

    /// <summary>Answer to <see cref="MsgPreVote"/>; Term is the term asked about when granted.</summary>
    MsgPreVoteResp = 18,

    /// <summary>
    /// raftkv's own (etcd-io/raft has none, numbered clear of its kinds): a node that dropped a proposal forwarded to it (MsgProp
    /// from another node: a leader handing over or removed, a node without a leader, the uncommitted-size limit) tells the
    /// proposer at once instead of letting it wait for its timeout. Entries are the dropped ones, never appended anywhere;
    /// RejectHint is the <see cref="ProposalDropReason"/>. Term-less, like the MsgProp it answers.
    /// </summary>
    MsgPropDropped = 100,
}

/// <summary>
/// A message between Raft nodes (or a local input). Field meanings follow etcd-io/raft's <c>raftpb.Message</c>;
/// unused fields stay at their defaults. Node ids are <c>ulong</c>, 0 meaning "none".
/// </summary>
public sealed record Message
{
    /// <summary>Context of MsgVote/MsgPreVote sent because of MsgTimeoutNow: receivers then ignore their leader lease.</summary>
    public static ReadOnlyMemory<byte> CampaignTransferContext { get; } = "CampaignTransfer"u8.ToArray();

    public required MessageType Type { get; init; }

    public ulong To { get; init; }

    public ulong From { get; init; }

    /// <summary>The sender's term; 0 for local messages and for MsgProp/MsgReadIndex/MsgTransferLeader forwarded to the leader (term-less).</summary>
    public ulong Term { get; init; }

    /// <summary>MsgApp: term of the entry at <see cref="Index"/>. Votes: term of the candidate's last entry. Rejected MsgAppResp: term at RejectHint.</summary>
    public ulong LogTerm { get; init; }

    /// <summary>MsgApp: index preceding <see cref="Entries"/>. Votes: candidate's last index. MsgAppResp: see <see cref="MessageType.MsgAppResp"/>.</summary>
    public ulong Index { get; init; }

    public IReadOnlyList<Entry> Entries { get; init; } = [];

    /// <summary>
    /// MsgApp/MsgHeartbeat: the leader's commit index (for a heartbeat, capped at what the follower is known to have).
    /// MsgAppResp/MsgHeartbeatResp: the follower's commit index (lets a removed leader know the survivors learned of it).
    /// </summary>
    public ulong Commit { get; init; }

    /// <summary>MsgSnap only.</summary>
    public Snapshot? Snapshot { get; init; }

    public bool Reject { get; init; }

    /// <summary>Rejected MsgAppResp: the follower's guess of the highest index where the logs may match. MsgPropDropped: the <see cref="ProposalDropReason"/>.</summary>
    public ulong RejectHint { get; init; }

    /// <summary>Opaque: heartbeat ReadIndex round id, or <see cref="CampaignTransferContext"/> on votes.</summary>
    public ReadOnlyMemory<byte> Context { get; init; }

    /// <summary>Local kinds never go over the network.</summary>
    public bool IsLocal => Type is MessageType.MsgHup or MessageType.MsgBeat or MessageType.MsgUnreachable
        or MessageType.MsgSnapStatus or MessageType.MsgCheckQuorum;

    /// <summary>Responses (acknowledgements of something the receiver asked).</summary>
    public bool IsResponse => Type is MessageType.MsgAppResp or MessageType.MsgVoteResp or MessageType.MsgHeartbeatResp
        or MessageType.MsgPreVoteResp or MessageType.MsgReadIndexResp;

    /// <summary>A one-line rendering for traces.</summary>
    public override string ToString()
    {
        var s = $"{Type} {From}->{To} t{Term} lt{LogTerm} i{Index} c{Commit}";
        if (Entries.Count > 0)
        {
            s += $" ents[{Entries[0].Index}..{Entries[^1].Index}]";
        }

        if (Reject)
        {
            s += $" reject hint{RejectHint}";
        }

        if (Snapshot is { IsEmpty: false } snap)
        {
            s += $" snap@{snap.Metadata.Index}/t{snap.Metadata.Term}";
        }

        return s;
    }
}
