namespace RaftKv.Raft;

/// <summary>
/// An <see cref="IRaftLogStorage"/> kept in memory, after etcd-io/raft's <c>MemoryStorage</c>: for tests, the
/// simulator (which models a disk on top of it) and the benchmark. All members are thread-safe.
/// <para>
/// Invariant: <c>_entries[0]</c> is a dummy entry whose index and term are those of the last snapshot (0/0 for a
/// new log); real entries follow with consecutive indexes. So FirstIndex() = _entries[0].Index + 1 and
/// LastIndex() = _entries[^1].Index.
/// </para>
/// </summary>
public sealed class MemoryRaftLogStorage : IRaftLogStorage
{
    private readonly Lock _lock = new();
    private readonly List<Entry> _entries = [new Entry(0, 0, EntryType.Normal, ReadOnlyMemory<byte>.Empty)];
    private HardState _hardState;
    private Snapshot _snapshot = Raft.Snapshot.Empty;

    /// <summary>An empty log (first index 1, last index 0), empty hard state and membership.</summary>
    public MemoryRaftLogStorage()
    {
    }

    public RaftInitialState InitialState()
    {
        lock (_lock)
        {
            return new RaftInitialState(_hardState, _snapshot.Metadata.ConfState);
        }
    }

    /// <summary>The hard state last saved with <see cref="SetHardState"/>.</summary>
    public HardState HardState
    {
        get
        {
            lock (_lock)
            {
                return _hardState;
            }
        }
    }

    /// <summary>Saves the hard state from a <see cref="Ready"/>.</summary>
    public void SetHardState(HardState hardState)
    {
        lock (_lock)
        {
            _hardState = hardState;
        }
    }

    public IReadOnlyList<Entry> Entries(ulong lo, ulong hi, ulong maxBytes)
    {
        lock (_lock)
        {
            var offset = _entries[0].Index;
            if (lo <= offset)
            {
                throw new RaftLogCompactedException($"Entries from index {lo} were compacted; the first index is {offset + 1}.");
            }

            if (hi > LastIndexLocked() + 1)
            {
                throw new RaftLogUnavailableException($"Entries up to index {hi - 1} requested, but the last index is {LastIndexLocked()}.");
            }

            if (lo > hi)
            {
                throw new ArgumentOutOfRangeException(nameof(lo), $"Invalid range [{lo}, {hi}).");
            }

            if (lo == hi)
            {
                return [];
            }

            var start = (int)(lo - offset);
            var count = (int)(hi - lo);
            var result = new List<Entry>(Math.Min(count, 1024));
            var total = 0L;
            for (var i = 0; i < count; i++)
            {
                var e = _entries[start + i];
                total += e.Size;
                // Always at least one entry; afterwards stop before exceeding the byte limit.
                if (i > 0 && (ulong)total > maxBytes)
                {
                    break;
                }

                result.Add(e);
            }

            return result;
        }
    }

    public ulong Term(ulong index)
    {
        lock (_lock)
        {
            var offset = _entries[0].Index;
            if (index < offset)
            {
                throw new RaftLogCompactedException($"The term of index {index} was compacted; the snapshot index is {offset}.");
            }

            if (index - offset >= (ulong)_entries.Count)
            {
                throw new RaftLogUnavailableException($"Index {index} is beyond the last index {LastIndexLocked()}.");
            }

            return _entries[(int)(index - offset)].Term;
        }
    }

    public ulong FirstIndex()
    {
        lock (_lock)
        {
            return _entries[0].Index + 1;
        }
    }

    public ulong LastIndex()
    {
        lock (_lock)
        {
            return LastIndexLocked();
        }
    }

    public Snapshot Snapshot()
    {
        lock (_lock)
        {
            return _snapshot;
        }
    }

    /// <summary>
    /// Replaces the whole log by a snapshot received from the leader (Ready.Snapshot). Entries after it are dropped:
    /// the core sends the entries that follow in later Readies.
    /// </summary>
    /// <exception cref="ArgumentException">The snapshot is not newer than the current one.</exception>
    public void ApplySnapshot(Snapshot snapshot)
    {
        lock (_lock)
        {
            if (snapshot.Metadata.Index <= _snapshot.Metadata.Index)
            {
                throw new ArgumentException(
                    $"Snapshot at index {snapshot.Metadata.Index} is out of date; storage already has a snapshot at {_snapshot.Metadata.Index}.",
                    nameof(snapshot));
            }

            _snapshot = snapshot;
            _entries.Clear();
            _entries.Add(new Entry(snapshot.Metadata.Index, snapshot.Metadata.Term, EntryType.Normal, ReadOnlyMemory<byte>.Empty));
        }
    }

    /// <summary>
    /// Records a snapshot of the state machine as of applied index <paramref name="index"/> (does not compact; call
    /// <see cref="Compact"/> afterwards to drop the entries it covers).
    /// </summary>
    /// <param name="index">Applied index the data reflects; FirstIndex()-1 &lt; index &lt;= LastIndex().</param>
    /// <param name="confState">Membership as of <paramref name="index"/> (null keeps the previous snapshot's).</param>
    /// <param name="data">The state machine image.</param>
    public Snapshot CreateSnapshot(ulong index, ConfState? confState, ReadOnlyMemory<byte> data)
    {
        lock (_lock)
        {
            if (index <= _snapshot.Metadata.Index)
            {
                throw new ArgumentException(
                    $"Snapshot at index {index} is out of date; storage already has a snapshot at {_snapshot.Metadata.Index}.", nameof(index));
            }

            var offset = _entries[0].Index;
            if (index > LastIndexLocked())
            {
                throw new ArgumentOutOfRangeException(nameof(index), $"Snapshot index {index} is beyond the last index {LastIndexLocked()}.");
            }

            var term = _entries[(int)(index - offset)].Term;
            _snapshot = new Snapshot(new SnapshotMetadata(index, term, confState ?? _snapshot.Metadata.ConfState), data);
            return _snapshot;
        }
    }

    /// <summary>
    /// Discards the entries before <paramref name="compactIndex"/>; the entry at compactIndex becomes the dummy,
    /// so FirstIndex() becomes compactIndex + 1. The host must only compact what it has applied (and snapshotted).
    /// </summary>
    /// <exception cref="RaftLogCompactedException">Already compacted to or beyond that index.</exception>
    /// <exception cref="ArgumentOutOfRangeException">compactIndex is beyond the last index.</exception>
    public void Compact(ulong compactIndex)
    {
        lock (_lock)
        {
            var offset = _entries[0].Index;
            if (compactIndex <= offset)
            {
                throw new RaftLogCompactedException($"Already compacted to index {offset}; cannot compact to {compactIndex}.");
            }

            if (compactIndex > LastIndexLocked())
            {
                throw new ArgumentOutOfRangeException(nameof(compactIndex), $"Compact index {compactIndex} is beyond the last index {LastIndexLocked()}.");
            }

            var i = (int)(compactIndex - offset);
            var dummy = new Entry(_entries[i].Index, _entries[i].Term, EntryType.Normal, ReadOnlyMemory<byte>.Empty);
            _entries.RemoveRange(0, i);
            _entries[0] = dummy;
        }
    }

    /// <summary>
    /// Appends entries from a <see cref="Ready"/>. Entries at or below the snapshot index are ignored; an entry whose
    /// index is already present replaces it and everything after it (a conflicting suffix from an old leader).
    /// </summary>
    /// <exception cref="ArgumentException">The entries would leave a gap after the last index, or are not consecutive.</exception>
    public void Append(IReadOnlyList<Entry> entries)
    {
        if (entries.Count == 0)
        {
            return;
        }

        for (var i = 1; i < entries.Count; i++)
        {
            if (entries[i].Index != entries[i - 1].Index + 1)
            {
                throw new ArgumentException($"Entries are not consecutive: index {entries[i - 1].Index} is followed by {entries[i].Index}.", nameof(entries));
            }
        }

        lock (_lock)
        {
            var first = _entries[0].Index + 1;
            var last = entries[^1].Index;
            if (last < first)
            {
                return; // everything is already compacted
            }

            var skip = entries[0].Index < first ? (int)(first - entries[0].Index) : 0;
            var start = entries[skip].Index;
            if (start > LastIndexLocked() + 1)
            {
                throw new ArgumentException($"Appending at index {start} would leave a gap after the last index {LastIndexLocked()}.", nameof(entries));
            }

            // Truncate the suffix the new entries replace, then append.
            var keep = (int)(start - _entries[0].Index);
            if (keep < _entries.Count)
            {
                _entries.RemoveRange(keep, _entries.Count - keep);
            }

            for (var i = skip; i < entries.Count; i++)
            {
                _entries.Add(entries[i]);
            }
        }
    }

    private ulong LastIndexLocked() => _entries[0].Index + (ulong)_entries.Count - 1;
}
