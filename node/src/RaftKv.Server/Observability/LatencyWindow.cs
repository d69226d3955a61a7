namespace RaftKv.Server.Observability;

/// <summary>Percentiles over a window of samples; count 0 means no sample yet.</summary>
internal readonly record struct LatencySummary(long Count, TimeSpan P50, TimeSpan P99, TimeSpan Max);

/// <summary>
/// The most recent <see cref="Capacity"/> latency samples, for p50/p99 answers that follow changes within minutes
/// (a cumulative histogram would never forget a slow morning). Thread-safe.
/// </summary>
internal sealed class LatencyWindow
{
    public const int Capacity = 1024;

    private readonly Lock _lock = new();
    private readonly double[] _seconds = new double[Capacity];
    private long _count;

    public void Record(TimeSpan sample)
    {
        lock (_lock)
        {
            _seconds[_count % Capacity] = Math.Max(0, sample.TotalSeconds);
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
            copy = _seconds.AsSpan(0, (int)Math.Min(count, Capacity)).ToArray();
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
