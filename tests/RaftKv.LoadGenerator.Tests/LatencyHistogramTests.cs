namespace RaftKv.LoadGenerator.Tests;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void An_empty_histogram_reports_zero_everywhere()
    {
        var h = new LatencyHistogram();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.Percentile(50));
        Assert.Equal(0, h.Percentile(100));
        Assert.Equal(0, h.Mean);
    }

    [Fact]
    public void Small_values_are_exact_and_percentiles_use_the_nearest_rank()
    {
        var h = new LatencyHistogram();
        for (var v = 1; v <= 100; v++)
        {
            h.Record(v);
        }

        Assert.Equal(50, h.Percentile(50));
        Assert.Equal(90, h.Percentile(90));
        Assert.Equal(99, h.Percentile(99));
        Assert.Equal(100, h.Percentile(100));
        Assert.Equal(1, h.Percentile(0));
        Assert.Equal(1, h.Min);
        Assert.Equal(100, h.Max);
        Assert.Equal(50.5, h.Mean, precision: 9);
    }

    [Fact]
    public void Large_values_stay_within_the_bucket_precision_and_never_below_the_true_percentile()
    {
        var h = new LatencyHistogram();
        var values = Enumerable.Range(0, 100_000).Select(i => 100L + (i * 37L)).ToArray();
        foreach (var v in values)
        {
            h.Record(v);
        }

        foreach (var p in new[] { 50.0, 90, 99, 99.9 })
        {
            var exact = values[(int)Math.Ceiling(p / 100 * values.Length) - 1];
            var reported = h.Percentile(p);
            Assert.True(reported >= exact && reported <= exact * (1 + (1.0 / 64)), $"p{p}: exact {exact}, reported {reported}");
        }

        Assert.Equal(values[^1], h.Percentile(100));
    }

    [Fact]
    public void Buckets_are_contiguous_and_each_value_lies_within_its_bucket()
    {
        var previous = -1;
        for (long v = 0; v < 1 << 16; v++)
        {
            var b = LatencyHistogram.BucketOf(v);
            Assert.True(b == previous || b == previous + 1, $"value {v}: bucket {b} after {previous}");
            Assert.True(LatencyHistogram.HighestIn(b) >= v, $"value {v} above its bucket's highest {LatencyHistogram.HighestIn(b)}");
            previous = b;
        }

        Assert.Equal(long.MaxValue, LatencyHistogram.HighestIn(LatencyHistogram.BucketOf(long.MaxValue)));
    }

    [Fact]
    public void Merging_per_client_histograms_equals_recording_everything_in_one()
    {
        var random = new Random(7);
        var values = Enumerable.Range(0, 5000).Select(_ => (long)random.Next(1, 2_000_000)).ToArray();
        var all = new LatencyHistogram();
        var parts = new[] { new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram() };
        for (var i = 0; i < values.Length; i++)
        {
            all.Record(values[i]);
            parts[i % 3].Record(values[i]);
        }

        var merged = new LatencyHistogram();
        merged.Merge(new LatencyHistogram());
        foreach (var part in parts)
        {
            merged.Merge(part);
        }

        Assert.Equal(all.Count, merged.Count);
        Assert.Equal(all.Min, merged.Min);
        Assert.Equal(all.Max, merged.Max);
        Assert.Equal(all.Sum, merged.Sum);
        foreach (var p in new[] { 1.0, 50, 90, 99, 100 })
        {
            Assert.Equal(all.Percentile(p), merged.Percentile(p));
        }
    }

    [Fact]
    public void Negative_latencies_and_percentiles_out_of_range_are_refused()
    {
        var h = new LatencyHistogram();
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Record(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Percentile(101));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Percentile(-0.5));
    }
}
