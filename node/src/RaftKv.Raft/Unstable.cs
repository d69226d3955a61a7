namespace RaftKv.Raft;

/// <summary>
/// The tail of the log not yet persisted by the host, plus a snapshot received but not yet persisted.
/// Invariants: entries hold consecutive indexes starting at <see cref="Offset"/>; when a snapshot is pending,
/// Offset = snapshot index + 1. Everything here is handed out as Ready.Snapshot / Ready.Entries and dropped when the
/// host confirms it durable (StableTo / StableSnapTo).
/// </summary>
internal sealed class Unstable
{
    private readonly List<Entry> _entries = [];

    public Unstable(ulong offset) => Offset = offset;

    public Snapshot? Snapshot { get; private set; }

    /// <summary>Index of the first entry in <see cref="Entries"/> (or where it would go).</summary>
    public ulong Offset { get; private set; }

    public IReadOnlyList<Entry> Entries => _entries;

    public int Count => _entries.Count;

    public ulong? MaybeFirstIndex() => Snapshot is { } s ? s.Metadata.Index + 1 : null;

    public ulong? MaybeLastIndex()
    {
        if (_entries.Count > 0)
        {
            return Offset + (ulong)_entries.Count - 1;
        }

        return Snapshot is { } s ? s.Metadata.Index : null;
    }

    /// <summary>Term at index i if this part of the log knows it.</summary>
    public bool TryTerm(ulong i, out ulong term)
    {
        term = 0;
        if (i < Offset)
        {
            if (Snapshot is { } s && s.Metadata.Index == i)
            {
                term = s.Metadata.Term;
                return true;
            }

            return false;
        }

        if (i - Offset >= (ulong)_entries.Count)
        {
            return false;
        }

        term = _entries[(int)(i - Offset)].Term;
        return true;
    }

    /// <summary>Entries up to (index i, term t) are durable: drop them, unless the log changed under them meanwhile.</summary>
    public void StableTo(ulong i, ulong t)
    {
        if (!TryTerm(i, out var gt) || gt != t || i < Offset)
        {
            return; // truncated/replaced since that Ready (or covered by a snapshot): the newer entries are still to persist
        }

        var n = (int)(i + 1 - Offset);
        if (n == _entries.Count)
        {
            _entries.Clear();
        }
        else
        {
            _entries.RemoveRange(0, n);
        }

        Offset = i + 1;
    }

    public void StableSnapTo(ulong i)
    {
        if (Snapshot is { } s && s.Metadata.Index == i)
        {
            Snapshot = null;
        }
    }

    public void Restore(Snapshot s)
    {
        Offset = s.Metadata.Index + 1;
        _entries.Clear();
        Snapshot = s;
    }

    /// <summary>Appends entries, replacing any existing ones at the same or higher indexes.</summary>
    public void TruncateAndAppend(IReadOnlyList<Entry> ents, int start = 0)
    {
        var fromIndex = ents[start].Index;
        if (fromIndex == Offset + (ulong)_entries.Count)
        {
            // Common case: directly after the last entry.
        }
        else if (fromIndex <= Offset)
        {
            // Replace everything unstable; the host's Append overwrites storage from fromIndex.
            Offset = fromIndex;
            _entries.Clear();
        }
        else
        {
            var keep = (int)(fromIndex - Offset);
            _entries.RemoveRange(keep, _entries.Count - keep);
        }

        for (var i = start; i < ents.Count; i++)
        {
            _entries.Add(ents[i]);
        }
    }

    /// <summary>Copies entries [lo, hi) into <paramref name="into"/>, stopping at the byte budget (at least one entry if into is empty).</summary>
    public void Slice(ulong lo, ulong hi, List<Entry> into, ref long budget)
    {
        for (var i = lo; i < hi; i++)
        {
            var e = _entries[(int)(i - Offset)];
            if (into.Count > 0 && budget - e.Size < 0)
            {
                budget = -1;
                return;
            }

            budget -= e.Size;
            into.Add(e);
        }
    }
}
