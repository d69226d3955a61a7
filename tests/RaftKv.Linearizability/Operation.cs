namespace RaftKv.Linearizability;

/// <summary>
/// One client operation as it was observed from outside the system: what was asked, what came back,
/// and when. Times are in any monotonic unit (ticks of a virtual clock, or nanoseconds).
/// </summary>
/// <remarks>
/// An operation whose outcome is unknown (the client timed out, the connection broke) has no
/// <see cref="Output"/> and no <see cref="ReturnTime"/>: it may or may not have taken effect, at any
/// moment after it was invoked. Invariant: <c>Output is null</c> exactly when <c>ReturnTime is null</c>.
/// </remarks>
public sealed class Operation<TInput, TOutput>
    where TOutput : class
{
    public Operation(int clientId, TInput input, TOutput? output, long callTime, long? returnTime)
    {
        if ((output is null) != (returnTime is null))
        {
            throw new ArgumentException(
                "An operation has both an output and a return time (it completed) or neither (its outcome is unknown).");
        }

        if (returnTime < callTime)
        {
            throw new ArgumentException($"Operation returns at {returnTime}, before it was called at {callTime}.");
        }

        ClientId = clientId;
        Input = input;
        Output = output;
        CallTime = callTime;
        ReturnTime = returnTime;
    }

    /// <summary>Which client issued it; used only in explanations.</summary>
    public int ClientId { get; }

    public TInput Input { get; }

    /// <summary>What the system answered, or null when the outcome is unknown.</summary>
    public TOutput? Output { get; }

    /// <summary>When the client invoked it.</summary>
    public long CallTime { get; }

    /// <summary>When the client saw the answer, or null when the outcome is unknown.</summary>
    public long? ReturnTime { get; }

    /// <summary>True when the client saw an answer.</summary>
    public bool Completed => ReturnTime is not null;

    public override string ToString() =>
        Completed
            ? $"client {ClientId} [{CallTime}..{ReturnTime}] {Input} -> {Output}"
            : $"client {ClientId} [{CallTime}..?] {Input} -> (unknown outcome)";
}
