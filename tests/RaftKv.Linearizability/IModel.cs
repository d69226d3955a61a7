namespace RaftKv.Linearizability;

/// <summary>
/// The sequential specification a history is checked against. States are values: <see cref="Step"/>
/// never mutates its argument, and equal states (by <see cref="StateComparer"/>) behave the same.
/// </summary>
public interface IModel<TState, TInput, TOutput>
    where TOutput : class
{
    /// <summary>The state before any operation.</summary>
    TState Initial { get; }

    /// <summary>
    /// The state a sub-history starts from; lets a model leave out of its state what that part never
    /// observes (fewer distinct states, a smaller search). Defaults to <see cref="Initial"/>.
    /// </summary>
    TState InitialFor(SubHistory<TInput, TOutput> part) => Initial;

    /// <summary>Compares states for the search's memo table.</summary>
    IEqualityComparer<TState> StateComparer { get; }

    /// <summary>
    /// Applies <paramref name="input"/> to <paramref name="state"/>. Returns false when a sequential
    /// execution could not have answered <paramref name="output"/>. A null output means the outcome is
    /// unknown: the operation took effect and whatever it answered is acceptable, so with a null output
    /// it must return true in every state (the checker relies on this to place unknown operations last).
    /// </summary>
    bool Step(TState state, TInput input, TOutput? output, out TState next);

    /// <summary>
    /// True when the operation never changes the state (a read). Reads with unknown outcome constrain
    /// nothing, so the checker drops them.
    /// </summary>
    bool IsReadOnly(TInput input) => false;

    /// <summary>
    /// Optionally rewrites the history into one with the same verdict that is cheaper to search, for
    /// example by giving an operation with unknown outcome the latest return time it could have had
    /// (a write whose unique value somebody read took effect before that read returned). Operations of
    /// unknown outcome are the search's worst case: each may be placed anywhere after its call. The
    /// default returns the history unchanged.
    /// </summary>
    IReadOnlyList<Operation<TInput, TOutput>> Tighten(IReadOnlyList<Operation<TInput, TOutput>> history) => history;

    /// <summary>
    /// Splits a history into sub-histories that touch disjoint parts of the state (for a key-value
    /// store: one per key). A history is linearizable exactly when every part is (P-compositionality),
    /// and each part is much cheaper to search. The default keeps the history whole.
    /// </summary>
    IReadOnlyList<SubHistory<TInput, TOutput>> Partition(IReadOnlyList<Operation<TInput, TOutput>> history) =>
        [new SubHistory<TInput, TOutput>("whole history", history)];

    /// <summary>How a state reads in an explanation.</summary>
    string DescribeState(TState state) => state?.ToString() ?? "null";
}

/// <summary>A part of a history that can be checked on its own, with a name for explanations.</summary>
public sealed record SubHistory<TInput, TOutput>(string Name, IReadOnlyList<Operation<TInput, TOutput>> Operations)
    where TOutput : class;
