namespace RaftKv.Linearizability;

/// <summary>The verdict on a history.</summary>
public enum CheckOutcome
{
    /// <summary>Some order of the operations, respecting real time, is a legal sequential execution.</summary>
    Ok,

    /// <summary>No such order exists: the system was not linearizable.</summary>
    Illegal,

    /// <summary>The search ran out of its step or time budget before deciding.</summary>
    Unknown,
}

/// <summary>What the checker found, with a human-readable explanation when it is not <see cref="CheckOutcome.Ok"/>.</summary>
/// <param name="Outcome">The verdict.</param>
/// <param name="Explanation">For Illegal: the part of the history, the longest linearizable prefix found and the operation that
/// could not be placed after it. For Unknown: where the budget ran out. For Ok: a one-line summary.</param>
/// <param name="Steps">How many model steps the search took over all parts.</param>
/// <param name="FailedPart">The name of the sub-history that was Illegal or Unknown, if any.</param>
public sealed record CheckResult(CheckOutcome Outcome, string Explanation, long Steps, string? FailedPart)
{
    public bool IsOk => Outcome == CheckOutcome.Ok;

    public override string ToString() => $"{Outcome}: {Explanation}";
}

/// <summary>Limits on the search. The search is exponential in the worst case; a budget turns that into <see cref="CheckOutcome.Unknown"/>.</summary>
public sealed record CheckOptions
{
    /// <summary>Give up after this many model steps over all parts; null means no limit. Deterministic, unlike a timeout.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>Give up after this much time measured by <see cref="TimeProvider"/>; null means no limit.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Clock for <see cref="Timeout"/>.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How many operations of the linearizable prefix an Illegal explanation lists (the last ones).</summary>
    public int ExplanationPrefixLength { get; init; } = 20;
}
