using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Tuning;

/// <summary>
/// Auto tuning under noisy measurements (the defaults: 3 sustained samples, rises capped at 2x per step, 50 s
/// hard cap). Under heavy load fsync p99 jumped 10x for seconds and undamped tuning set election timeouts of
/// 7–44 s; these tables pin what happens now.
/// </summary>
public sealed class TuningDampingTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);
    private static readonly TuningPolicyOptions Defaults = new() { QuietPeriod = TimeSpan.FromSeconds(30) };
    private static readonly RaftClusterTuning Auto = new();
    private static readonly RaftTiming EtcdDefault = RaftTiming.EtcdDefault; // 100ms / 1s

    private static TimeSpan Ms(double value) => TimeSpan.FromMilliseconds(value);

    private static TuningMeasurements Sample(double rttP50, double rttP99, double fsyncP99) => new(Ms(rttP50), Ms(rttP99), Ms(fsyncP99));

    private static readonly TuningMeasurements Calm = Sample(0.3, 1, 4);           // → 100ms / 1s
    private static readonly TuningMeasurements FsyncBurst = Sample(0.3, 1, 400);   // → 400ms / 4.01s → 4.4s
    private static readonly TuningMeasurements Delay50 = Sample(100, 110, 4);      // → 100ms / 1.14s → 1.2s
    private static readonly TuningMeasurements Absurd = Sample(300, 2000, 9000);   // → 5s / 50s (hard caps)

    private static TuningDecision Decide(RaftTiming current, TuningMeasurements latest, params TuningMeasurements[] before) =>
        TuningPolicy.Decide(new TuningInputs(Auto, current, latest, T0, null, null, before), Defaults);

    public static TheoryData<string, string, string> Rises => new()
    {
        // name, samples oldest first (the last is the latest) → heartbeat/election after the decision, from 100ms/1s
        { "one burst sample after calm ones", "Calm Calm FsyncBurst", "100ms/1s" },
        { "two burst samples", "Calm FsyncBurst FsyncBurst", "100ms/1s" },
        { "burst sustained over 3 samples: one step of at most 2x", "FsyncBurst FsyncBurst FsyncBurst", "200ms/2s" },
        { "burst, calm, burst", "FsyncBurst Calm FsyncBurst", "100ms/1s" },
        { "50 ms delay sustained: within one step", "Delay50 Delay50 Delay50", "100ms/1.2s" },
        { "delay sustained under a burst: the delay's level", "Delay50 FsyncBurst Delay50", "100ms/1.2s" },
        { "fewer samples than needed", "FsyncBurst FsyncBurst", "100ms/1s" },
    };

    [Theory]
    [MemberData(nameof(Rises))]
    public void A_rise_applies_only_when_sustained_and_by_one_capped_step(string situation, string sampleNames, string expected)
    {
        var samples = sampleNames.Split(' ').Select(n => n switch
        {
            "Calm" => Calm,
            "FsyncBurst" => FsyncBurst,
            "Delay50" => Delay50,
            _ => throw new ArgumentOutOfRangeException(nameof(sampleNames), n, "unknown sample"),
        }).ToArray();
        var decision = Decide(EtcdDefault, samples[^1], samples[..^1]);
        var got = $"{GoDuration.Format(decision.Timing.HeartbeatInterval)}/{GoDuration.Format(decision.Timing.ElectionTimeout)}";
        Assert.True(expected == got, $"{situation}: expected {expected}, got {got} ({decision.Reason})");
        Assert.Equal(decision.Timing != EtcdDefault, decision.Changed);
    }

    [Fact]
    public void A_rise_held_back_says_so_and_asks_to_look_again_soon()
    {
        var held = Decide(EtcdDefault, FsyncBurst, Calm, Calm);
        Assert.False(held.Changed);
        Assert.True(held.RaisePending);
        Assert.Contains("3 samples in a row", held.Reason, StringComparison.Ordinal);

        var capped = Decide(EtcdDefault, FsyncBurst, FsyncBurst, FsyncBurst);
        Assert.True(capped.RaisePending, "a capped step leaves more to climb");
        Assert.Contains("at most 2x per step toward heartbeat 400ms, election 4.4s", capped.Reason, StringComparison.Ordinal);

        Assert.False(Decide(EtcdDefault, Calm, Calm, Calm).RaisePending);
    }

    [Fact]
    public void A_sustained_jump_climbs_step_by_step_and_stops_at_the_formulas_value()
    {
        var timing = EtcdDefault;
        var steps = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var decision = Decide(timing, FsyncBurst, FsyncBurst, FsyncBurst);
            timing = decision.Timing;
            steps.Add($"{GoDuration.Format(timing.HeartbeatInterval)}/{GoDuration.Format(timing.ElectionTimeout)}");
        }

        Assert.Equal(["200ms/2s", "400ms/4s", "400ms/4.4s", "400ms/4.4s"], steps.Take(4));
        Assert.All(steps.Skip(2), s => Assert.Equal("400ms/4.4s", s));
    }

    [Fact]
    public void Capped_steps_come_one_per_sample_interval_however_often_reconciles_run()
    {
        var raisedAt = T0;
        var inputs = new TuningInputs(Auto, new RaftTiming(Ms(200), TimeSpan.FromSeconds(2)), FsyncBurst, raisedAt + Ms(300), null, null, [FsyncBurst, FsyncBurst], raisedAt);

        var tooSoon = TuningPolicy.Decide(inputs, Defaults);
        Assert.False(tooSoon.Changed, tooSoon.Reason);
        Assert.True(tooSoon.RaisePending);
        Assert.Contains("one step per 2s", tooSoon.Reason, StringComparison.Ordinal);

        var due = TuningPolicy.Decide(inputs with { Now = raisedAt + Defaults.SampleInterval }, Defaults);
        Assert.Equal(new RaftTiming(Ms(400), TimeSpan.FromSeconds(4)), due.Timing);
    }

    [Fact]
    public void Whatever_is_measured_the_hard_caps_hold_and_election_stays_a_multiple_of_heartbeat_at_least_5x()
    {
        var timing = EtcdDefault;
        for (var i = 0; i < 12; i++)
        {
            timing = Decide(timing, Absurd, Absurd, Absurd).Timing;
            Assert.True(timing.ElectionTimeout <= TimeSpan.FromSeconds(50), $"step {i}: {timing}");
            Assert.True(timing.HeartbeatInterval <= TimeSpan.FromSeconds(5), $"step {i}: {timing}");
            Assert.True(timing.ElectionTimeout >= timing.HeartbeatInterval * 5, $"step {i}: {timing}");
            Assert.Equal(0, timing.ElectionTimeout.Ticks % timing.HeartbeatInterval.Ticks);
        }

        Assert.Equal(new RaftTiming(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(50)), timing);
    }

    [Fact]
    public void Lowering_goes_only_as_far_as_the_highest_recent_sample_allows()
    {
        var raised = new RaftTiming(Ms(400), TimeSpan.FromMilliseconds(4400));
        var options = Defaults with { QuietPeriod = TimeSpan.Zero };

        // Calm now, but a burst is still in the window: lowering waits for it to leave.
        var burstInWindow = TuningPolicy.Decide(new TuningInputs(Auto, raised, Calm, T0, null, null, [FsyncBurst, Calm]), options);
        Assert.False(burstInWindow.Changed, burstInWindow.Reason);

        var allCalm = TuningPolicy.Decide(new TuningInputs(Auto, raised, Calm, T0, null, null, [Calm, Calm]), options);
        Assert.True(allCalm.Changed, allCalm.Reason);
        Assert.Equal(EtcdDefault, allCalm.Timing);
    }

    [Fact]
    public void Samples_are_kept_one_per_interval_and_only_as_many_as_needed()
    {
        IReadOnlyList<TimedMeasurements> kept = [];
        kept = TuningPolicy.Remember(kept, Calm, T0, Defaults);
        kept = TuningPolicy.Remember(kept, FsyncBurst, T0 + Ms(500), Defaults);   // same interval: replaces the figures
        Assert.Equal([new TimedMeasurements(T0, FsyncBurst)], kept);

        kept = TuningPolicy.Remember(kept, Calm, T0 + Ms(2000), Defaults);
        kept = TuningPolicy.Remember(kept, null, T0 + Ms(3000), Defaults);        // nothing measured: nothing kept
        kept = TuningPolicy.Remember(kept, Delay50, T0 + Ms(4000), Defaults);
        kept = TuningPolicy.Remember(kept, Calm, T0 + Ms(6500), Defaults);
        Assert.Equal([Calm, Delay50, Calm], kept.Select(k => k.Measurements));
        Assert.Equal([T0 + Ms(2000), T0 + Ms(4000), T0 + Ms(6500)], kept.Select(k => k.At));
    }

    [Fact]
    public void A_burst_of_reconciles_cannot_make_one_spike_look_sustained()
    {
        IReadOnlyList<TimedMeasurements> kept = [new(T0 - TimeSpan.FromSeconds(4), Calm), new(T0 - TimeSpan.FromSeconds(2), Calm)];
        var timing = EtcdDefault;
        for (var i = 0; i < 5; i++)
        {
            var now = T0 + Ms(100 * i);
            kept = TuningPolicy.Remember(kept, FsyncBurst, now, Defaults);
            var decision = TuningPolicy.Decide(new TuningInputs(Auto, timing, FsyncBurst, now, null, null, [.. kept.SkipLast(1).Select(k => k.Measurements)]), Defaults);
            Assert.False(decision.Changed, $"reconcile {i}: {decision.Reason}");
        }
    }
}
