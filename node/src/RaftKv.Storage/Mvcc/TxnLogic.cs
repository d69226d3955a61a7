namespace RaftKv.Storage.Mvcc;

/// <summary>etcd's request checks and txn semantics (server/etcdserver/txn and api/v3rpc/key.go), over a store view.</summary>
internal static class TxnLogic
{
    public static void ValidatePut(PutRequest put)
    {
        if (put.Key.Length == 0)
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        if (put.IgnoreValue && put.Value.Length != 0)
        {
            throw new StoreException(StoreErrorCode.ValueProvided);
        }

        if (put.IgnoreLease && put.Lease != 0)
        {
            throw new StoreException(StoreErrorCode.LeaseProvided);
        }
    }

    /// <summary>etcd's checkTxnRequest and the duplicate-key interval check.</summary>
    public static void Validate(TxnRequest txn, int maxTxnOps)
    {
        CheckShape(txn, maxTxnOps);
        CheckIntervals(txn.Success);
        CheckIntervals(txn.Failure);
    }

    private static void CheckShape(TxnRequest txn, int maxTxnOps)
    {
        if (txn.Compare.Count > maxTxnOps || txn.Success.Count > maxTxnOps || txn.Failure.Count > maxTxnOps)
        {
            throw new StoreException(StoreErrorCode.TooManyOps);
        }

        foreach (var c in txn.Compare)
        {
            if (c.Key.Length == 0)
            {
                throw new StoreException(StoreErrorCode.EmptyKey);
            }
        }

        foreach (var op in txn.Success.Concat(txn.Failure))
        {
            if (op.Range is { } r && r.Key.Length == 0)
            {
                throw new StoreException(StoreErrorCode.EmptyKey);
            }

            if (op.Put is { } p)
            {
                ValidatePut(p);
            }

            if (op.DeleteRange is { } d && d.Key.Length == 0)
            {
                throw new StoreException(StoreErrorCode.EmptyKey);
            }

            if (op.Txn is { } t)
            {
                CheckShape(t, maxTxnOps);
            }
        }
    }

    /// <summary>
    /// Intervals deleted in one branch: point keys (End null) or [Begin, End) compared bytewise, as etcd's interval tree does,
    /// except that a range end of "\0" means "every key from Begin on" here, as it does when the delete runs. (etcd's check reads
    /// it literally, so a txn deleting "k".."\0" and putting "k" passes, then writes the key twice in one revision: its compaction
    /// later drops the put. We refuse that txn as a duplicate instead.)
    /// </summary>
    private readonly record struct Interval(byte[] Begin, byte[]? End)
    {
        public bool Contains(byte[] key)
        {
            if (End is null)
            {
                return ByteKeyComparer.Instance.Equals(Begin, key);
            }

            return ByteKeyComparer.Instance.Compare(Begin, key) <= 0 && (End is [0] || ByteKeyComparer.Instance.Compare(key, End) < 0);
        }
    }

    /// <summary>
    /// etcd's checkIntervals: within one branch a key may be put at most once and not also fall in a deleted range, counting
    /// nested txns (whose success and failure branches exclude each other, so a key put in both is fine).
    /// </summary>
    private static (HashSet<byte[]> Puts, List<Interval> Dels) CheckIntervals(IReadOnlyList<RequestOp> ops)
    {
        var dels = new List<Interval>();
        foreach (var op in ops)
        {
            if (op.DeleteRange is { } d)
            {
                dels.Add(new Interval(d.Key, d.RangeEnd.Length != 0 ? d.RangeEnd : null));
            }
        }

        var puts = new HashSet<byte[]>(ByteKeyComparer.Instance);
        foreach (var op in ops)
        {
            if (op.Txn is not { } t)
            {
                continue;
            }

            var (putsThen, delsThen) = CheckIntervals(t.Success);
            var (putsElse, delsElse) = CheckIntervals(t.Failure);
            foreach (var k in putsThen)
            {
                if (puts.Contains(k) || dels.Any(i => i.Contains(k)))
                {
                    throw new StoreException(StoreErrorCode.DuplicateKey);
                }

                puts.Add(k);
            }

            foreach (var k in putsElse)
            {
                if (puts.Contains(k) && !putsThen.Contains(k))
                {
                    throw new StoreException(StoreErrorCode.DuplicateKey);
                }

                if (dels.Any(i => i.Contains(k)))
                {
                    throw new StoreException(StoreErrorCode.DuplicateKey);
                }

                puts.Add(k);
            }

            dels.AddRange(delsThen);
            dels.AddRange(delsElse);
        }

        foreach (var op in ops)
        {
            if (op.Put is not { } p)
            {
                continue;
            }

            if (puts.Contains(p.Key) || dels.Any(i => i.Contains(p.Key)))
            {
                throw new StoreException(StoreErrorCode.DuplicateKey);
            }

            puts.Add(p.Key);
        }

        return (puts, dels);
    }

    /// <summary>True when no branch at any depth puts or deletes.</summary>
    public static bool IsReadOnly(TxnRequest txn) =>
        txn.Success.Concat(txn.Failure).All(op => op.Put is null && op.DeleteRange is null && (op.Txn is null || IsReadOnly(op.Txn)));

    /// <summary>Evaluates this txn's compares and those of the nested txns on the chosen branches, all against the state before the txn.</summary>
    private static List<bool> ComparePath(MvccStore.View view, TxnRequest txn)
    {
        var ok = txn.Compare.All(c => ApplyCompare(view, c));
        var path = new List<bool> { ok };
        foreach (var op in ok ? txn.Success : txn.Failure)
        {
            if (op.Txn is { } nested)
            {
                path.AddRange(ComparePath(view, nested));
            }
        }

        return path;
    }

    private static bool ApplyCompare(MvccStore.View view, Compare c)
    {
        var kvs = view.RangeKvs(c.Key, MvccStore.View.GteRange(c.RangeEnd), view.ReadRevision);
        if (kvs.Count == 0)
        {
            // A value cannot be compared on a missing key (nil and empty are the same on the wire): always false.
            return c.Target != CompareTarget.Value && CompareKv(c, new KeyValue([], 0, 0, 0, [], 0));
        }

        return kvs.All(kv => CompareKv(c, kv));
    }

    private static bool CompareKv(Compare c, KeyValue kv)
    {
        var result = c.Target switch
        {
            CompareTarget.Value => Math.Sign(kv.Value.AsSpan().SequenceCompareTo(c.Value)),
            CompareTarget.Create => kv.CreateRevision.CompareTo(c.CreateRevision),
            CompareTarget.Mod => kv.ModRevision.CompareTo(c.ModRevision),
            CompareTarget.Version => kv.Version.CompareTo(c.Version),
            CompareTarget.Lease => kv.Lease.CompareTo(c.Lease),
            _ => 0,
        };
        return c.Result switch
        {
            CompareResult.Equal => result == 0,
            CompareResult.NotEqual => result != 0,
            CompareResult.Greater => result > 0,
            CompareResult.Less => result < 0,
            _ => true,
        };
    }

    /// <summary>
    /// etcd's checkRequests over the chosen path, op by op: puts that keep value or lease need the key, a put naming a lease needs
    /// the lease; ranges need a readable revision.
    /// </summary>
    private static int CheckRequests(MvccStore.View view, TxnRequest txn, List<bool> path, int at)
    {
        var ops = path[at] ? txn.Success : txn.Failure;
        at++;
        foreach (var op in ops)
        {
            if (op.Put is { IgnoreValue: true } or { IgnoreLease: true } && view.Get(op.Put!.Key, view.ReadRevision) is null)
            {
                throw new StoreException(StoreErrorCode.KeyNotFound);
            }

            if (op.Put is { } put)
            {
                view.Store.EnsureLeaseExists(put.Lease);
            }

            if (op.Range is { } r)
            {
                if (r.Revision > view.ReadRevision)
                {
                    throw new StoreException(StoreErrorCode.FutureRevision);
                }

                if (r.Revision < view.CompactRevision)
                {
                    throw new StoreException(StoreErrorCode.Compacted);
                }
            }

            if (op.Txn is { } nested)
            {
                at = CheckRequests(view, nested, path, at);
            }
        }

        return at;
    }

    /// <summary>Runs a validated txn: compares first (all of them, nested too), then checks, then the operations in order.</summary>
    public static TxnResponse Execute(MvccStore.View view, TxnRequest txn)
    {
        var path = ComparePath(view, txn);
        CheckRequests(view, txn, path, 0);
        var at = 0;
        var response = ExecuteBranch(view, txn, path, ref at);
        var rev = view is MvccStore.WriteContext w && w.Changes > 0 ? w.BeginRevision + 1 : view.ReadRevision;
        return response with { Revision = rev };
    }

    private static TxnResponse ExecuteBranch(MvccStore.View view, TxnRequest txn, List<bool> path, ref int at)
    {
        var succeeded = path[at++];
        var responses = new List<ResponseOp>();
        foreach (var op in succeeded ? txn.Success : txn.Failure)
        {
            if (op.Range is { } r)
            {
                responses.Add(new ResponseOp(Range: view.Range(r)));
            }
            else if (op.Put is { } p)
            {
                responses.Add(new ResponseOp(Put: ExecutePut((MvccStore.WriteContext)view, p, checkExists: true)));
            }
            else if (op.DeleteRange is { } d)
            {
                responses.Add(new ResponseOp(DeleteRange: ExecuteDelete((MvccStore.WriteContext)view, d)));
            }
            else if (op.Txn is { } nested)
            {
                var inner = ExecuteBranch(view, nested, path, ref at);
                var rev = view is MvccStore.WriteContext w && w.Changes > 0 ? w.BeginRevision + 1 : view.ReadRevision;
                responses.Add(new ResponseOp(Txn: inner with { Revision = rev }));
            }
        }

        return new TxnResponse(view.ReadRevision, succeeded, responses);
    }

    public static PutResponse ExecutePut(MvccStore.WriteContext ctx, PutRequest put, bool checkExists)
    {
        KeyValue? prev = null;
        if (put.IgnoreValue || put.IgnoreLease || put.PrevKv)
        {
            prev = ctx.Get(put.Key, ctx.ReadRevision);
        }

        if (checkExists && (put.IgnoreValue || put.IgnoreLease) && prev is null)
        {
            throw new StoreException(StoreErrorCode.KeyNotFound);
        }

        var value = put.IgnoreValue ? prev!.Value : put.Value;
        var lease = put.IgnoreLease ? prev!.Lease : put.Lease;
        ctx.PutKey(put.Key, value, lease);
        return new PutResponse(ctx.WriteRevision, put.PrevKv ? prev : null);
    }

    public static DeleteRangeResponse ExecuteDelete(MvccStore.WriteContext ctx, DeleteRangeRequest del)
    {
        var end = MvccStore.View.GteRange(del.RangeEnd);
        var prev = del.PrevKv ? ctx.RangeKvs(del.Key, end, ctx.ReadRevision) : [];
        var n = ctx.DeleteRange(del.Key, end);
        var rev = n != 0 || ctx.Changes > 0 ? ctx.BeginRevision + 1 : ctx.BeginRevision;
        return new DeleteRangeResponse(rev, n, prev);
    }
}
