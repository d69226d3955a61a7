namespace RaftKv.Operator.Runtime;

/// <summary>How fast failed items are retried (client-go's defaults: 5 ms doubling to 1000 s per item, 10/s burst 100 overall).</summary>
internal sealed record WorkQueueOptions
{
    /// <summary>Delay of an item's first rate-limited retry; each further failure doubles it.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The per-item delay never exceeds this.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(1000);

    /// <summary>Rate-limited adds over all items, per second (a token bucket)...</summary>
    public double OverallRatePerSecond { get; init; } = 10;

    /// <summary>...with this many tokens available at once.</summary>
    public int OverallBurst { get; init; } = 100;
}

/// <summary>
/// The controller's work queue of keys (namespace/name). Invariants, as client-go's workqueue:
/// <list type="bullet">
/// <item>A key is queued at most once: adding a queued key does nothing (dedup).</item>
/// <item>A key being processed is never handed out again until <see cref="Done"/>; adds meanwhile mark it
/// dirty and it is queued again at Done, so no change is lost and no key is processed concurrently.</item>
/// <item><see cref="AddRateLimited"/> delays by the larger of the key's exponential backoff and the overall
/// token bucket; <see cref="Forget"/> resets the key's backoff after a success.</item>
/// </list>
/// Time comes from the injected <see cref="TimeProvider"/> (delayed adds use its timers).
/// </summary>
internal sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly WorkQueueOptions _options;
    private readonly LinkedList<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly Dictionary<TKey, (DateTimeOffset Due, ITimer Timer)> _waiting = [];
    private readonly SemaphoreSlim _available = new(0);
    private double _tokens;
    private DateTimeOffset _tokensAt;
    private bool _shutDown;

    public WorkQueue(TimeProvider time, WorkQueueOptions? options = null)
    {
        _time = time;
        _options = options ?? new WorkQueueOptions();
        _tokens = _options.OverallBurst;
        _tokensAt = time.GetUtcNow();
    }

    /// <summary>Keys queued and not yet handed out.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Keys waiting for a delayed add.</summary>
    public int WaitingCount
    {
        get
        {
            lock (_lock)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>Queue <paramref name="key"/> now (no effect if already queued; re-queued at Done if being processed).</summary>
    public void Add(TKey key)
    {
        var signal = false;
        lock (_lock)
        {
            if (_shutDown || !_dirty.Add(key))
            {
                return;
            }

            if (!_processing.Contains(key))
            {
                _queue.AddLast(key);
                signal = true;
            }
        }

        if (signal)
        {
            _available.Release();
        }
    }

    /// <summary>Queue <paramref name="key"/> after <paramref name="delay"/>; an earlier pending delayed add of it wins.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        lock (_lock)
        {
            if (_shutDown)
            {
                return;
            }

            var due = _time.GetUtcNow() + delay;
            if (_waiting.TryGetValue(key, out var pending))
            {
                if (pending.Due <= due)
                {
                    return;
                }

                pending.Timer.Dispose();
            }

            var timer = _time.CreateTimer(_ => Fire(key, due), null, delay, Timeout.InfiniteTimeSpan);
            _waiting[key] = (due, timer);
        }
    }

    /// <summary>Queue <paramref name="key"/> after its backoff (doubling per failure since the last Forget) and the overall limit.</summary>
    public TimeSpan AddRateLimited(TKey key)
    {
        TimeSpan delay;
        lock (_lock)
        {
            var failures = _failures.GetValueOrDefault(key);
            _failures[key] = failures + 1;
            var backoff = _options.BaseDelay * Math.Pow(2, Math.Min(failures, 62));
            var itemDelay = backoff > _options.MaxDelay || backoff < TimeSpan.Zero ? _options.MaxDelay : backoff;
            var bucketDelay = TakeToken();
            delay = itemDelay > bucketDelay ? itemDelay : bucketDelay;
        }

        AddAfter(key, delay);
        return delay;
    }

    /// <summary>How many rate-limited adds <paramref name="key"/> had since it was last forgotten.</summary>
    public int Failures(TKey key)
    {
        lock (_lock)
        {
            return _failures.GetValueOrDefault(key);
        }
    }

    /// <summary>The key succeeded: its next failure starts from the base delay again.</summary>
    public void Forget(TKey key)
    {
        lock (_lock)
        {
            _failures.Remove(key);
        }
    }

    /// <summary>The next key to process; null once the queue is shut down and empty of waiting consumers.</summary>
    public async Task<TKey?> TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await _available.WaitAsync(cancellationToken);
            lock (_lock)
            {
                if (_queue.First is { } first)
                {
                    _queue.RemoveFirst();
                    _processing.Add(first.Value);
                    _dirty.Remove(first.Value);
                    return first.Value;
                }

                if (_shutDown)
                {
                    // Wake the next consumer too: everyone leaves.
                    _available.Release();
                    return default;
                }
            }
        }
    }

    /// <summary>Processing of <paramref name="key"/> ended; it is queued again if added meanwhile.</summary>
    public void Done(TKey key)
    {
        var signal = false;
        lock (_lock)
        {
            _processing.Remove(key);
            if (_dirty.Contains(key) && !_shutDown)
            {
                _queue.AddLast(key);
                signal = true;
            }
        }

        if (signal)
        {
            _available.Release();
        }
    }

    /// <summary>Stop handing out keys: TakeAsync returns null, adds are ignored.</summary>
    public void ShutDown()
    {
        lock (_lock)
        {
            _shutDown = true;
            _queue.Clear();
            foreach (var (_, waiting) in _waiting)
            {
                waiting.Timer.Dispose();
            }

            _waiting.Clear();
        }

        _available.Release();
    }

    public void Dispose()
    {
        ShutDown();
        _available.Dispose();
    }

    private void Fire(TKey key, DateTimeOffset due)
    {
        lock (_lock)
        {
            // A later AddAfter with an earlier due time replaced this timer; only the current one adds.
            if (!_waiting.TryGetValue(key, out var pending) || pending.Due != due)
            {
                return;
            }

            pending.Timer.Dispose();
            _waiting.Remove(key);
        }

        Add(key);
    }

    /// <summary>Takes one token from the overall bucket (it may go negative: a debt paid by waiting) and returns how long until it is covered.</summary>
    private TimeSpan TakeToken()
    {
        var now = _time.GetUtcNow();
        var rate = _options.OverallRatePerSecond;
        _tokens = Math.Min(_options.OverallBurst, _tokens + (now - _tokensAt).TotalSeconds * rate);
        _tokensAt = now;
        _tokens -= 1;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / rate);
    }
}
