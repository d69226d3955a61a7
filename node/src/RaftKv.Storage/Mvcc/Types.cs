namespace RaftKv.Storage.Mvcc;

/// <summary>A point in the store's history: <see cref="Main"/> counts write requests, <see cref="Sub"/> the changes inside one.</summary>
public readonly record struct Revision(long Main, long Sub) : IComparable<Revision>
{
    public int CompareTo(Revision other) => Main != other.Main ? Main.CompareTo(other.Main) : Sub.CompareTo(other.Sub);

    public static bool operator <(Revision a, Revision b) => a.CompareTo(b) < 0;

    public static bool operator >(Revision a, Revision b) => a.CompareTo(b) > 0;

    public static bool operator <=(Revision a, Revision b) => a.CompareTo(b) <= 0;

    public static bool operator >=(Revision a, Revision b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{Main}.{Sub}";
}

/// <summary>etcd's mvccpb.KeyValue.</summary>
public sealed record KeyValue(byte[] Key, long CreateRevision, long ModRevision, long Version, byte[] Value, long Lease)
{
    public bool Equals(KeyValue? other) =>
        other is not null && Key.AsSpan().SequenceEqual(other.Key) && CreateRevision == other.CreateRevision && ModRevision == other.ModRevision
        && Version == other.Version && Value.AsSpan().SequenceEqual(other.Value) && Lease == other.Lease;

    public override int GetHashCode() => HashCode.Combine(Convert.ToHexString(Key), ModRevision);

    public override string ToString() =>
        $"{{key={Show(Key)} create={CreateRevision} mod={ModRevision} ver={Version} value={Show(Value)} lease={Lease}}}";

    internal static string Show(byte[] b) => b.All(c => c is >= 0x20 and < 0x7f) ? $"\"{System.Text.Encoding.ASCII.GetString(b)}\"" : "0x" + Convert.ToHexString(b);
}

public enum SortOrder
{
    None = 0,
    Ascend = 1,
    Descend = 2,
}

public enum SortTarget
{
    Key = 0,
    Version = 1,
    Create = 2,
    Mod = 3,
    Value = 4,
}

/// <summary>
/// etcd's RangeRequest. <see cref="RangeEnd"/>: empty = the single key <see cref="Key"/>; one zero byte = every key at or
/// after <see cref="Key"/>; otherwise the half-open interval [Key, RangeEnd) (a prefix p is [p, p+1)).
/// </summary>
public sealed record RangeRequest
{
    public byte[] Key { get; init; } = [];

    public byte[] RangeEnd { get; init; } = [];

    /// <summary>At most this many keys (0 = no limit); <see cref="RangeResponse.Count"/> still counts all.</summary>
    public long Limit { get; init; }

    /// <summary>Read at this revision (0 or less = the current one).</summary>
    public long Revision { get; init; }

    public SortOrder SortOrder { get; init; }

    public SortTarget SortTarget { get; init; }

    public bool Serializable { get; init; }

    public bool KeysOnly { get; init; }

    public bool CountOnly { get; init; }

    public long MinModRevision { get; init; }

    public long MaxModRevision { get; init; }

    public long MinCreateRevision { get; init; }

    public long MaxCreateRevision { get; init; }
}

/// <summary>etcd's RangeResponse (header revision, kvs, more, count).</summary>
public sealed record RangeResponse(long Revision, IReadOnlyList<KeyValue> Kvs, bool More, long Count);

/// <summary>etcd's PutRequest.</summary>
public sealed record PutRequest
{
    public byte[] Key { get; init; } = [];

    public byte[] Value { get; init; } = [];

    public long Lease { get; init; }

    public bool PrevKv { get; init; }

    /// <summary>Keep the current value (the key must exist; <see cref="Value"/> must be empty).</summary>
    public bool IgnoreValue { get; init; }

    /// <summary>Keep the current lease (the key must exist; <see cref="Lease"/> must be 0).</summary>
    public bool IgnoreLease { get; init; }
}

public sealed record PutResponse(long Revision, KeyValue? PrevKv);

/// <summary>etcd's DeleteRangeRequest (same range conventions as <see cref="RangeRequest"/>).</summary>
public sealed record DeleteRangeRequest
{
    public byte[] Key { get; init; } = [];

    public byte[] RangeEnd { get; init; } = [];

    public bool PrevKv { get; init; }
}

public sealed record DeleteRangeResponse(long Revision, long Deleted, IReadOnlyList<KeyValue> PrevKvs);

public enum CompareResult
{
    Equal = 0,
    Greater = 1,
    Less = 2,
    NotEqual = 3,
}

public enum CompareTarget
{
    Version = 0,
    Create = 1,
    Mod = 2,
    Value = 3,
    Lease = 4,
}

/// <summary>
/// etcd's Compare: <c>target(key) result operand</c>. With a <see cref="RangeEnd"/> every key in the range must satisfy it.
/// A missing key compares as a KeyValue of zeros, except that a VALUE compare on a missing key is always false.
/// </summary>
public sealed record Compare
{
    public CompareResult Result { get; init; }

    public CompareTarget Target { get; init; }

    public byte[] Key { get; init; } = [];

    public byte[] RangeEnd { get; init; } = [];

    public long Version { get; init; }

    public long CreateRevision { get; init; }

    public long ModRevision { get; init; }

    public byte[] Value { get; init; } = [];

    public long Lease { get; init; }
}

/// <summary>One operation inside a txn (etcd's RequestOp): exactly one of the requests.</summary>
public sealed record RequestOp
{
    public RangeRequest? Range { get; init; }

    public PutRequest? Put { get; init; }

    public DeleteRangeRequest? DeleteRange { get; init; }

    public TxnRequest? Txn { get; init; }

    public static RequestOp Of(RangeRequest r) => new() { Range = r };

    public static RequestOp Of(PutRequest r) => new() { Put = r };

    public static RequestOp Of(DeleteRangeRequest r) => new() { DeleteRange = r };

    public static RequestOp Of(TxnRequest r) => new() { Txn = r };
}

/// <summary>The response to one <see cref="RequestOp"/>: exactly one is set.</summary>
public sealed record ResponseOp(RangeResponse? Range = null, PutResponse? Put = null, DeleteRangeResponse? DeleteRange = null, TxnResponse? Txn = null);

/// <summary>etcd's TxnRequest: if all <see cref="Compare"/> hold, run <see cref="Success"/>, else <see cref="Failure"/>.</summary>
public sealed record TxnRequest
{
    public IReadOnlyList<Compare> Compare { get; init; } = [];

    public IReadOnlyList<RequestOp> Success { get; init; } = [];

    public IReadOnlyList<RequestOp> Failure { get; init; } = [];
}

public sealed record TxnResponse(long Revision, bool Succeeded, IReadOnlyList<ResponseOp> Responses);

/// <summary>etcd's CompactionRequest (physical: wait until the compaction is on disk, which it always is here).</summary>
public sealed record CompactionRequest(long Revision, bool Physical = false);

public sealed record CompactionResponse(long Revision);

/// <summary>etcd's HashKV result: hash of the key space up to <see cref="HashRevision"/>.</summary>
public sealed record HashKvResponse(long Revision, uint Hash, long CompactRevision, long HashRevision);

/// <summary>
/// etcd's CORRUPT alarm, replicated through the log: raised by the leader's periodic corruption check (or through the Alarm API)
/// for the member whose store differs; while it is active every write is refused with <see cref="StoreErrorCode.Corrupt"/>.
/// </summary>
public sealed record CorruptAlarmRequest(bool Activate, ulong MemberId);

/// <summary>Alarm actions replicated through the log (etcd's AlarmRequest for NOSPACE).</summary>
public enum AlarmAction
{
    Activate,
    Deactivate,
}
