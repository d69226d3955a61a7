using System.Numerics;

namespace RaftKv.LoadGenerator;

/// <summary>
/// Latencies in whole microseconds, counted in log-linear buckets (values below 128 µs exactly, larger ones within
/// 1/64 = 1.6 %), like an HDR histogram with fixed precision. Recording is O(1) and allocation free; one histogram per
/// client, merged at the end. Not thread safe. Percentiles use the nearest-rank method and report the highest value the
/// bucket holds, capped at the largest value recorded (never below the true percentile by more than the bucket width).
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>Values below 2^ExactBits are their own bucket; above, the top ExactBits-1 bits after the leading one count.</summary>
    private const int ExactBits = 7;
    private const int HalfBucket = 1 << (ExactBits - 1);
    private const int BucketCount = (64 - ExactBits + 2) * HalfBucket;

    private readonly long[] _counts = new long[BucketCount];

    public long Count { get; private set; }

    public long Min { get; private set; } = long.MaxValue;

    public long Max { get; private set; }

    public double Sum { get; private set; }

    public double Mean => Count == 0 ? 0 : Sum / Count;

    public void Record(long micros)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(micros);
        _counts[BucketOf(micros)]++;
        Count++;
        Sum += micros;
        Min = Math.Min(Min, micros);
        Max = Math.Max(Max, micros);
    }

    public void Merge(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Count == 0)
        {
            return;
        }

        for (var i = 0; i < BucketCount; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        Sum += other.Sum;
        Min = Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The value at or below which <paramref name="percent"/> % of the recorded values lie (0 when empty).</summary>
    public long Percentile(double percent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(percent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        if (Count == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(percent / 100 * Count));
        long seen = 0;
        for (var i = 0; i < BucketCount; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Clamp(HighestIn(i), Min, Max);
            }
        }

        return Max;
    }

    internal static int BucketOf(long value)
    {
        if (value < 1L << ExactBits)
        {
            return (int)value;
        }

        var log2 = 63 - BitOperations.LeadingZeroCount((ulong)value);
        var shift = log2 - ExactBits + 1;
        var top = (int)(value >> shift);
        return ((shift + 1) * HalfBucket) + (top - HalfBucket);
    }

    internal static long HighestIn(int bucket)
    {
        if (bucket < 1 << ExactBits)
        {
            return bucket;
        }

        var shift = (bucket / HalfBucket) - 1;
        var top = (long)((bucket % HalfBucket) + HalfBucket);
        return ((top + 1) << shift) - 1;
    }
}
