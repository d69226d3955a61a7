namespace RaftKv.Raft;

/// <summary>
/// What storage knows at start: the last persisted hard state, and the membership as of <see cref="RaftConfig.Applied"/>
/// (the last snapshot's ConfState when Applied is the snapshot index or 0; otherwise the ConfState the host saved from
/// <see cref="RaftNode.ApplyConfChange"/> along with its applied index).
/// </summary>
public readonly record struct RaftInitialState(HardState HardState, ConfState ConfState);

/// <summary>
/// The durable Raft log as the consensus core reads it. The core never writes through this interface:
/// writes arrive as <see cref="Ready"/> (Entries, HardState, Snapshot) and the host persists them
/// (the WAL in RaftKv.Storage, or <see cref="MemoryRaftLogStorage"/>).
/// <para>
/// Model: the log holds entries [FirstIndex(), LastIndex()]; everything before FirstIndex() was compacted
/// into a snapshot whose index is FirstIndex() - 1 and whose term is still answerable by
/// <see cref="Term"/>(FirstIndex() - 1). An empty new log has FirstIndex() = 1, LastIndex() = 0.
/// </para>
/// <para>
/// Errors are exceptions, thrown only on the documented edge cases: <see cref="RaftLogCompactedException"/>
/// (asked below the first index: send a snapshot instead), <see cref="RaftLogUnavailableException"/>
/// (asked above the last index), <see cref="SnapshotTemporarilyUnavailableException"/> (snapshot being built; the
/// core retries later). Any other exception is a storage failure; the core lets it propagate and the host must stop the node.
/// </para>
/// Calls come from the thread that drives the <see cref="RaftNode"/>, while the host may be appending on another
/// thread; implementations must be safe for that.
/// </summary>
public interface IRaftLogStorage
{
    /// <summary>The persisted hard state and membership.</summary>
    RaftInitialState InitialState();

    /// <summary>
    /// Entries with indexes in the half-open range [<paramref name="lo"/>, <paramref name="hi"/>), stopping
    /// before the total <see cref="Entry.Size"/> exceeds <paramref name="maxBytes"/>, but always at least one entry
    /// when the range is not empty. Requires FirstIndex() &lt;= lo &lt;= hi &lt;= LastIndex() + 1.
    /// </summary>
    /// <exception cref="RaftLogCompactedException">lo &lt; FirstIndex().</exception>
    /// <exception cref="RaftLogUnavailableException">hi &gt; LastIndex() + 1.</exception>
    IReadOnlyList<Entry> Entries(ulong lo, ulong hi, ulong maxBytes);

    /// <summary>Term of the entry at <paramref name="index"/>, for FirstIndex() - 1 &lt;= index &lt;= LastIndex().</summary>
    /// <exception cref="RaftLogCompactedException">index &lt; FirstIndex() - 1.</exception>
    /// <exception cref="RaftLogUnavailableException">index &gt; LastIndex().</exception>
    ulong Term(ulong index);

    /// <summary>Index of the first entry still in the log (snapshot index + 1).</summary>
    ulong FirstIndex();

    /// <summary>Index of the last entry in the log (the snapshot index when the log after it is empty).</summary>
    ulong LastIndex();

    /// <summary>The most recent snapshot (to send to a follower behind FirstIndex()).</summary>
    /// <exception cref="SnapshotTemporarilyUnavailableException">Not ready yet; the core retries on a later heartbeat.</exception>
    Snapshot Snapshot();
}

/// <summary>The requested index was compacted away (it is below the storage's first index).</summary>
public sealed class RaftLogCompactedException : Exception
{
    public RaftLogCompactedException()
        : base("The requested index is unavailable due to compaction.")
    {
    }

    public RaftLogCompactedException(string message)
        : base(message)
    {
    }

    public RaftLogCompactedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The requested index is beyond the last index in storage.</summary>
public sealed class RaftLogUnavailableException : Exception
{
    public RaftLogUnavailableException()
        : base("The requested entry at index is unavailable.")
    {
    }

    public RaftLogUnavailableException(string message)
        : base(message)
    {
    }

    public RaftLogUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The snapshot is being prepared; ask again later.</summary>
public sealed class SnapshotTemporarilyUnavailableException : Exception
{
    public SnapshotTemporarilyUnavailableException()
        : base("Snapshot is temporarily unavailable.")
    {
    }

    public SnapshotTemporarilyUnavailableException(string message)
        : base(message)
    {
    }

    public SnapshotTemporarilyUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
