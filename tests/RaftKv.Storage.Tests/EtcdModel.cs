using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

/// <summary>
/// A plain in-memory statement of etcd's KV semantics to check <see cref="MvccStore"/> against: every key keeps its whole history
/// as a list of (revision, value or deletion); compaction only moves the line below which reads are refused (what it drops is
/// never observable through the API).
/// </summary>
internal sealed class EtcdModel
{
    private readonly SortedDictionary<string, List<(long Rev, KeyValue? Kv)>> _history = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, long> _leases = [];

    public long Revision { get; private set; } = 1;

    public long CompactRevision { get; private set; } = -1;

    public int MaxTxnOps { get; init; } = 128;

    private static string K(byte[] b) => System.Text.Encoding.Latin1.GetString(b);

    private static byte[] B(string s) => System.Text.Encoding.Latin1.GetBytes(s);

    private KeyValue? At(string key, long rev)
    {
        if (!_history.TryGetValue(key, out var h))
        {
            return null;
        }

        KeyValue? found = null;
        foreach (var (r, kv) in h)
        {
            if (r <= rev)
            {
                found = kv;
            }
        }

        return found;
    }

    private IEnumerable<string> KeysIn(byte[] key, byte[] rangeEnd)
    {
        var k = K(key);
        if (rangeEnd.Length == 0)
        {
            return _history.ContainsKey(k) ? [k] : [];
        }

        var all = rangeEnd is [0];
        var e = K(rangeEnd);
        return _history.Keys.Where(x => string.CompareOrdinal(x, k) >= 0 && (all || string.CompareOrdinal(x, e) < 0));
    }

    private List<KeyValue> Live(byte[] key, byte[] rangeEnd, long rev) =>
        [.. KeysIn(key, rangeEnd).Select(k => At(k, rev)).OfType<KeyValue>()];

    /// <summary>State of one write request while it runs.</summary>
    private sealed class Write(long begin)
    {
        public long Begin { get; } = begin;

        public int Changes { get; set; }

        public long ReadRev => Changes > 0 ? Begin + 1 : Begin;
    }

    public object Apply(object request)
    {
        try
        {
            return request switch
            {
                RangeRequest r => RangeAt(r, Revision, null),
                PutRequest p => Single(w => PutOp(w, p), p),
                DeleteRangeRequest d => Single(w => DeleteOp(w, d), d),
                TxnRequest t => TxnTop(t),
                CompactionRequest c => CompactOp(c),
                LeaseGrantRequest g => GrantOp(g),
                LeaseRevokeRequest r => RevokeOp(r),
                _ => throw new ArgumentException("unknown request"),
            };
        }
        catch (StoreException ex)
        {
            return ex.Code;
        }
    }

    private object Single(Func<Write, object> body, object request)
    {
        if (request is PutRequest p)
        {
            CheckPut(p);
            CheckLease(p.Lease);
        }

        if (request is DeleteRangeRequest { Key.Length: 0 })
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        var w = new Write(Revision);
        var result = body(w);
        if (w.Changes > 0)
        {
            Revision++;
        }

        return result;
    }

    private static void CheckPut(PutRequest p)
    {
        if (p.Key.Length == 0)
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        if (p.IgnoreValue && p.Value.Length > 0)
        {
            throw new StoreException(StoreErrorCode.ValueProvided);
        }

        if (p.IgnoreLease && p.Lease != 0)
        {
            throw new StoreException(StoreErrorCode.LeaseProvided);
        }
    }

    private void CheckLease(long lease)
    {
        if (lease != 0 && !_leases.ContainsKey(lease))
        {
            throw new StoreException(StoreErrorCode.LeaseNotFound);
        }
    }

    private LeaseGrantResponse GrantOp(LeaseGrantRequest g)
    {
        if (g.Id == 0)
        {
            throw new StoreException(StoreErrorCode.LeaseNotFound);
        }

        if (g.Ttl > MvccStore.MaxLeaseTtl)
        {
            throw new StoreException(StoreErrorCode.LeaseTtlTooLarge);
        }

        if (!_leases.TryAdd(g.Id, g.Ttl))
        {
            throw new StoreException(StoreErrorCode.LeaseExists);
        }

        return new LeaseGrantResponse(Revision, g.Id, g.Ttl);
    }

    /// <summary>A revoke deletes every live key whose current record names the lease, all in one revision, in key order.</summary>
    private LeaseRevokeResponse RevokeOp(LeaseRevokeRequest r)
    {
        CheckLease(r.Id == 0 ? -1 : r.Id);
        var w = new Write(Revision);
        foreach (var kv in Live(B("\0"), [0], Revision).Where(kv => kv.Lease == r.Id))
        {
            Record(K(kv.Key), w.Begin + 1, null);
            w.Changes++;
        }

        _leases.Remove(r.Id);
        if (w.Changes > 0)
        {
            Revision++;
        }

        return new LeaseRevokeResponse(Revision);
    }

    /// <summary>Granted leases as "id:ttl[keys]", ordered by id, keys in key order.</summary>
    public List<string> Leases() =>
        [.. _leases.Select(l => $"{l.Key}:{l.Value}[{string.Join(",", Live(B("\0"), [0], Revision).Where(kv => kv.Lease == l.Key).Select(kv => K(kv.Key)))}]")];

    private RangeResponse RangeAt(RangeRequest r, long current, Write? _)
    {
        if (r.Key.Length == 0)
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        var rev = r.Revision <= 0 ? current : r.Revision;
        if (r.Revision > current)
        {
            throw new StoreException(StoreErrorCode.FutureRevision);
        }

        if (rev < CompactRevision)
        {
            throw new StoreException(StoreErrorCode.Compacted);
        }

        var kvs = Live(r.Key, r.RangeEnd, rev);
        var count = kvs.Count;
        if (r.CountOnly)
        {
            return new RangeResponse(current, [], false, count);
        }

        // etcd quirk: with no sort order and no revision filters, the limit (plus one, to know "more") is applied in key order
        // before sorting, so a target other than KEY sorts only that window.
        var unfiltered = r.SortOrder == SortOrder.None && r.MinModRevision == 0 && r.MaxModRevision == 0 && r.MinCreateRevision == 0 && r.MaxCreateRevision == 0;
        if (unfiltered && r.Limit > 0)
        {
            kvs = [.. kvs.Take((int)r.Limit + 1)];
        }

        kvs = [.. kvs.Where(kv =>
            (r.MaxModRevision == 0 || kv.ModRevision <= r.MaxModRevision) && (r.MinModRevision == 0 || kv.ModRevision >= r.MinModRevision)
            && (r.MaxCreateRevision == 0 || kv.CreateRevision <= r.MaxCreateRevision) && (r.MinCreateRevision == 0 || kv.CreateRevision >= r.MinCreateRevision))];

        // Sorted by the target (default ascending when a non-key target is named), ties in key order.
        Func<KeyValue, KeyValue, int> by = r.SortTarget switch
        {
            SortTarget.Version => (a, b) => a.Version.CompareTo(b.Version),
            SortTarget.Create => (a, b) => a.CreateRevision.CompareTo(b.CreateRevision),
            SortTarget.Mod => (a, b) => a.ModRevision.CompareTo(b.ModRevision),
            SortTarget.Value => (a, b) => a.Value.AsSpan().SequenceCompareTo(b.Value),
            _ => (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key),
        };
        var order = r.SortOrder == SortOrder.None && r.SortTarget != SortTarget.Key ? SortOrder.Ascend : r.SortOrder;
        if (order == SortOrder.Descend)
        {
            kvs = [.. kvs.Select((kv, i) => (kv, i)).OrderBy(x => x, Comparer<(KeyValue kv, int i)>.Create((x, y) => by(y.kv, x.kv) is var c && c != 0 ? c : x.i.CompareTo(y.i))).Select(x => x.kv)];
        }
        else if (order == SortOrder.Ascend)
        {
            kvs = [.. kvs.Select((kv, i) => (kv, i)).OrderBy(x => x, Comparer<(KeyValue kv, int i)>.Create((x, y) => by(x.kv, y.kv) is var c && c != 0 ? c : x.i.CompareTo(y.i))).Select(x => x.kv)];
        }

        var more = r.Limit > 0 && kvs.Count > r.Limit;
        if (more)
        {
            kvs = kvs.Take((int)r.Limit).ToList();
        }

        if (r.KeysOnly)
        {
            kvs = [.. kvs.Select(kv => kv with { Value = [] })];
        }

        return new RangeResponse(current, kvs, more, count);
    }

    private void Record(string key, long rev, KeyValue? kv)
    {
        if (!_history.TryGetValue(key, out var h))
        {
            _history[key] = h = [];
        }

        h.Add((rev, kv));
    }

    private PutResponse PutOp(Write w, PutRequest p)
    {
        var prev = At(K(p.Key), w.ReadRev);
        if ((p.IgnoreValue || p.IgnoreLease) && prev is null)
        {
            throw new StoreException(StoreErrorCode.KeyNotFound);
        }

        var rev = w.Begin + 1;
        var live = At(K(p.Key), rev);
        var kv = new KeyValue(p.Key, live?.CreateRevision ?? rev, rev, (live?.Version ?? 0) + 1,
            p.IgnoreValue ? prev!.Value : p.Value, p.IgnoreLease ? prev!.Lease : p.Lease);
        Record(K(p.Key), rev, kv);
        w.Changes++;
        return new PutResponse(rev, p.PrevKv ? prev : null);
    }

    private DeleteRangeResponse DeleteOp(Write w, DeleteRangeRequest d)
    {
        var live = Live(d.Key, d.RangeEnd, w.ReadRev);
        foreach (var kv in live)
        {
            Record(K(kv.Key), w.Begin + 1, null);
            w.Changes++;
        }

        return new DeleteRangeResponse(live.Count > 0 || w.Changes > 0 ? w.Begin + 1 : w.Begin, live.Count, d.PrevKv ? live : []);
    }

    private CompactionResponse CompactOp(CompactionRequest c)
    {
        if (c.Revision <= CompactRevision)
        {
            throw new StoreException(StoreErrorCode.Compacted);
        }

        if (c.Revision > Revision)
        {
            throw new StoreException(StoreErrorCode.FutureRevision);
        }

        CompactRevision = c.Revision;
        return new CompactionResponse(Revision);
    }

    // ---- txn

    private static bool Writes(TxnRequest t) =>
        t.Success.Concat(t.Failure).Any(op => op.Put is not null || op.DeleteRange is not null || (op.Txn is not null && Writes(op.Txn)));

    private void CheckShape(TxnRequest t)
    {
        if (t.Compare.Count > MaxTxnOps || t.Success.Count > MaxTxnOps || t.Failure.Count > MaxTxnOps)
        {
            throw new StoreException(StoreErrorCode.TooManyOps);
        }

        if (t.Compare.Any(c => c.Key.Length == 0))
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        foreach (var op in t.Success.Concat(t.Failure))
        {
            if (op.Put is { } p)
            {
                CheckPut(p);
            }

            if (op.Range is { Key.Length: 0 } || op.DeleteRange is { Key.Length: 0 })
            {
                throw new StoreException(StoreErrorCode.EmptyKey);
            }

            if (op.Txn is { } n)
            {
                CheckShape(n);
            }
        }
    }

    /// <summary>Keys put and ranges deleted by a branch; throws on a key written twice (etcd's duplicate-key rule).</summary>
    private static (HashSet<string> Puts, List<(string B, string? E)> Dels) Dup(IReadOnlyList<RequestOp> ops)
    {
        var dels = ops.Where(o => o.DeleteRange is not null)
            .Select(o => (K(o.DeleteRange!.Key), o.DeleteRange.RangeEnd.Length == 0 ? null : K(o.DeleteRange.RangeEnd))).ToList();
        bool Deleted(string k) => dels.Any(d => d.Item2 is null ? d.Item1 == k : string.CompareOrdinal(d.Item1, k) <= 0 && (d.Item2 == "\0" || string.CompareOrdinal(k, d.Item2) < 0));
        var puts = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in ops.Where(o => o.Txn is not null))
        {
            var then = Dup(o.Txn!.Success);
            var els = Dup(o.Txn.Failure);
            foreach (var k in then.Puts)
            {
                if (puts.Contains(k) || Deleted(k))
                {
                    throw new StoreException(StoreErrorCode.DuplicateKey);
                }

                puts.Add(k);
            }

            foreach (var k in els.Puts)
            {
                if ((puts.Contains(k) && !then.Puts.Contains(k)) || Deleted(k))
                {
                    throw new StoreException(StoreErrorCode.DuplicateKey);
                }

                puts.Add(k);
            }

            dels.AddRange(then.Dels);
            dels.AddRange(els.Dels);
        }

        foreach (var o in ops.Where(o => o.Put is not null))
        {
            var k = K(o.Put!.Key);
            if (!puts.Add(k) || Deleted(k))
            {
                throw new StoreException(StoreErrorCode.DuplicateKey);
            }
        }

        return (puts, dels);
    }

    private bool Holds(Compare c, long rev)
    {
        var kvs = Live(c.Key, c.RangeEnd, rev);
        if (kvs.Count == 0)
        {
            if (c.Target == CompareTarget.Value)
            {
                return false;
            }

            kvs = [new KeyValue([], 0, 0, 0, [], 0)];
        }

        return kvs.All(kv =>
        {
            var r = c.Target switch
            {
                CompareTarget.Version => kv.Version.CompareTo(c.Version),
                CompareTarget.Create => kv.CreateRevision.CompareTo(c.CreateRevision),
                CompareTarget.Mod => kv.ModRevision.CompareTo(c.ModRevision),
                CompareTarget.Lease => kv.Lease.CompareTo(c.Lease),
                _ => kv.Value.AsSpan().SequenceCompareTo(c.Value),
            };
            return c.Result switch
            {
                CompareResult.Equal => r == 0,
                CompareResult.NotEqual => r != 0,
                CompareResult.Greater => r > 0,
                _ => r < 0,
            };
        });
    }

    private object TxnTop(TxnRequest t)
    {
        CheckShape(t);
        Dup(t.Success);
        Dup(t.Failure);

        // Every compare on the chosen path is decided on the state before the txn, then the chosen requests are checked.
        var w = new Write(Revision);
        var decisions = new Queue<bool>();
        Decide(t, decisions);
        Check(t, [.. decisions], 0);
        // A request failing half-way (etcd would panic here) leaves no trace: the txn is all or nothing.
        var saved = _history.ToDictionary(kv => kv.Key, kv => kv.Value.ToList(), StringComparer.Ordinal);
        TxnResponse response;
        try
        {
            response = Run(t, w, decisions);
        }
        catch (StoreException)
        {
            _history.Clear();
            foreach (var (k, h) in saved)
            {
                _history[k] = h;
            }

            throw;
        }

        if (w.Changes > 0)
        {
            Revision++;
        }

        return response with { Revision = w.ReadRev };
    }

    private void Decide(TxnRequest t, Queue<bool> decisions)
    {
        var ok = t.Compare.All(c => Holds(c, Revision));
        decisions.Enqueue(ok);
        foreach (var op in ok ? t.Success : t.Failure)
        {
            if (op.Txn is { } n)
            {
                Decide(n, decisions);
            }
        }
    }

    private int Check(TxnRequest t, bool[] decisions, int at)
    {
        foreach (var op in decisions[at++] ? t.Success : t.Failure)
        {
            if (op.Put is { } p && (p.IgnoreValue || p.IgnoreLease) && At(K(p.Key), Revision) is null)
            {
                throw new StoreException(StoreErrorCode.KeyNotFound);
            }

            if (op.Put is { } put)
            {
                CheckLease(put.Lease);
            }

            if (op.Range is { } r && (r.Revision > Revision || r.Revision < CompactRevision))
            {
                throw new StoreException(r.Revision > Revision ? StoreErrorCode.FutureRevision : StoreErrorCode.Compacted);
            }

            if (op.Txn is { } n)
            {
                at = Check(n, decisions, at);
            }
        }

        return at;
    }

    private TxnResponse Run(TxnRequest t, Write w, Queue<bool> decisions)
    {
        var ok = decisions.Dequeue();
        var responses = new List<ResponseOp>();
        foreach (var op in ok ? t.Success : t.Failure)
        {
            if (op.Range is { } r)
            {
                responses.Add(new ResponseOp(Range: RangeAt(r, w.ReadRev, w)));
            }
            else if (op.Put is { } p)
            {
                responses.Add(new ResponseOp(Put: PutOp(w, p)));
            }
            else if (op.DeleteRange is { } d)
            {
                responses.Add(new ResponseOp(DeleteRange: DeleteOp(w, d)));
            }
            else if (op.Txn is { } n)
            {
                var inner = Run(n, w, decisions);
                responses.Add(new ResponseOp(Txn: inner with { Revision = w.ReadRev }));
            }
        }

        return new TxnResponse(w.ReadRev, ok, responses);
    }

    /// <summary>Every key live at <paramref name="rev"/>, in key order.</summary>
    public List<KeyValue> Snapshot(long rev) => Live(B("\0"), [0], rev);
}
