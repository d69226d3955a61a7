using System.Globalization;
using System.Text;
using RaftKv.Linearizability;

namespace RaftKv.Simulator;

/// <summary>
/// A client command as it travels in a log entry: the request id (unique per run, so duplicates of a forwarded
/// proposal apply once) and the operation.
/// </summary>
internal sealed record KvCommand(long RequestId, KvInput Operation)
{
    private const char Separator = '\u001f';

    public byte[] Encode()
    {
        var fields = Operation switch
        {
            KvPut p => $"put{Separator}{p.Key}{Separator}{p.Value}",
            KvDelete d => $"del{Separator}{d.Key}",
            KvCompareAndSet c => $"cas{Separator}{c.Key}{Separator}{Opt(c.Expected)}{Separator}{Opt(c.NewValue)}",
            _ => throw new ArgumentException($"{Operation} is not a write."),
        };
        return Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{RequestId}{Separator}{fields}"));

        static string Opt(string? s) => s is null ? "\u0000" : s;
    }

    public static KvCommand Decode(ReadOnlySpan<byte> data)
    {
        var parts = Encoding.UTF8.GetString(data).Split(Separator);
        var id = long.Parse(parts[0], CultureInfo.InvariantCulture);
        KvInput op = parts[1] switch
        {
            "put" => new KvPut(parts[2], parts[3]),
            "del" => new KvDelete(parts[2]),
            "cas" => new KvCompareAndSet(parts[2], Opt(parts[3]), Opt(parts[4])),
            _ => throw new FormatException($"unknown command '{parts[1]}'"),
        };
        return new KvCommand(id, op);

        static string? Opt(string s) => s == "\u0000" ? null : s;
    }
}

/// <summary>
/// The replicated key-value store each simulated node applies committed entries to. Deterministic: the same
/// entries in the same order give the same state and the same answers on every node.
/// </summary>
internal sealed class KvStateMachine
{
    private readonly SortedDictionary<string, KvKeyState> _keys = new(StringComparer.Ordinal);

    // Request ids already applied (with their answers): a proposal duplicated by the network or re-proposed
    // appears twice in the log but takes effect once (Raft thesis §6.3).
    private readonly Dictionary<long, KvOutput> _applied = [];

    public KvKeyState Get(string key) => _keys.GetValueOrDefault(key, KvModel.Instance.Initial);

    /// <summary>Applies a command; returns its answer (the first answer again for a duplicate).</summary>
    public KvOutput Apply(KvCommand command)
    {
        if (_applied.TryGetValue(command.RequestId, out var earlier))
        {
            return earlier;
        }

        var state = Get(command.Operation.Key);
        KvOutput output;
        KvKeyState next;
        switch (command.Operation)
        {
            case KvPut put:
                next = state.Written(put.Value);
                output = new KvPutResult();
                break;
            case KvDelete:
                next = state.Deleted();
                output = new KvDeleteResult(state.Value is null ? 0 : 1);
                break;
            case KvCompareAndSet cas:
                var holds = cas.Expected == state.Value;
                next = !holds ? state : cas.NewValue is null ? state.Deleted() : state.Written(cas.NewValue);
                output = new KvCompareAndSetResult(holds);
                break;
            default:
                throw new InvalidOperationException($"{command.Operation} is not a write");
        }

        if (next.Value is null)
        {
            _keys.Remove(command.Operation.Key);
        }
        else
        {
            _keys[command.Operation.Key] = next;
        }

        _applied[command.RequestId] = output;
        return output;
    }

    /// <summary>A canonical text image of the store (for snapshots and for comparing nodes).</summary>
    public byte[] Serialize()
    {
        var text = new StringBuilder();
        foreach (var (key, state) in _keys)
        {
            text.Append(CultureInfo.InvariantCulture, $"k\t{key}\t{state.Value}\t{state.Version}\n");
        }

        foreach (var (id, output) in _applied.OrderBy(p => p.Key))
        {
            var code = output switch
            {
                KvPutResult => "p",
                KvDeleteResult { Deleted: 1 } => "d1",
                KvDeleteResult => "d0",
                KvCompareAndSetResult { Succeeded: true } => "c1",
                _ => "c0",
            };
            text.Append(CultureInfo.InvariantCulture, $"r\t{id}\t{code}\n");
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public static KvStateMachine Deserialize(ReadOnlySpan<byte> data)
    {
        var machine = new KvStateMachine();
        foreach (var line in Encoding.UTF8.GetString(data).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t');
            if (f[0] == "k")
            {
                machine._keys[f[1]] = new KvKeyState(f[2], long.Parse(f[3], CultureInfo.InvariantCulture), TracksVersion: true);
            }
            else
            {
                machine._applied[long.Parse(f[1], CultureInfo.InvariantCulture)] = f[2] switch
                {
                    "p" => new KvPutResult(),
                    "d1" => new KvDeleteResult(1),
                    "d0" => new KvDeleteResult(0),
                    "c1" => new KvCompareAndSetResult(true),
                    _ => new KvCompareAndSetResult(false),
                };
            }
        }

        return machine;
    }
}
