using Microsoft.Extensions.Time.Testing;
using RaftKv.Server.Observability;

namespace RaftKv.Server.Tests.Observability;

public sealed class LatencyWindowTests
{
    [Fact]
    public void Samples_older_than_the_maximum_age_leave_the_summary()
    {
        var time = new FakeTimeProvider();
        var window = new LatencyWindow(TimeSpan.FromMinutes(1), time);
        for (var i = 0; i < 100; i++)
        {
            window.Record(TimeSpan.FromMilliseconds(200)); // a delayed network
            time.Advance(TimeSpan.FromMilliseconds(500));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(200), window.Summarize().P99);

        for (var i = 0; i < 130; i++)
        {
            window.Record(TimeSpan.FromMilliseconds(1)); // the delay is gone
            time.Advance(TimeSpan.FromMilliseconds(500));
        }

        var summary = window.Summarize();
        Assert.True(summary.P99 == TimeSpan.FromMilliseconds(1), $"p99 {summary.P99} one minute after the delay ended");
        Assert.Equal(120, summary.Count); // one minute of probes every 500 ms, the boundary one included

        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(0, window.Summarize().Count);
    }

    [Fact]
    public void Without_a_maximum_age_the_last_1024_samples_count_however_old()
    {
        var window = new LatencyWindow();
        window.Record(TimeSpan.FromMilliseconds(5));
        Assert.Equal(1, window.Summarize().Count);
        Assert.Equal(TimeSpan.FromMilliseconds(5), window.Summarize().P50);
    }
}
