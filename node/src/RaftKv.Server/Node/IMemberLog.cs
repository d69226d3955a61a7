using RaftKv.Raft;

namespace RaftKv.Server.Node;

/// <summary>The Raft log of a member as the host writes it: the core reads <see cref="Storage"/>, the host persists Ready contents.</summary>
internal interface IMemberLog : IDisposable
{
    IRaftLogStorage Storage { get; }

    /// <summary>True when <see cref="SaveAsync"/> completes only after the data is on stable storage (fsync).</summary>
    bool IsDurable { get; }

    /// <summary>Persists a Ready's entries and hard state with at most one sync, then makes the entries visible to the core.</summary>
    Task SaveAsync(IReadOnlyList<Entry> entries, HardState? hardState, CancellationToken cancellationToken);

    /// <summary>Installs a snapshot received from the leader.</summary>
    Task ApplySnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken);

    /// <summary>
    /// Records a snapshot of the applied state at <paramref name="index"/>, compacts the log to <paramref name="catchUpEntries"/>
    /// before it and releases the WAL segments the snapshot covers.
    /// </summary>
    Task CreateSnapshotAsync(ulong index, ConfState confState, ReadOnlyMemory<byte> data, ulong catchUpEntries, CancellationToken cancellationToken);
}
