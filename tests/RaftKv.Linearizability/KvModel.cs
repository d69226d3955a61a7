using System.Globalization;

namespace RaftKv.Linearizability;

/// <summary>A request to the key-value store. Every request touches exactly one key, so histories split by key.</summary>
public abstract record KvInput(string Key);

/// <summary>Read a key (etcd Range on one key).</summary>
public sealed record KvGet(string Key) : KvInput(Key)
{
    public override string ToString() => $"get {Key}";
}

/// <summary>Write a key (etcd Put).</summary>
public sealed record KvPut(string Key, string Value) : KvInput(Key)
{
    public override string ToString() => $"put {Key}={Value}";
}

/// <summary>Delete a key (etcd DeleteRange on one key).</summary>
public sealed record KvDelete(string Key) : KvInput(Key)
{
    public override string ToString() => $"delete {Key}";
}

/// <summary>
/// etcd-style transaction on one key: if the key's value equals <paramref name="Expected"/> (null: the
/// key does not exist, i.e. etcd's <c>version = 0</c>), then write <paramref name="NewValue"/> (null:
/// delete it); otherwise change nothing. The answer says which branch ran.
/// </summary>
public sealed record KvCompareAndSet(string Key, string? Expected, string? NewValue) : KvInput(Key)
{
    public override string ToString() =>
        $"cas {Key}: if {(Expected is null ? "absent" : "=" + Expected)} then {(NewValue is null ? "delete" : "put " + NewValue)}";
}

/// <summary>An answer of the key-value store.</summary>
public abstract record KvOutput;

/// <summary>
/// Answer to <see cref="KvGet"/>: the value (null when absent) and optionally etcd's per-key version
/// (1 on creation, +1 per write, 0 when absent). A null <paramref name="Version"/> is not checked.
/// </summary>
public sealed record KvGetResult(string? Value, long? Version = null) : KvOutput
{
    public override string ToString() =>
        (Value is null ? "absent" : "\"" + Value + "\"") + (Version is { } v ? string.Create(CultureInfo.InvariantCulture, $" (v{v})") : "");
}

/// <summary>Answer to <see cref="KvPut"/>.</summary>
public sealed record KvPutResult : KvOutput
{
    public override string ToString() => "ok";
}

/// <summary>Answer to <see cref="KvDelete"/>: how many keys were deleted (0 or 1); null is not checked.</summary>
public sealed record KvDeleteResult(long? Deleted = null) : KvOutput
{
    public override string ToString() => Deleted is { } d ? string.Create(CultureInfo.InvariantCulture, $"deleted {d}") : "ok";
}

/// <summary>Answer to <see cref="KvCompareAndSet"/>: whether the comparison held and the write happened.</summary>
public sealed record KvCompareAndSetResult(bool Succeeded) : KvOutput
{
    public override string ToString() => Succeeded ? "succeeded" : "failed";
}

/// <summary>
/// The state of one key: its value (null when absent) and etcd's per-key version. When no read of the
/// key checks versions, <paramref name="TracksVersion"/> is false and the version stays 0, so states that
/// differ only in an unobserved version are one state to the search.
/// </summary>
public readonly record struct KvKeyState(string? Value, long Version, bool TracksVersion)
{
    public KvKeyState Written(string value) => new(value, TracksVersion ? Version + 1 : 0, TracksVersion);

    public KvKeyState Deleted() => new(null, 0, TracksVersion);

    public override string ToString() =>
        (Value is null ? "absent" : "\"" + Value + "\"")
        + (TracksVersion && Value is not null ? string.Create(CultureInfo.InvariantCulture, $" (v{Version})") : "");
}

/// <summary>
/// The sequential key-value store. Because every operation touches one key, the state of a part is the
/// state of its key, and the history is checked key by key.
/// </summary>
public sealed class KvModel : IModel<KvKeyState, KvInput, KvOutput>
{
    public static KvModel Instance { get; } = new();

    public KvKeyState Initial { get; } = new(null, 0, TracksVersion: true);

    /// <summary>Versions are tracked only in parts where some read checks them.</summary>
    public KvKeyState InitialFor(SubHistory<KvInput, KvOutput> part) =>
        new(null, 0, part.Operations.Any(op => op.Output is KvGetResult { Version: not null }));

    public IEqualityComparer<KvKeyState> StateComparer => EqualityComparer<KvKeyState>.Default;

    public bool IsReadOnly(KvInput input) => input is KvGet;

    public bool Step(KvKeyState state, KvInput input, KvOutput? output, out KvKeyState next)
    {
        switch (input)
        {
            case KvGet:
                next = state;
                return output switch
                {
                    null => true,
                    KvGetResult r => r.Value == state.Value && (r.Version is null || (state.TracksVersion && r.Version == state.Version)),
                    _ => false,
                };
            case KvPut put:
                next = state.Written(put.Value);
                return output is null or KvPutResult;
            case KvDelete:
                next = state.Deleted();
                return output switch
                {
                    null => true,
                    KvDeleteResult r => r.Deleted is null || r.Deleted == (state.Value is null ? 0 : 1),
                    _ => false,
                };
            case KvCompareAndSet cas:
                var holds = cas.Expected == state.Value;
                next = !holds ? state : cas.NewValue is null ? state.Deleted() : state.Written(cas.NewValue);
                return output switch
                {
                    null => true,
                    KvCompareAndSetResult r => r.Succeeded == holds,
                    _ => false,
                };
            default:
                throw new ArgumentException($"Unknown key-value request {input.GetType().Name}.", nameof(input));
        }
    }

    public IReadOnlyList<SubHistory<KvInput, KvOutput>> Partition(IReadOnlyList<Operation<KvInput, KvOutput>> history) =>
        history
            .GroupBy(op => op.Input.Key, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new SubHistory<KvInput, KvOutput>($"key {g.Key}", g.ToList()))
            .ToList();

    public string DescribeState(KvKeyState state) => state.ToString();

    /// <summary>
    /// Bounds writes of unknown outcome by what was observed. If a put (or compare-and-set) of unknown
    /// outcome wrote a value no other operation on that key writes, and a completed read returned that
    /// value (or a completed compare-and-set succeeded expecting it), the write took effect before that
    /// observer returned; a compare-and-set that did so also succeeded. Such an operation becomes a
    /// completed one ending at the earliest such return. Every linearization of the original history
    /// satisfies this, so the verdict does not change; histories whose clients write unique values
    /// (as test clients should) get much cheaper to refute.
    /// </summary>
    public IReadOnlyList<Operation<KvInput, KvOutput>> Tighten(IReadOnlyList<Operation<KvInput, KvOutput>> history)
    {
        var writers = new Dictionary<(string Key, string Value), int>();
        var firstObserved = new Dictionary<(string Key, string Value), long>();
        foreach (var op in history)
        {
            var written = WrittenValue(op.Input);
            if (written is not null)
            {
                var id = (op.Input.Key, written);
                writers[id] = writers.GetValueOrDefault(id) + 1;
            }

            var observed = (op.Input, op.Output) switch
            {
                (KvGet, KvGetResult { Value: { } v }) => v,
                (KvCompareAndSet { Expected: { } e }, KvCompareAndSetResult { Succeeded: true }) => e,
                _ => null,
            };
            if (observed is not null)
            {
                var id = (op.Input.Key, observed);
                var at = op.ReturnTime!.Value;
                firstObserved[id] = firstObserved.TryGetValue(id, out var earlier) ? Math.Min(earlier, at) : at;
            }
        }

        var result = new List<Operation<KvInput, KvOutput>>(history.Count);
        foreach (var op in history)
        {
            var written = WrittenValue(op.Input);
            if (!op.Completed && written is not null
                && writers[(op.Input.Key, written)] == 1
                && firstObserved.TryGetValue((op.Input.Key, written), out var seenBy)
                && seenBy >= op.CallTime)
            {
                KvOutput output = op.Input is KvPut ? new KvPutResult() : new KvCompareAndSetResult(true);
                result.Add(new Operation<KvInput, KvOutput>(op.ClientId, op.Input, output, op.CallTime, seenBy));
            }
            else
            {
                result.Add(op);
            }
        }

        return result;
    }

    private static string? WrittenValue(KvInput input) => input switch
    {
        KvPut put => put.Value,
        KvCompareAndSet cas => cas.NewValue,
        _ => null,
    };
}
