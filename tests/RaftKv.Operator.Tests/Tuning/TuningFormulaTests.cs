using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Tuning;

public sealed class TuningFormulaTests
{
    private static TimeSpan Ms(double value) => TimeSpan.FromMilliseconds(value);

    [Theory]
    // rttP50, rttP99, fsyncP99 (ms), aggressive, expected heartbeat, election (ms)
    [InlineData(0, 0, 0, false, 100, 1000)]             // floors: H_min 100 ms, E_floor 1 s
    [InlineData(1, 3, 2, false, 100, 1000)]             // a quiet LAN stays at the floors
    [InlineData(0, 0, 0, true, 30, 300)]                // Aggressive floors
    [InlineData(1, 3, 2, true, 30, 300)]
    [InlineData(100, 105, 2, false, 100, 1100)]         // 50 ms each way: 10·B = 1070 → 1100 (a multiple of H)
    [InlineData(101, 130, 2, false, 110, 1320)]         // H = ceil10(101) = 110; 10·B = 1320 = 12·H
    [InlineData(42, 80, 3, true, 50, 830 + 20)]         // H = 50; 10·B = 830 → rounded up to 850
    [InlineData(5, 10, 150, false, 150, 1650)]          // a slow disk drives H (fsync 150 ms) and B: 10·B = 1600 → 11·H
    [InlineData(300, 900, 5, false, 300, 9300)]         // 10·B = 9050 → 9300 (31·H)
    [InlineData(7000, 8000, 0, false, 5000, 50000)]     // H capped at 5 s, E capped at 50 s
    [InlineData(1000, 6000, 0, false, 1000, 50000)]     // 10·B = 60 s capped at 50 s (a multiple of 1 s)
    [InlineData(3000, 4900, 0, false, 3000, 48000)]     // 10·B = 49 s → 51 s would pass 50 s: largest multiple below, 48 s
    [InlineData(99, 99, 0, false, 100, 1000)]
    [InlineData(0.5, 0.9, 0.4, true, 30, 300)]
    public void Computes_the_designs_formula(double rttP50, double rttP99, double fsyncP99, bool aggressive, double heartbeat, double election)
    {
        var timing = TuningFormula.Compute(new TuningMeasurements(Ms(rttP50), Ms(rttP99), Ms(fsyncP99)), aggressive ? TuningProfile.Aggressive : TuningProfile.Default);

        Assert.Equal((Ms(heartbeat), Ms(election)), (timing.HeartbeatInterval, timing.ElectionTimeout));
    }

    [Fact]
    public void The_result_always_keeps_etcds_invariants()
    {
        var random = new Random(42);
        for (var i = 0; i < 5000; i++)
        {
            var p50 = Ms(random.NextDouble() * random.Next(1, 8000));
            var p99 = p50 + Ms(random.NextDouble() * random.Next(1, 8000));
            var fsync = Ms(random.NextDouble() * random.Next(1, 500));
            var profile = random.Next(2) == 0 ? TuningProfile.Default : TuningProfile.Aggressive;
            var measurements = new TuningMeasurements(p50, p99, fsync);
            var t = TuningFormula.Compute(measurements, profile);
            var seen = $"{measurements} {profile} -> {t}";

            Assert.True(t.HeartbeatInterval >= TuningFormula.MinHeartbeat(profile) && t.HeartbeatInterval <= TimeSpan.FromSeconds(5), seen);
            Assert.True(t.HeartbeatInterval.Ticks % TimeSpan.FromMilliseconds(10).Ticks == 0, seen);
            Assert.True(t.ElectionTimeout >= t.HeartbeatInterval * 10, seen);
            Assert.True(t.ElectionTimeout >= TuningFormula.ElectionFloor(profile), seen);
            Assert.True(t.ElectionTimeout <= TimeSpan.FromSeconds(50), seen);
            Assert.True(t.ElectionTimeout.Ticks % t.HeartbeatInterval.Ticks == 0, seen);
            Assert.True(t.HeartbeatInterval >= p50 || t.HeartbeatInterval == TimeSpan.FromSeconds(5), seen);
            Assert.True(t.ElectionTimeout >= (p99 + fsync) * 10 || t.ElectionTimeout > TimeSpan.FromSeconds(50) - t.HeartbeatInterval, seen);
        }
    }

    [Fact]
    public void Negative_latencies_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TuningFormula.Compute(new TuningMeasurements(Ms(-1), Ms(1), Ms(1)), TuningProfile.Default));
    }

    [Theory]
    [InlineData(100, 1000, 1, "1.103s-2.103s")]
    [InlineData(30, 300, 0.5, "332ms-632ms")]       // rounded up to whole milliseconds
    [InlineData(100, 1100, 100, "1.5s-2.6s")]
    public void Predicted_failover_is_E_to_2E_plus_H_plus_three_round_trips(double heartbeat, double election, double rtt, string expected)
    {
        Assert.Equal(expected, TuningFormula.PredictedFailover(new RaftTiming(Ms(heartbeat), Ms(election)), Ms(rtt)));
    }

    [Theory]
    [InlineData(10, false)]
    [InlineData(10.1, true)]
    [InlineData(25, true)]
    public void Fsync_p99_above_10ms_is_a_slow_disk(double fsync, bool slow)
    {
        Assert.Equal(slow, TuningFormula.IsSlowDisk(new TuningMeasurements(Ms(1), Ms(2), Ms(fsync))));
    }

    [Fact]
    public void Measurements_combine_to_the_slowest_pair_and_disk()
    {
        var combined = TuningMeasurements.Combine([(Ms(1), Ms(5)), (Ms(3), Ms(4)), (Ms(2), Ms(9))], [Ms(2), Ms(7)]);
        Assert.Equal(new TuningMeasurements(Ms(3), Ms(9), Ms(7)), combined);
        Assert.Null(TuningMeasurements.Combine([], []));
        Assert.Equal(new TuningMeasurements(TimeSpan.Zero, TimeSpan.Zero, Ms(4)), TuningMeasurements.Combine([], [Ms(4)]));
    }
}
