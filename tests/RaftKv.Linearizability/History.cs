namespace RaftKv.Linearizability;

/// <summary>
/// Records a history while a test runs: <see cref="Invoke"/> when a client sends a request,
/// <see cref="Complete"/> when it gets the answer. Operations never completed count as unknown outcomes.
/// Not thread-safe: callers that record from several threads lock around it.
/// </summary>
public sealed class History<TInput, TOutput>
    where TOutput : class
{
    private readonly List<Pending> _operations = [];

    /// <summary>Number of operations recorded so far (completed or not).</summary>
    public int Count => _operations.Count;

    /// <summary>Records an invocation and returns its handle for <see cref="Complete"/>.</summary>
    public int Invoke(int clientId, TInput input, long time)
    {
        _operations.Add(new Pending(clientId, input, time));
        return _operations.Count - 1;
    }

    /// <summary>Records the answer to the operation <paramref name="handle"/>.</summary>
    public void Complete(int handle, TOutput output, long time)
    {
        var pending = _operations[handle];
        if (pending.Output is not null)
        {
            throw new InvalidOperationException($"Operation {handle} ({pending.Input}) already completed.");
        }

        pending.Output = output;
        pending.ReturnTime = time;
    }

    /// <summary>The operations recorded so far, in invocation order.</summary>
    public IReadOnlyList<Operation<TInput, TOutput>> ToOperations() =>
        _operations.Select(p => new Operation<TInput, TOutput>(p.ClientId, p.Input, p.Output, p.CallTime, p.ReturnTime)).ToList();

    private sealed class Pending(int clientId, TInput input, long callTime)
    {
        public int ClientId { get; } = clientId;
        public TInput Input { get; } = input;
        public long CallTime { get; } = callTime;
        public TOutput? Output { get; set; }
        public long? ReturnTime { get; set; }
    }
}
