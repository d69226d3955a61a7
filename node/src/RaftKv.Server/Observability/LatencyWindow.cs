namespace RaftKv.Server.Observability;

/// <summary>Percentiles over a window of samples; count 0 means no sample yet.</summary>
internal readonly record struct LatencySummary(long Count, TimeSpan P50, TimeSpan P99, TimeSpan Max);

/// <summary>
/// The most recent <see cref="Capacity"/> latency samples, for p50/p99 answers that follow changes within minutes
/// (a cumulative histogram would never forget a slow morning), optionally only those younger than a maximum age:
/// RTT probes every 500 ms fill 1024 samples in 8.5 minutes, so without it the operator's tuning kept a delay
/// that had ended for that long. Thread-safe.
/// </summary>
/// <param name="maxAge">Samples older than this are left out of summaries; null keeps the last <see cref="Capacity"/>, however old.</param>
/// <param name="time">The clock that stamps samples (only used with <paramref name="maxAge"/>).</param>
internal sealed class LatencyWindow(TimeSpan? maxAge = null, TimeProvider? time = null)
{
    public const int Capacity = 1024;

    private readonly Lock _lock = new();
    private readonly double[] _seconds = new double[Capacity];
    private readonly long[] _stamps = new long[Capacity];
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private long _count;

    public void Record(TimeSpan sample)
    {
        var stamp = maxAge is null ? 0 : _time.GetTimestamp();
        lock (_lock)
        {
            _seconds[_count % Capacity] = Math.Max(0, sample.TotalSeconds);
            _stamps[_count % Capacity] = stamp;
            _count++;
        }
    }

    public LatencySummary Summarize()
    {
        double[] copy;
        long count;
        lock (_lock)
        {
            count = _count;
            var kept = (int)Math.Min(count, Capacity);
            if (maxAge is { } age)
            {
                var now = _time.GetTimestamp();
                copy = [.. Enumerable.Range(0, kept).Where(i => _time.GetElapsedTime(_stamps[i], now) <= age).Select(i => _seconds[i])];
                count = copy.Length;
            }
            else
            {
                copy = _seconds.AsSpan(0, kept).ToArray();
            }
        }

        if (copy.Length == 0)
        {
            return new LatencySummary(0, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        }

        Array.Sort(copy);
        return new LatencySummary(count, TimeSpan.FromSeconds(Percentile(copy, 0.50)), TimeSpan.FromSeconds(Percentile(copy, 0.99)), TimeSpan.FromSeconds(copy[^1]));
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Percentile(double[] sorted, double q)
    {
        var rank = (int)Math.Ceiling(q * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
