namespace RaftKv.Linearizability.Tests;

/// <summary>
/// Builds histories that are linearizable by construction: a sequential execution of random operations,
/// each given a linearization point at a distinct time, then widened into an interval of random length
/// around that point (so neighbours overlap and appear concurrent). Some operations are turned into
/// unknown outcomes, and some unknown writes are added that never take effect.
/// </summary>
internal static class GeneratedHistories
{
    public static List<Operation<KvInput, KvOutput>> Linearizable(Random random, int operations, int keys, int clients, int maxWindow, int unknownPercent = 5)
    {
        var state = new Dictionary<string, KvKeyState>(StringComparer.Ordinal);
        var ops = new List<Operation<KvInput, KvOutput>>(operations);
        var nextValue = 0;
        for (var i = 0; i < operations; i++)
        {
            var point = (long)i * 10;
            var call = point - random.Next(maxWindow);
            var ret = point + random.Next(maxWindow);
            var key = $"k{random.Next(keys)}";
            var current = state.GetValueOrDefault(key, KvModel.Instance.Initial);
            var client = random.Next(clients);
            var roll = random.Next(100);
            KvInput input = roll switch
            {
                < 40 => new KvGet(key),
                < 70 => new KvPut(key, $"v{nextValue++}"),
                < 80 => new KvDelete(key),
                _ => new KvCompareAndSet(
                    key,
                    random.Next(2) == 0 ? current.Value : random.Next(3) == 0 ? null : $"v{random.Next(Math.Max(1, nextValue))}",
                    random.Next(5) == 0 ? null : $"v{nextValue++}"),
            };

            if (random.Next(100) < unknownPercent && input is not KvGet)
            {
                // Unknown outcome that never took effect: the state does not change.
                ops.Add(new Operation<KvInput, KvOutput>(client, input, null, call, null));
                continue;
            }

            var legal = KvModel.Instance.Step(current, input, null, out var next);
            if (!legal)
            {
                throw new InvalidOperationException("the model refused an unknown outcome");
            }

            KvOutput output = input switch
            {
                KvGet => new KvGetResult(current.Value, random.Next(2) == 0 ? current.Version : null),
                KvPut => new KvPutResult(),
                KvDelete => new KvDeleteResult(current.Value is null ? 0 : 1),
                KvCompareAndSet cas => new KvCompareAndSetResult(cas.Expected == current.Value),
                _ => throw new InvalidOperationException(),
            };
            state[key] = next;
            var unknown = random.Next(100) < unknownPercent;
            ops.Add(new Operation<KvInput, KvOutput>(client, input, unknown ? null : output, call, unknown ? null : ret));
        }

        return ops;
    }

    /// <summary>
    /// Makes one read stale: finds puts W1, W2 to a key and a read R with W1 returned before W2 was called
    /// and W2 returned before R was called, and makes R answer W1's value. Values are unique, so after W2
    /// nothing can make that value current again: the result is not linearizable. Returns false when the
    /// history has no such triple.
    /// </summary>
    public static bool TryMakeStaleRead(Random random, List<Operation<KvInput, KvOutput>> ops, out string description)
    {
        var candidates = new List<(int W1, int Read)>();
        for (var r = 0; r < ops.Count; r++)
        {
            if (ops[r] is not { Input: KvGet get, Completed: true } read)
            {
                continue;
            }

            // The latest completed put before the read, then a completed put entirely before that one.
            for (var w2 = r - 1; w2 >= 0 && w2 > r - 200; w2--)
            {
                if (ops[w2] is not { Input: KvPut p2, Completed: true } second || p2.Key != get.Key || second.ReturnTime >= read.CallTime)
                {
                    continue;
                }

                for (var w1 = w2 - 1; w1 >= 0 && w1 > w2 - 200; w1--)
                {
                    if (ops[w1] is { Input: KvPut p1, Completed: true } first && p1.Key == get.Key && first.ReturnTime < second.CallTime
                        && p1.Value != ((KvGetResult)read.Output!).Value)
                    {
                        candidates.Add((w1, r));
                        break;
                    }
                }

                break;
            }
        }

        if (candidates.Count == 0)
        {
            description = "";
            return false;
        }

        var (writer, reader) = candidates[random.Next(candidates.Count)];
        var stale = ((KvPut)ops[writer].Input).Value;
        var old = ops[reader];
        ops[reader] = new Operation<KvInput, KvOutput>(old.ClientId, old.Input, new KvGetResult(stale), old.CallTime, old.ReturnTime);
        description = $"read #{reader} ({old}) now answers \"{stale}\" written by #{writer} ({ops[writer]})";
        return true;
    }
}
