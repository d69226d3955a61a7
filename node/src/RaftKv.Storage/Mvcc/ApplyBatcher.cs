namespace RaftKv.Storage.Mvcc;

/// <summary>
/// Groups committed entries from many callers into few store transactions: while one batch commits, new commands queue up and
/// go together in the next one, capped at <see cref="MaxCommands"/> per transaction. Each caller's task completes after the
/// transaction holding its command committed, so an answer never reveals data a crash could take back.
/// Commands must be enqueued in log order (the apply loop is the only producer in a server).
/// </summary>
public sealed class ApplyBatcher : IDisposable
{
    private readonly MvccStore _store;
    private readonly object _gate = new();
    private readonly List<(ApplyCommand Command, TaskCompletionSource<ApplyResult> Done)> _queue = [];
    private readonly Thread _worker;
    private bool _stopping;

    public ApplyBatcher(MvccStore store, int maxCommands = 10_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxCommands, 1);
        _store = store;
        MaxCommands = maxCommands;
        _worker = new Thread(Run) { IsBackground = true, Name = "mvcc-apply" };
        _worker.Start();
    }

    /// <summary>Most commands in one store transaction.</summary>
    public int MaxCommands { get; }

    /// <summary>Number of store transactions committed so far.</summary>
    public long Batches { get; private set; }

    public Task<ApplyResult> ApplyAsync(ApplyCommand command)
    {
        var done = new TaskCompletionSource<ApplyResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _queue.Add((command, done));
            if (_queue.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return done.Task;
    }

    private void Run()
    {
        while (true)
        {
            List<(ApplyCommand Command, TaskCompletionSource<ApplyResult> Done)> batch;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_queue.Count == 0)
                {
                    return;
                }

                var take = Math.Min(_queue.Count, MaxCommands);
                batch = _queue.GetRange(0, take);
                _queue.RemoveRange(0, take);
            }

            try
            {
                var results = _store.Apply([.. batch.Select(b => b.Command)]);
                Batches++;
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results[i]);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A storage failure (not a request error): nothing in the batch was committed.
                foreach (var (_, done) in batch)
                {
                    done.TrySetException(ex);
                }
            }
        }
    }

    /// <summary>Applies what is queued, then stops.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        _worker.Join();
    }
}
