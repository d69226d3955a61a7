using System.Globalization;
using System.Text;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

/// <summary>Turns one number into one etcd request over a small key space (so keys collide, get deleted, recreated and compared).</summary>
internal static class OpGen
{
    private static readonly string[] Keys = ["a", "a/1", "a/2", "b", "c", "c/x", "d"];

    private static byte[] B(string s) => Encoding.Latin1.GetBytes(s);

    private static byte[] Key(Random r) => B(Keys[r.Next(Keys.Length)]);

    private static (byte[] Key, byte[] End) KeyRange(Random r) => r.Next(6) switch
    {
        0 or 1 => (Key(r), []),
        2 => (B("a/"), B("a0")), // prefix a/
        3 => (Key(r), [0]), // from key on
        4 => ([0], [0]), // everything
        _ => (Key(r), Key(r)), // an interval, possibly empty or inverted
    };

    public static object Decode(int seed, long currentRevision)
    {
        var r = new Random(seed);
        return r.Next(23) switch
        {
            < 7 => Put(r),
            < 10 => Delete(r),
            < 14 => Range(r, currentRevision),
            < 19 => Txn(r, currentRevision, depth: 0),
            19 => new CompactionRequest(r.NextInt64(0, currentRevision + 2)),
            20 or 21 => new LeaseGrantRequest(r.Next(8) == 0 ? 0 : LeaseId(r), r.Next(8) == 0 ? MvccStore.MaxLeaseTtl + 1 : r.Next(1, 100)),
            _ => new LeaseRevokeRequest(r.Next(8) == 0 ? 9 : LeaseId(r)),
        };
    }

    private static long LeaseId(Random r) => r.Next(2) == 0 ? 7 : 8;

    private static PutRequest Put(Random r)
    {
        var ignoreValue = r.Next(6) == 0;
        var ignoreLease = r.Next(6) == 0;
        return new PutRequest
        {
            Key = Key(r),
            Value = ignoreValue && r.Next(4) != 0 ? [] : B("v" + r.Next(4).ToString(CultureInfo.InvariantCulture)),
            Lease = ignoreLease && r.Next(4) != 0 ? 0 : r.Next(3) == 0 ? LeaseId(r) : 0,
            PrevKv = r.Next(2) == 0,
            IgnoreValue = ignoreValue,
            IgnoreLease = ignoreLease,
        };
    }

    private static DeleteRangeRequest Delete(Random r)
    {
        var (k, e) = KeyRange(r);
        return new DeleteRangeRequest { Key = k, RangeEnd = e, PrevKv = r.Next(2) == 0 };
    }

    private static RangeRequest Range(Random r, long current)
    {
        var (k, e) = KeyRange(r);
        return new RangeRequest
        {
            Key = k,
            RangeEnd = e,
            Limit = r.Next(3) == 0 ? r.Next(0, 4) : 0,
            Revision = r.Next(3) == 0 ? r.NextInt64(-1, current + 2) : 0,
            SortOrder = (SortOrder)r.Next(3),
            SortTarget = (SortTarget)r.Next(5),
            KeysOnly = r.Next(5) == 0,
            CountOnly = r.Next(6) == 0,
            MinModRevision = r.Next(5) == 0 ? r.NextInt64(0, current + 1) : 0,
            MaxModRevision = r.Next(5) == 0 ? r.NextInt64(0, current + 1) : 0,
            MinCreateRevision = r.Next(6) == 0 ? r.NextInt64(0, current + 1) : 0,
            MaxCreateRevision = r.Next(6) == 0 ? r.NextInt64(0, current + 1) : 0,
        };
    }

    private static TxnRequest Txn(Random r, long current, int depth)
    {
        var compares = Enumerable.Range(0, r.Next(3)).Select(_ =>
        {
            var (k, e) = r.Next(4) == 0 ? KeyRange(r) : (Key(r), []);
            return new Compare
            {
                Key = k,
                RangeEnd = e,
                Target = (CompareTarget)r.Next(5),
                Result = (CompareResult)r.Next(4),
                Version = r.Next(3),
                CreateRevision = r.NextInt64(0, current + 1),
                ModRevision = r.NextInt64(0, current + 1),
                Value = r.Next(3) == 0 ? [] : B("v" + r.Next(4).ToString(CultureInfo.InvariantCulture)),
                Lease = r.Next(2) == 0 ? 0 : 7,
            };
        }).ToList();
        return new TxnRequest { Compare = compares, Success = Ops(r, current, depth), Failure = Ops(r, current, depth) };
    }

    private static List<RequestOp> Ops(Random r, long current, int depth) =>
        [.. Enumerable.Range(0, r.Next(4)).Select(_ => r.Next(10) switch
        {
            < 4 => RequestOp.Of(Put(r)),
            < 6 => RequestOp.Of(Delete(r)),
            < 9 => RequestOp.Of(Range(r, current)),
            _ => depth < 2 ? RequestOp.Of(Txn(r, current, depth + 1)) : RequestOp.Of(Range(r, current)),
        })];

    /// <summary>A canonical text of a response or error, for comparing and for failure messages.</summary>
    public static string Describe(object? o) => o switch
    {
        null => "null",
        StoreErrorCode c => "error " + c,
        RangeResponse r => $"range(rev={r.Revision} count={r.Count} more={r.More} [{string.Join(" ", r.Kvs)}])",
        PutResponse p => $"put(rev={p.Revision} prev={p.PrevKv?.ToString() ?? "-"})",
        DeleteRangeResponse d => $"delete(rev={d.Revision} n={d.Deleted} prev=[{string.Join(" ", d.PrevKvs)}])",
        TxnResponse t => $"txn(rev={t.Revision} ok={t.Succeeded} [{string.Join("; ", t.Responses.Select(x => Describe((object?)x.Range ?? (object?)x.Put ?? (object?)x.DeleteRange ?? x.Txn)))}])",
        CompactionResponse c => $"compact(rev={c.Revision})",
        _ => o.ToString() ?? "?",
    };

    public static string DescribeRequest(object o) => o switch
    {
        PutRequest p => $"Put({KeyValue.Show(p.Key)}={KeyValue.Show(p.Value)} lease={p.Lease} prev={p.PrevKv} ignoreValue={p.IgnoreValue} ignoreLease={p.IgnoreLease})",
        DeleteRangeRequest d => $"Delete({KeyValue.Show(d.Key)}..{KeyValue.Show(d.RangeEnd)} prev={d.PrevKv})",
        RangeRequest q => $"Range({KeyValue.Show(q.Key)}..{KeyValue.Show(q.RangeEnd)} limit={q.Limit} rev={q.Revision} sort={q.SortOrder}/{q.SortTarget} keysOnly={q.KeysOnly} countOnly={q.CountOnly} mod=[{q.MinModRevision},{q.MaxModRevision}] create=[{q.MinCreateRevision},{q.MaxCreateRevision}])",
        TxnRequest t => $"Txn(if [{string.Join(", ", t.Compare.Select(c => $"{c.Target}({KeyValue.Show(c.Key)}..{KeyValue.Show(c.RangeEnd)}) {c.Result} v={c.Version} c={c.CreateRevision} m={c.ModRevision} val={KeyValue.Show(c.Value)} l={c.Lease}"))}] then [{string.Join(", ", t.Success.Select(DescribeOp))}] else [{string.Join(", ", t.Failure.Select(DescribeOp))}])",
        CompactionRequest c => $"Compact({c.Revision})",
        LeaseGrantRequest g => $"Grant({g.Id}, ttl {g.Ttl})",
        LeaseRevokeRequest v => $"Revoke({v.Id})",
        _ => o.ToString() ?? "?",
    };

    private static string DescribeOp(RequestOp op) => DescribeRequest((object?)op.Range ?? (object?)op.Put ?? (object?)op.DeleteRange ?? op.Txn!);
}
