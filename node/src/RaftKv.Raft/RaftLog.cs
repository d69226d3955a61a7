namespace RaftKv.Raft;

/// <summary>
/// The node's view of the log: durable entries in <see cref="IRaftLogStorage"/> followed by <see cref="Unstable"/> ones.
/// Invariants: Applied &lt;= Committed &lt;= LastIndex(); FirstIndex() - 1 &lt;= Applied (what was compacted was applied);
/// Committed never decreases.
/// </summary>
internal sealed class RaftLog
{
    private readonly IRaftLogStorage _storage;

    public RaftLog(IRaftLogStorage storage, ulong maxCommittedSizePerReady)
    {
        _storage = storage;
        MaxCommittedSizePerReady = maxCommittedSizePerReady;
        var first = storage.FirstIndex();
        var last = storage.LastIndex();
        Unstable = new Unstable(last + 1);
        Committed = first - 1;
        Applied = first - 1;
    }

    public Unstable Unstable { get; }

    public ulong Committed { get; set; }

    public ulong Applied { get; private set; }

    public ulong MaxCommittedSizePerReady { get; }

    public IRaftLogStorage Storage => _storage;

    public ulong FirstIndex() => Unstable.MaybeFirstIndex() ?? _storage.FirstIndex();

    public ulong LastIndex() => Unstable.MaybeLastIndex() ?? _storage.LastIndex();

    /// <summary>Last index known to be durable locally (0 while a received snapshot is not yet persisted).</summary>
    public ulong PersistedLastIndex() => Unstable.Snapshot is null ? Unstable.Offset - 1 : 0;

    public ulong LastTerm() => Term(LastIndex());

    /// <summary>Term of entry i, or 0 when i is outside [FirstIndex()-1, LastIndex()] (compacted or not there).</summary>
    public ulong Term(ulong i) => TryTerm(i, out var t) ? t : 0;

    /// <summary>Term of entry i; false when it was compacted or does not exist.</summary>
    public bool TryTerm(ulong i, out ulong term)
    {
        if (Unstable.TryTerm(i, out term))
        {
            return true;
        }

        term = 0;
        var dummy = FirstIndex() - 1;
        if (i < dummy || i > LastIndex())
        {
            return false;
        }

        try
        {
            term = _storage.Term(i);
            return true;
        }
        catch (RaftLogCompactedException)
        {
            return false;
        }
        catch (RaftLogUnavailableException)
        {
            return false;
        }
    }

    public bool MatchTerm(ulong i, ulong term) => TryTerm(i, out var t) && t == term;

    /// <summary>§5.4.1: a log with a later last term, or the same last term and at least as long, is at least as up to date.</summary>
    public bool IsUpToDate(ulong lastIndex, ulong lastTerm)
    {
        var myTerm = LastTerm();
        return lastTerm > myTerm || (lastTerm == myTerm && lastIndex >= LastIndex());
    }

    /// <summary>
    /// Follower side of MsgApp: if our entry at <paramref name="index"/> has <paramref name="logTerm"/>, append the entries
    /// (truncating a conflicting suffix) and commit up to min(commit, last new index). Returns the last new index, or null on mismatch.
    /// </summary>
    public ulong? MaybeAppend(ulong index, ulong logTerm, ulong commit, IReadOnlyList<Entry> ents)
    {
        if (!MatchTerm(index, logTerm))
        {
            return null;
        }

        var lastNew = index + (ulong)ents.Count;
        var conflict = FindConflict(ents);
        if (conflict != 0)
        {
            if (conflict <= Committed)
            {
                throw new InvalidOperationException(
                    $"Raft log invariant broken: entry {conflict} conflicts with a committed entry (committed {Committed}). Storage lost or corrupted data.");
            }

            Append(ents, (int)(conflict - (index + 1)));
        }

        CommitTo(Math.Min(commit, lastNew));
        return lastNew;
    }

    /// <summary>Appends entries (from <paramref name="start"/>) after possibly truncating; returns the new last index.</summary>
    public ulong Append(IReadOnlyList<Entry> ents, int start = 0)
    {
        if (start >= ents.Count)
        {
            return LastIndex();
        }

        if (ents[start].Index - 1 < Committed)
        {
            throw new InvalidOperationException($"Appending after index {ents[start].Index - 1} would overwrite committed entries (committed {Committed}).");
        }

        Unstable.TruncateAndAppend(ents, start);
        return LastIndex();
    }

    /// <summary>
    /// Index of the first entry whose term differs from ours (or that we do not have), 0 if all match.
    /// </summary>
    public ulong FindConflict(IReadOnlyList<Entry> ents)
    {
        for (var i = 0; i < ents.Count; i++)
        {
            if (!MatchTerm(ents[i].Index, ents[i].Term))
            {
                return ents[i].Index;
            }
        }

        return 0;
    }

    /// <summary>
    /// The largest index &lt;= <paramref name="index"/> whose term is &lt;= <paramref name="term"/>, with that term: a
    /// fast-backtracking hint (etcd-io/raft's findConflictByTerm). Stops at the compaction point with term 0.
    /// </summary>
    public (ulong Index, ulong Term) FindConflictByTerm(ulong index, ulong term)
    {
        for (; index > 0; index--)
        {
            if (!TryTerm(index, out var t))
            {
                return (index, 0);
            }

            if (t <= term)
            {
                return (index, t);
            }
        }

        return (0, 0);
    }

    public void CommitTo(ulong toCommit)
    {
        if (toCommit <= Committed)
        {
            return;
        }

        if (toCommit > LastIndex())
        {
            throw new InvalidOperationException(
                $"Commit index {toCommit} is beyond the last index {LastIndex()}: the log was truncated or lost (was it persisted before acknowledging?).");
        }

        Committed = toCommit;
    }

    /// <summary>Commits <paramref name="maxIndex"/> if its entry is from <paramref name="term"/> (§5.4.2; the unsafe flag drops the term check).</summary>
    public bool MaybeCommit(ulong maxIndex, ulong term, bool unsafeIgnoreTerm)
    {
        if (maxIndex > Committed && (unsafeIgnoreTerm || Term(maxIndex) == term))
        {
            CommitTo(maxIndex);
            return true;
        }

        return false;
    }

    public void AppliedTo(ulong i)
    {
        if (i == 0 || i <= Applied)
        {
            return;
        }

        if (i > Committed)
        {
            throw new InvalidOperationException($"Applied index {i} is beyond the committed index {Committed}.");
        }

        Applied = i;
    }

    public void StableTo(ulong i, ulong t) => Unstable.StableTo(i, t);

    public void StableSnapTo(ulong i) => Unstable.StableSnapTo(i);

    public void Restore(Snapshot s)
    {
        Committed = s.Metadata.Index;
        Unstable.Restore(s);
    }

    /// <summary>The snapshot to hand out: a pending received one, else storage's.</summary>
    public Snapshot Snapshot() => Unstable.Snapshot ?? _storage.Snapshot();

    /// <summary>Committed entries not yet applied (none while a received snapshot is pending: it is applied first).</summary>
    public bool HasNextCommittedEntries() =>
        Unstable.Snapshot is null && Committed > Math.Max(Applied, FirstIndex() - 1);

    public IReadOnlyList<Entry> NextCommittedEntries()
    {
        if (!HasNextCommittedEntries())
        {
            return [];
        }

        var lo = Math.Max(Applied + 1, FirstIndex());
        return Slice(lo, Committed + 1, MaxCommittedSizePerReady);
    }

    /// <summary>Entries from i to the end, within maxBytes (at least one). Throws RaftLogCompactedException when i was compacted.</summary>
    public IReadOnlyList<Entry> EntriesFrom(ulong i, ulong maxBytes)
    {
        var last = LastIndex();
        return i > last ? [] : Slice(i, last + 1, maxBytes);
    }

    /// <summary>Entries [lo, hi) within maxBytes (at least one when lo &lt; hi). Throws RaftLogCompactedException below FirstIndex().</summary>
    public IReadOnlyList<Entry> Slice(ulong lo, ulong hi, ulong maxBytes)
    {
        if (lo >= hi)
        {
            return [];
        }

        if (lo < FirstIndex())
        {
            throw new RaftLogCompactedException($"Index {lo} is compacted; the first index is {FirstIndex()}.");
        }

        if (hi > LastIndex() + 1)
        {
            throw new InvalidOperationException($"Slice [{lo}, {hi}) is out of bounds; the last index is {LastIndex()}.");
        }

        var budget = maxBytes > long.MaxValue ? long.MaxValue : (long)maxBytes;
        var offset = Unstable.Offset;
        List<Entry> result;
        if (lo < offset)
        {
            var stored = _storage.Entries(lo, Math.Min(hi, offset), maxBytes);
            var got = (ulong)stored.Count;
            if (hi <= offset || got < Math.Min(hi, offset) - lo)
            {
                return stored; // limited by size, or nothing unstable requested
            }

            result = new List<Entry>(stored.Count + (int)Math.Min(hi - offset, 1024));
            for (var i = 0; i < stored.Count; i++)
            {
                budget -= stored[i].Size;
                result.Add(stored[i]);
            }

            if (budget < 0)
            {
                return result;
            }
        }
        else
        {
            result = new List<Entry>((int)Math.Min(hi - lo, 1024));
        }

        Unstable.Slice(Math.Max(lo, offset), hi, result, ref budget);
        return result;
    }
}
