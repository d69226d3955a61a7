using RaftKv.Linearizability;
using RaftKv.Raft;

namespace RaftKv.Simulator;

/// <summary>
/// One simulated member: a Raft core, its "disk" (a <see cref="MemoryRaftLogStorage"/> holding only what was
/// synced), the key-value state machine in memory, and the client requests it is serving. A crash drops every
/// field but <see cref="Disk"/>.
/// </summary>
internal sealed class SimNode(ulong id)
{
    public ulong Id { get; } = id;

    /// <summary>Synced state: survives crashes. Written only when a Ready's write completes.</summary>
    public MemoryRaftLogStorage Disk { get; } = new();

    /// <summary>The running core; null while crashed, before start, or after removal.</summary>
    public RaftNode? Raft { get; set; }

    /// <summary>Bumped at every crash so events scheduled for the previous life are ignored.</summary>
    public int Incarnation { get; set; }

    /// <summary>Removed from the cluster and shut down for good.</summary>
    public bool Removed { get; set; }

    /// <summary>A Ready whose write is in progress (disk latency); no further Ready until it completes.</summary>
    public Ready? InFlight { get; set; }

    public KvStateMachine Kv { get; set; } = new();

    public ulong Applied { get; set; }

    /// <summary>Membership as applied by this node's state machine.</summary>
    public ConfState Conf { get; set; } = ConfState.Empty;

    /// <summary>Typical fsync latency of this node's disk (µs).</summary>
    public long DiskLatency { get; set; }

    /// <summary>Until this virtual time, the disk is slow.</summary>
    public long SlowDiskUntil { get; set; }

    /// <summary>Until this virtual time the process is frozen: no ticks, no message handling, no disk completions.</summary>
    public long PausedUntil { get; set; }

    /// <summary>This node's tick length (µs); nodes' clocks differ slightly.</summary>
    public long TickInterval { get; set; }

    /// <summary>The term in which this node last passed the leader completeness check (checked once per term).</summary>
    public ulong LeaderCheckedTerm { get; set; }

    /// <summary>Writes proposed here, by request id, answered when this node applies them.</summary>
    public Dictionary<long, ClientOperation> Writes { get; } = [];

    /// <summary>Reads waiting for their ReadState, by request id (the ReadIndex context).</summary>
    public Dictionary<long, ClientOperation> ReadsAwaitingIndex { get; } = [];

    /// <summary>Reads with a read index, waiting until the state machine has applied it.</summary>
    public List<(ulong Index, ClientOperation Operation)> ReadsAwaitingApply { get; } = [];

    public bool Up => Raft is not null;

    /// <summary>Forgets everything volatile (a crash).</summary>
    public void DropVolatileState()
    {
        Raft = null;
        Incarnation++;
        InFlight = null;
        PausedUntil = 0;
        Kv = new KvStateMachine();
        Applied = 0;
        Conf = ConfState.Empty;
        Writes.Clear();
        ReadsAwaitingIndex.Clear();
        ReadsAwaitingApply.Clear();
        LeaderCheckedTerm = 0;
    }

    public override string ToString() => $"n{Id}";
}

/// <summary>A client request and what became of it.</summary>
internal sealed class ClientOperation(int client, long requestId, KvInput input, long callTime, ulong node)
{
    public int Client { get; } = client;
    public long RequestId { get; } = requestId;
    public KvInput Input { get; } = input;
    public long CallTime { get; } = callTime;
    public ulong Node { get; } = node;
    public KvOutput? Output { get; set; }
    public long? ReturnTime { get; set; }

    /// <summary>Refused before anything was appended (no leader, ...): took no effect, left out of the history.</summary>
    public bool Refused { get; set; }

    /// <summary>The client gave up waiting: the outcome is unknown.</summary>
    public bool TimedOut { get; set; }

    public bool Done => ReturnTime is not null || Refused || TimedOut;

    public override string ToString() => $"c{Client}#{RequestId} {Input}";
}
