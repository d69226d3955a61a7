namespace RaftKv.Linearizability.Tests;

/// <summary>
/// Differential test: on small random histories (linearizable or not), the checker's verdict must equal that of a
/// brute-force search straight from the definition, without memoization, pruning, partitioning or tightening.
/// </summary>
public sealed class BruteForceTests
{
    [Fact]
    public void Checker_agrees_with_brute_force_on_small_random_histories()
    {
        int legal = 0, illegal = 0;
        for (var seed = 0; seed < 4000; seed++)
        {
            var random = new Random(seed);
            var ops = RandomHistory(random, count: 2 + random.Next(6));

            var expected = BruteForce(ops);
            var actual = LinearizabilityChecker.Check(KvModel.Instance, ops);

            Assert.True(
                actual.Outcome == (expected ? CheckOutcome.Ok : CheckOutcome.Illegal),
                $"seed {seed}: brute force says {(expected ? "linearizable" : "not linearizable")}, checker says {actual}\n" +
                string.Join("\n", ops.Select(o => "  " + o)));
            _ = expected ? legal++ : illegal++;
        }

        // Both verdicts must be well represented, or the comparison proves little.
        Assert.True(legal > 800 && illegal > 800, $"{legal} linearizable and {illegal} non-linearizable histories");
    }

    /// <summary>Random operations on two keys over two values, random intervals, random (often wrong) answers.</summary>
    private static List<Operation<KvInput, KvOutput>> RandomHistory(Random random, int count)
    {
        var ops = new List<Operation<KvInput, KvOutput>>();
        string? Value() => random.Next(3) switch { 0 => null, 1 => "a", _ => "b" };
        for (var i = 0; i < count; i++)
        {
            var key = random.Next(4) == 0 ? "y" : "x";
            var call = (long)random.Next(20);
            long? ret = random.Next(5) == 0 ? null : call + random.Next(8);
            KvInput input;
            KvOutput output;
            switch (random.Next(4))
            {
                case 0:
                    input = new KvGet(key);
                    output = new KvGetResult(Value(), random.Next(3) == 0 ? random.Next(3) : null);
                    break;
                case 1:
                    input = new KvPut(key, random.Next(2) == 0 ? "a" : "b");
                    output = new KvPutResult();
                    break;
                case 2:
                    input = new KvDelete(key);
                    output = new KvDeleteResult(random.Next(3) == 0 ? null : random.Next(2));
                    break;
                default:
                    input = new KvCompareAndSet(key, Value(), Value());
                    output = new KvCompareAndSetResult(random.Next(2) == 0);
                    break;
            }

            ops.Add(new Operation<KvInput, KvOutput>(random.Next(3), input, ret is null ? null : output, call, ret));
        }

        return ops;
    }

    /// <summary>
    /// The definition: some order of the operations extends real-time order (an operation may go next only if every
    /// operation that returned before it was called has gone already), every completed operation's answer is what
    /// the sequential store answers at its place, and unknown operations are placed anywhere or left out.
    /// </summary>
    private static bool BruteForce(List<Operation<KvInput, KvOutput>> ops)
    {
        var placed = new bool[ops.Count];
        var state = new Dictionary<string, KvKeyState>(StringComparer.Ordinal);

        bool Search()
        {
            if (Enumerable.Range(0, ops.Count).All(i => placed[i] || !ops[i].Completed))
            {
                return true;
            }

            for (var i = 0; i < ops.Count; i++)
            {
                if (placed[i] || !CanGoNext(i))
                {
                    continue;
                }

                var key = ops[i].Input.Key;
                var before = state.GetValueOrDefault(key, KvModel.Instance.Initial);
                if (!KvModel.Instance.Step(before, ops[i].Input, ops[i].Output, out var after))
                {
                    continue;
                }

                placed[i] = true;
                state[key] = after;
                if (Search())
                {
                    return true;
                }

                placed[i] = false;
                state[key] = before;
            }

            return false;
        }

        bool CanGoNext(int i) =>
            Enumerable.Range(0, ops.Count).All(j => placed[j] || j == i || ops[j].ReturnTime is not { } r || r >= ops[i].CallTime);

        return Search();
    }
}
