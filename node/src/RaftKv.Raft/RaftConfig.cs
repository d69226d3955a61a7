namespace RaftKv.Raft;

/// <summary>
/// Options of one <see cref="RaftNode"/>. Defaults follow etcd where it has one. Ticks are the only notion of time:
/// the host calls <see cref="RaftNode.Tick"/> every tick interval (etcd: heartbeat-interval = 1 tick).
/// </summary>
public sealed record RaftConfig
{
    /// <summary>This node's id (>= 1).</summary>
    public required ulong Id { get; init; }

    /// <summary>
    /// E: a follower that hears nothing from a leader for a random number of ticks in [E, 2E) starts a (pre-)election;
    /// a leader that has not heard from a quorum within E ticks steps down (check-quorum). Must be &gt; HeartbeatTicks.
    /// </summary>
    public int ElectionTicks { get; init; } = 10;

    /// <summary>The leader sends heartbeats every this many ticks.</summary>
    public int HeartbeatTicks { get; init; } = 1;

    /// <summary>The durable log this node starts from (and reads older entries from).</summary>
    public required IRaftLogStorage Storage { get; init; }

    /// <summary>
    /// The last index the host's state machine has applied (0 if it keeps nothing across restarts); committed entries
    /// after it are handed out again in <see cref="Ready.CommittedEntries"/>.
    /// </summary>
    public ulong Applied { get; init; }

    /// <summary>Max bytes (by <see cref="Entry.Size"/>) of entries in one MsgApp; at least one entry always goes. 0 = one entry per message.</summary>
    public ulong MaxSizePerMessage { get; init; } = 1024 * 1024;

    /// <summary>Max bytes of committed entries handed out in one Ready (at least one entry always goes).</summary>
    public ulong MaxCommittedSizePerReady { get; init; } = 64 * 1024 * 1024;

    /// <summary>Max MsgApp in flight (sent, not acknowledged) to one follower in the replicate state.</summary>
    public int MaxInflightMessages { get; init; } = 256;

    /// <summary>Max bytes of entries in flight to one follower; 0 = unlimited.</summary>
    public ulong MaxInflightBytes { get; init; }

    /// <summary>
    /// Max total data bytes of entries appended by the leader but not yet committed; further proposals are refused
    /// with <see cref="ProposalDropReason.UncommittedSizeLimit"/>. 0 = unlimited.
    /// </summary>
    public ulong MaxUncommittedEntriesSize { get; init; }

    /// <summary>Source of election timeout jitter. Pass a seeded instance for reproducible runs; null = <c>new Random((int)Id)</c>.</summary>
    public Random? Random { get; init; }

    /// <summary>
    /// UNSAFE, tests only: let a leader commit an entry of a previous term by counting replicas (violates §5.4.2; see figure 8).
    /// Exists so the simulator can show it catches the resulting lost writes.
    /// </summary>
    internal bool UnsafeCommitPreviousTermByCounting { get; init; }

    /// <summary>UNSAFE, tests only: grant votes without the "candidate's log is at least as up to date" check (§5.4.1).</summary>
    internal bool UnsafeGrantVoteWithoutLogCheck { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> saying what to change when the options cannot work.</summary>
    public void Validate()
    {
        if (Id == 0)
        {
            throw new ArgumentException("RaftConfig.Id must be >= 1 (0 means 'none').");
        }

        ValidateTiming(HeartbeatTicks, ElectionTicks);
        if (MaxInflightMessages <= 0)
        {
            throw new ArgumentException($"RaftConfig.MaxInflightMessages must be >= 1 (got {MaxInflightMessages}).");
        }

        if (Storage is null)
        {
            throw new ArgumentException("RaftConfig.Storage is required.");
        }
    }

    internal static void ValidateTiming(int heartbeatTicks, int electionTicks)
    {
        if (heartbeatTicks <= 0)
        {
            throw new ArgumentException($"Heartbeat ticks must be >= 1 (got {heartbeatTicks}).");
        }

        if (electionTicks <= heartbeatTicks)
        {
            throw new ArgumentException(
                $"Election ticks ({electionTicks}) must be greater than heartbeat ticks ({heartbeatTicks}); etcd recommends at least 5x, typically 10x.");
        }
    }
}
