namespace RaftKv.Storage.Mvcc;

/// <summary>
/// The revisions of one key, in generations (etcd's keyIndex). A generation runs from the put that created the key to the
/// tombstone that deleted it; the last generation is the live one (empty when the key is currently deleted).
/// Invariant: revisions strictly increase across all generations; every generation but the last ends with a tombstone.
/// </summary>
internal sealed class KeyIndex(byte[] key)
{
    public byte[] Key { get; } = key;

    public Revision Modified { get; private set; }

    /// <summary>
    /// The KeyValue written at <see cref="Modified"/> when that was a put, kept so current reads skip the database; null when not
    /// cached. Readers check its ModRevision against the revision they resolved before using it.
    /// </summary>
    public KeyValue? Latest { get; set; }

    public List<Generation> Generations { get; } = [new Generation()];

    internal sealed class Generation
    {
        /// <summary>Number of puts in this generation so far (the key's version at its last revision).</summary>
        public long Version { get; set; }

        public Revision Created { get; set; }

        public List<Revision> Revisions { get; set; } = [];

        public bool IsEmpty => Revisions.Count == 0;

        /// <summary>Walks newest to oldest; returns the position where <paramref name="keepGoing"/> first said no, or -1.</summary>
        public int Walk(Func<Revision, bool> keepGoing)
        {
            for (var i = Revisions.Count - 1; i >= 0; i--)
            {
                if (!keepGoing(Revisions[i]))
                {
                    return i;
                }
            }

            return -1;
        }
    }

    public bool IsEmpty => Generations.Count == 1 && Generations[0].IsEmpty;

    public void Put(Revision rev)
    {
        var g = Generations[^1];
        if (g.IsEmpty)
        {
            g.Created = rev;
        }

        g.Revisions.Add(rev);
        g.Version++;
        Modified = rev;
    }

    /// <summary>Restores a key first met after compaction: one generation created at <paramref name="created"/> with <paramref name="version"/>.</summary>
    public void Restore(Revision created, Revision modified, long version)
    {
        Generations.Clear();
        Generations.Add(new Generation { Created = created, Version = version, Revisions = [modified] });
        Modified = modified;
    }

    public void Tombstone(Revision rev)
    {
        if (Generations[^1].IsEmpty)
        {
            throw new InvalidOperationException("Tombstone of a key that is not live.");
        }

        Put(rev);
        Generations.Add(new Generation());
    }

    /// <summary>Undoes the latest <see cref="Put"/> or <see cref="Tombstone"/> (an aborted write).</summary>
    public void RemoveLast()
    {
        if (Generations.Count > 1 && Generations[^1].IsEmpty)
        {
            Generations.RemoveAt(Generations.Count - 1); // the tombstone closed this one
        }

        var g = Generations[^1];
        g.Revisions.RemoveAt(g.Revisions.Count - 1);
        g.Version--;
        if (g.IsEmpty)
        {
            g.Created = default;
            g.Version = 0;
        }

        var last = Generations.LastOrDefault(x => !x.IsEmpty);
        Modified = last is null ? default : last.Revisions[^1];
    }

    /// <summary>The revision live at <paramref name="atRev"/>, its creation and its version; false when the key did not exist then.</summary>
    public bool TryGet(long atRev, out Revision modified, out Revision created, out long version)
    {
        modified = default;
        created = default;
        version = 0;
        var g = FindGeneration(atRev);
        if (g is null)
        {
            return false;
        }

        var n = g.Revisions.Count - 1;
        while (n >= 0 && g.Revisions[n].Main > atRev)
        {
            n--;
        }

        if (n < 0)
        {
            return false;
        }

        modified = g.Revisions[n];
        created = g.Created;
        version = g.Version - (g.Revisions.Count - n - 1);
        return true;
    }

    /// <summary>The generation that holds the key's state at <paramref name="rev"/>, or null if it was deleted or not yet created.</summary>
    private Generation? FindGeneration(long rev)
    {
        var last = Generations.Count - 1;
        for (var i = last; i >= 0; i--)
        {
            var g = Generations[i];
            if (g.IsEmpty)
            {
                continue;
            }

            if (i != last && g.Revisions[^1].Main <= rev)
            {
                return null; // its tombstone is at or before rev
            }

            if (g.Revisions[0].Main <= rev)
            {
                return g;
            }
        }

        return null;
    }

    /// <summary>
    /// Drops revisions older than the newest one at or below <paramref name="atRev"/>, and whole generations that ended before it.
    /// Adds the kept revision(s) at or below <paramref name="atRev"/> to <paramref name="available"/>. A lone tombstone is dropped too.
    /// </summary>
    public void Compact(long atRev, HashSet<Revision> available)
    {
        var (genIdx, revIndex) = DoCompact(atRev, available);
        var g = Generations[genIdx];
        if (!g.IsEmpty)
        {
            if (revIndex != -1)
            {
                g.Revisions = g.Revisions[revIndex..];
            }

            if (g.Revisions.Count == 1 && genIdx != Generations.Count - 1)
            {
                available.Remove(g.Revisions[0]);
                genIdx++;
            }
        }

        Generations.RemoveRange(0, genIdx);
    }

    /// <summary>What <see cref="Compact"/> would keep, without changing anything (used by HashKV).</summary>
    public void Keep(long atRev, HashSet<Revision> available)
    {
        if (IsEmpty)
        {
            return;
        }

        var (genIdx, revIndex) = DoCompact(atRev, available);
        var g = Generations[genIdx];
        if (!g.IsEmpty && revIndex == g.Revisions.Count - 1 && genIdx != Generations.Count - 1)
        {
            available.Remove(g.Revisions[revIndex]);
        }
    }

    private (int GenIdx, int RevIndex) DoCompact(long atRev, HashSet<Revision> available)
    {
        var genIdx = 0;
        var g = Generations[0];
        while (genIdx < Generations.Count - 1)
        {
            if (g.Revisions[^1].Main >= atRev)
            {
                break;
            }

            genIdx++;
            g = Generations[genIdx];
        }

        var revIndex = g.Walk(r =>
        {
            if (r.Main <= atRev)
            {
                available.Add(r);
                return false;
            }

            return true;
        });
        return (genIdx, revIndex);
    }
}

/// <summary>Orders keys as etcd does: unsigned bytewise.</summary>
internal sealed class ByteKeyComparer : IComparer<byte[]>, IEqualityComparer<byte[]>
{
    public static ByteKeyComparer Instance { get; } = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        var h = new HashCode();
        h.AddBytes(obj);
        return h.ToHashCode();
    }
}

/// <summary>
/// All keys' <see cref="KeyIndex"/>es, ordered by key (etcd's treeIndex) with a hash map beside it for point lookups.
/// Not thread-safe; <see cref="MvccStore"/> guards it.
/// </summary>
internal sealed class TreeIndex
{
    private readonly SortedSet<KeyIndex> _tree = new(Comparer<KeyIndex>.Create((a, b) => ByteKeyComparer.Instance.Compare(a.Key, b.Key)));
    private readonly Dictionary<byte[], KeyIndex> _byKey = new(ByteKeyComparer.Instance);

    public int Count => _byKey.Count;

    public KeyIndex? Find(byte[] key) => _byKey.GetValueOrDefault(key);

    public KeyIndex GetOrAdd(byte[] key)
    {
        if (!_byKey.TryGetValue(key, out var ki))
        {
            ki = new KeyIndex(key);
            _byKey.Add(key, ki);
            _tree.Add(ki);
        }

        return ki;
    }

    public void Remove(KeyIndex ki)
    {
        _byKey.Remove(ki.Key);
        _tree.Remove(ki);
    }

    /// <summary>
    /// Key indexes in [key, end): <paramref name="end"/> null = just <paramref name="key"/>; empty = every key from <paramref name="key"/> on.
    /// </summary>
    public IEnumerable<KeyIndex> Visit(byte[] key, byte[]? end)
    {
        if (end is null)
        {
            if (_byKey.TryGetValue(key, out var one))
            {
                yield return one;
            }

            yield break;
        }

        if (end.Length > 0 && ByteKeyComparer.Instance.Compare(end, key) <= 0)
        {
            yield break;
        }

        if (_tree.Count == 0)
        {
            yield break;
        }

        var max = _tree.Max!;
        if (ByteKeyComparer.Instance.Compare(key, max.Key) > 0)
        {
            yield break;
        }

        foreach (var ki in _tree.GetViewBetween(new KeyIndex(key), max))
        {
            if (end.Length > 0 && ByteKeyComparer.Instance.Compare(ki.Key, end) >= 0)
            {
                yield break;
            }

            yield return ki;
        }
    }

    public IEnumerable<KeyIndex> All() => _tree;
}
