using System.Globalization;
using System.Text;

namespace RaftKv.Linearizability;

/// <summary>
/// Decides whether a history is linearizable with respect to a model: the Wing–Gong search as improved
/// by Lowe and by Porcupine (github.com/anishathalye/porcupine).
/// </summary>
/// <remarks>
/// <para>The history is first split by <see cref="IModel{TState,TInput,TOutput}.Partition"/> and every part is
/// searched on its own (P-compositionality).</para>
/// <para>Each part becomes a doubly linked list of call and return events sorted by time (calls before returns
/// at equal times, so touching intervals count as concurrent). The search walks the list: at a call it tries
/// to linearize that operation now (the model accepts its output), and if so removes ("lifts") its call and
/// return from the list and starts again from the head; at a return it has met an operation that had to be
/// linearized already, so it backtracks, putting the last lifted operation back ("unlift") and trying the
/// next candidate. A memo table of (set of linearized operations, model state) prunes every configuration
/// already explored: from equal configurations the rest of the search is identical. The table also prunes
/// dominated configurations: with the same completed operations linearized and the same state, a
/// configuration that has linearized a superset of the unknown-outcome operations can do nothing the
/// smaller one cannot (those operations could always go last), so it is not explored again.</para>
/// <para>Operations with unknown outcome return at +infinity, so they may be linearized anywhere after their
/// call, including after everything else (which is the same as not having taken effect).</para>
/// </remarks>
public static class LinearizabilityChecker
{
    public static CheckResult Check<TState, TInput, TOutput>(
        IModel<TState, TInput, TOutput> model,
        IReadOnlyList<Operation<TInput, TOutput>> history,
        CheckOptions? options = null)
        where TOutput : class
    {
        options ??= new CheckOptions();
        var budget = new Budget(options);
        var relevant = history.Where(op => op.Completed || !model.IsReadOnly(op.Input)).ToList();
        var parts = model.Partition(model.Tighten(relevant));
        string? unknownPart = null;
        foreach (var part in parts)
        {
            var search = new Search<TState, TInput, TOutput>(model, part, budget, options);
            var outcome = search.Run();
            if (outcome == CheckOutcome.Illegal)
            {
                return new CheckResult(CheckOutcome.Illegal, search.ExplainIllegal(), budget.Steps, part.Name);
            }

            if (outcome == CheckOutcome.Unknown)
            {
                // Keep looking: another part may still be provably Illegal, which is the stronger verdict.
                unknownPart ??= part.Name;
                if (budget.Exhausted)
                {
                    break;
                }
            }
        }

        if (unknownPart is not null)
        {
            return new CheckResult(
                CheckOutcome.Unknown,
                string.Create(CultureInfo.InvariantCulture, $"search budget ran out after {budget.Steps} steps in part '{unknownPart}'"),
                budget.Steps,
                unknownPart);
        }

        return new CheckResult(
            CheckOutcome.Ok,
            string.Create(CultureInfo.InvariantCulture, $"linearizable: {history.Count} operations in {parts.Count} parts, {budget.Steps} steps"),
            budget.Steps,
            null);
    }

    /// <summary>Shared step and time budget over all parts of one check.</summary>
    private sealed class Budget(CheckOptions options)
    {
        private readonly long _start = options.TimeProvider.GetTimestamp();

        public long Steps { get; private set; }

        public bool Exhausted { get; private set; }

        /// <summary>Counts one step; returns false once the budget is spent.</summary>
        public bool Take()
        {
            Steps++;
            if (options.MaxSteps is { } max && Steps > max)
            {
                Exhausted = true;
            }
            else if (options.Timeout is { } timeout && (Steps & 1023) == 0
                && options.TimeProvider.GetElapsedTime(_start) > timeout)
            {
                Exhausted = true;
            }

            return !Exhausted;
        }
    }

    /// <summary>A call or return event in the search list.</summary>
    private sealed class Event(int operation, bool isCall, long time)
    {
        public int Operation { get; } = operation;
        public bool IsCall { get; } = isCall;
        public long Time { get; } = time;

        /// <summary>For a call, its return event (always later in the list).</summary>
        public Event? Return { get; set; }
        public Event? Previous { get; set; }
        public Event? Next { get; set; }
    }

    private sealed class Search<TState, TInput, TOutput>
        where TOutput : class
    {
        private readonly IModel<TState, TInput, TOutput> _model;
        private readonly SubHistory<TInput, TOutput> _part;
        private readonly IReadOnlyList<Operation<TInput, TOutput>> _ops;
        private readonly Budget _budget;
        private readonly CheckOptions _options;
        private readonly Event _head = new(-1, isCall: true, long.MinValue);

        // Best attempt so far, for the explanation: the deepest linearized prefix at which the search
        // met a return it could not get past.
        private List<(int Operation, TState After)> _bestPrefix = [];
        private int _bestStuckOperation = -1;
        private List<int> _bestPending = [];
        private TState _bestState;

        public Search(IModel<TState, TInput, TOutput> model, SubHistory<TInput, TOutput> part, Budget budget, CheckOptions options)
        {
            _model = model;
            _part = part;
            _ops = part.Operations;
            _budget = budget;
            _options = options;
            _bestState = model.InitialFor(part);
        }

        public CheckOutcome Run()
        {
            BuildEventList();
            var linearized = new LinearizedSet(_ops.Select(op => op.Completed).ToArray());
            var memo = new Dictionary<ulong, List<LinearizedSet.Memo<TState>>>();
            var stack = new Stack<(Event Call, TState Before)>();
            var comparer = _model.StateComparer;
            var state = _model.InitialFor(_part);
            var entry = _head.Next;
            var completedLeft = _ops.Count(op => op.Completed);

            // Done once every completed operation is linearized: the unknown ones left over go last,
            // which is always legal (a model accepts an unknown outcome in any state) and is the same
            // as their never having taken effect.
            while (completedLeft > 0)
            {
                // A completed operation is still unlinearized, so its return (at a finite time) is still
                // in the list ahead of the cursor: the walk cannot run off the end.
                if (entry!.IsCall)
                {
                    if (!_budget.Take())
                    {
                        return CheckOutcome.Unknown;
                    }

                    var op = _ops[entry.Operation];
                    if (_model.Step(state, op.Input, op.Output, out var next))
                    {
                        linearized.Add(entry.Operation);
                        if (Remember(memo, linearized, next, comparer))
                        {
                            completedLeft -= op.Completed ? 1 : 0;
                            stack.Push((entry, state));
                            state = next;
                            Lift(entry);
                            entry = _head.Next;
                            continue;
                        }

                        linearized.Remove(entry.Operation);
                    }

                    entry = entry.Next;
                }
                else
                {
                    // This operation returned before it was linearized: the current prefix is a dead end.
                    if (_bestStuckOperation < 0 || stack.Count > _bestPrefix.Count)
                    {
                        RecordBest(stack, state, entry);
                    }

                    if (stack.Count == 0)
                    {
                        return CheckOutcome.Illegal;
                    }

                    var (call, before) = stack.Pop();
                    completedLeft += _ops[call.Operation].Completed ? 1 : 0;
                    linearized.Remove(call.Operation);
                    state = before;
                    Unlift(call);
                    entry = call.Next;
                }
            }

            return CheckOutcome.Ok;
        }

        /// <summary>
        /// Adds the configuration to the memo table; false when it (or a configuration dominating it) was
        /// already there, in which case exploring it again cannot succeed where the earlier one did not.
        /// </summary>
        private static bool Remember(
            Dictionary<ulong, List<LinearizedSet.Memo<TState>>> memo,
            LinearizedSet linearized,
            TState state,
            IEqualityComparer<TState> comparer)
        {
            var key = linearized.CompletedHash ^ ((ulong)(uint)comparer.GetHashCode(state!) * 0x9E3779B97F4A7C15UL);
            if (!memo.TryGetValue(key, out var bucket))
            {
                memo[key] = [linearized.Snapshot(state)];
                return true;
            }

            foreach (var seen in bucket)
            {
                if (linearized.IsDominatedBy(seen) && comparer.Equals(seen.State, state))
                {
                    return false;
                }
            }

            bucket.Add(linearized.Snapshot(state));
            return true;
        }

        private void BuildEventList()
        {
            var events = new List<Event>(_ops.Count * 2);
            for (var i = 0; i < _ops.Count; i++)
            {
                var call = new Event(i, isCall: true, _ops[i].CallTime);
                var ret = new Event(i, isCall: false, _ops[i].ReturnTime ?? long.MaxValue);
                call.Return = ret;
                events.Add(call);
                events.Add(ret);
            }

            // Calls sort before returns at equal time; ties otherwise broken by operation index so the
            // search (and its explanation) is deterministic.
            events.Sort(static (a, b) =>
            {
                var byTime = a.Time.CompareTo(b.Time);
                if (byTime != 0)
                {
                    return byTime;
                }

                if (a.IsCall != b.IsCall)
                {
                    return a.IsCall ? -1 : 1;
                }

                return a.Operation.CompareTo(b.Operation);
            });

            var previous = _head;
            foreach (var e in events)
            {
                previous.Next = e;
                e.Previous = previous;
                previous = e;
            }
        }

        /// <summary>Takes a call and its return out of the list (the operation is linearized).</summary>
        private static void Lift(Event call)
        {
            call.Previous!.Next = call.Next;
            call.Next!.Previous = call.Previous;
            var ret = call.Return!;
            ret.Previous!.Next = ret.Next;
            if (ret.Next is not null)
            {
                ret.Next.Previous = ret.Previous;
            }
        }

        /// <summary>Undoes <see cref="Lift"/>; must be applied in reverse order of lifting.</summary>
        private static void Unlift(Event call)
        {
            var ret = call.Return!;
            ret.Previous!.Next = ret;
            if (ret.Next is not null)
            {
                ret.Next.Previous = ret;
            }

            call.Previous!.Next = call;
            call.Next!.Previous = call;
        }

        private void RecordBest(Stack<(Event Call, TState Before)> stack, TState state, Event stuckReturn)
        {
            var prefix = new List<(int, TState)>(stack.Count);
            var frames = stack.ToArray(); // top first
            for (var i = frames.Length - 1; i >= 0; i--)
            {
                var after = i == 0 ? state : frames[i - 1].Before;
                prefix.Add((frames[i].Call.Operation, after));
            }

            _bestPrefix = prefix;
            _bestStuckOperation = stuckReturn.Operation;
            _bestState = state;
            _bestPending = [];
            for (var e = _head.Next; e is not null && e != stuckReturn; e = e.Next)
            {
                if (e.IsCall && e.Operation != stuckReturn.Operation)
                {
                    _bestPending.Add(e.Operation);
                }
            }
        }

        public string ExplainIllegal()
        {
            var text = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            text.Append(inv, $"not linearizable: part '{_part.Name}' ({_ops.Count} operations)").AppendLine();
            text.Append(inv, $"longest linearizable prefix found: {_bestPrefix.Count} operations").AppendLine();
            var skip = Math.Max(0, _bestPrefix.Count - _options.ExplanationPrefixLength);
            if (skip > 0)
            {
                text.Append(inv, $"  ... {skip} earlier operations ...").AppendLine();
            }

            for (var i = skip; i < _bestPrefix.Count; i++)
            {
                var (op, after) = _bestPrefix[i];
                text.Append(inv, $"  {i + 1}. {_ops[op]}    => state {_model.DescribeState(after)}").AppendLine();
            }

            text.Append(inv, $"state after the prefix: {_model.DescribeState(_bestState)}").AppendLine();
            if (_bestStuckOperation >= 0)
            {
                var stuck = _ops[_bestStuckOperation];
                text.Append(inv, $"cannot place next: {stuck}").AppendLine();
                text.Append(inv, $"  it returned at {stuck.ReturnTime}, so it must take effect before then, but no order of it and the operations pending with it is legal from that state.").AppendLine();
                if (_bestPending.Count > 0)
                {
                    text.Append("  pending with it:").AppendLine();
                    foreach (var op in _bestPending.Take(10))
                    {
                        text.Append(inv, $"    {_ops[op]}").AppendLine();
                    }

                    if (_bestPending.Count > 10)
                    {
                        text.Append(inv, $"    ... and {_bestPending.Count - 10} more").AppendLine();
                    }
                }
            }

            return text.ToString();
        }
    }

    /// <summary>
    /// The set of linearized operations as two bitsets, one over completed operations and one over
    /// operations of unknown outcome, with an incrementally maintained Zobrist hash of the completed
    /// part (XOR of a fixed pseudo-random word per member) so a memo lookup hashes in O(1).
    /// </summary>
    private sealed class LinearizedSet
    {
        private readonly ulong[] _completed;
        private readonly ulong[] _unknown;
        private readonly int[] _bit;          // operation -> bit index in its bitset
        private readonly bool[] _isCompleted; // operation -> which bitset
        private readonly ulong[] _keys;       // operation -> Zobrist word (completed operations only)

        public LinearizedSet(bool[] completed)
        {
            _isCompleted = completed;
            _bit = new int[completed.Length];
            _keys = new ulong[completed.Length];
            int completedCount = 0, unknownCount = 0;
            var x = 0x243F6A8885A308D3UL; // fixed seed: same hashes every run
            for (var i = 0; i < completed.Length; i++)
            {
                _bit[i] = completed[i] ? completedCount++ : unknownCount++;

                // SplitMix64
                x += 0x9E3779B97F4A7C15UL;
                var z = x;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                _keys[i] = z ^ (z >> 31);
            }

            _completed = new ulong[(completedCount + 63) / 64];
            _unknown = new ulong[(unknownCount + 63) / 64];
        }

        public ulong CompletedHash { get; private set; }

        public void Add(int operation)
        {
            var bit = _bit[operation];
            if (_isCompleted[operation])
            {
                _completed[bit >> 6] |= 1UL << (bit & 63);
                CompletedHash ^= _keys[operation];
            }
            else
            {
                _unknown[bit >> 6] |= 1UL << (bit & 63);
            }
        }

        public void Remove(int operation)
        {
            var bit = _bit[operation];
            if (_isCompleted[operation])
            {
                _completed[bit >> 6] &= ~(1UL << (bit & 63));
                CompletedHash ^= _keys[operation];
            }
            else
            {
                _unknown[bit >> 6] &= ~(1UL << (bit & 63));
            }
        }

        public Memo<TState> Snapshot<TState>(TState state) => new((ulong[])_completed.Clone(), (ulong[])_unknown.Clone(), state);

        /// <summary>
        /// True when <paramref name="seen"/> linearized the same completed operations and a subset of
        /// the unknown ones (the caller compares the states).
        /// </summary>
        public bool IsDominatedBy<TState>(Memo<TState> seen)
        {
            if (!_completed.AsSpan().SequenceEqual(seen.Completed))
            {
                return false;
            }

            for (var i = 0; i < _unknown.Length; i++)
            {
                if ((seen.Unknown[i] & ~_unknown[i]) != 0)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>A configuration already explored (or being explored on the current path).</summary>
        public sealed record Memo<TState>(ulong[] Completed, ulong[] Unknown, TState State);
    }
}
