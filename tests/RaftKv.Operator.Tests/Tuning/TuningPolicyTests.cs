using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Tuning;

public sealed class TuningPolicyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    // One sample is enough and rises are not capped here: these tests are about direction, hysteresis and the
    // quiet period; TuningDampingTests covers sustained samples and capped steps (the defaults).
    private static readonly TuningPolicyOptions Options = new() { QuietPeriod = TimeSpan.FromMinutes(10), Hysteresis = 0.2, SustainedSamples = 1, MaxRaiseFactor = 100 };
    private static readonly RaftClusterTuning Auto = new();
    private static readonly TuningMeasurements Lan = new(Ms(1), Ms(3), Ms(2));           // → 100 ms / 1 s
    private static readonly TuningMeasurements Delayed = new(Ms(100), Ms(105), Ms(2));   // → 100 ms / 1.1 s
    private static readonly TuningMeasurements Wan = new(Ms(200), Ms(300), Ms(2));       // → 200 ms / 3.02 s → 3.2 s

    private static TimeSpan Ms(double value) => TimeSpan.FromMilliseconds(value);

    private static RaftTiming Timing(double heartbeat, double election) => new(Ms(heartbeat), Ms(election));

    private static TuningDecision Decide(RaftTiming? current, TuningMeasurements? measurements, DateTimeOffset now,
        DateTimeOffset? lastLeaderChange = null, DateTimeOffset? lowerWantedSince = null, RaftClusterTuning? spec = null) =>
        TuningPolicy.Decide(new TuningInputs(spec ?? Auto, current, measurements, now, lastLeaderChange, lowerWantedSince), Options);

    [Fact]
    public void Without_measurements_etcds_defaults_apply()
    {
        var first = Decide(null, null, T0);
        Assert.Equal(RaftTiming.EtcdDefault, first.Timing);
        Assert.True(first.Changed);
        Assert.Contains("no measurements yet", first.Reason, StringComparison.Ordinal);

        var later = Decide(Timing(300, 3000), null, T0);
        Assert.Equal(Timing(300, 3000), later.Timing);
        Assert.False(later.Changed);
    }

    [Fact]
    public void A_spec_without_a_profile_takes_the_operators_default_and_a_named_profile_wins()
    {
        var aggressiveByDefault = Options with { DefaultProfile = TuningProfile.Aggressive };
        var unnamed = TuningPolicy.Decide(new TuningInputs(Auto, null, Lan, T0, null, null), aggressiveByDefault);
        Assert.Equal(Timing(30, 300), unnamed.Timing);

        var named = new RaftClusterTuning { Profile = TuningProfile.Default };
        var decision = TuningPolicy.Decide(new TuningInputs(named, null, Lan, T0, null, null), aggressiveByDefault);
        Assert.Equal(Timing(100, 1000), decision.Timing);

        Assert.Equal(Timing(100, 1000), Decide(null, Lan, T0).Timing); // the operator's own default is Default
    }

    [Fact]
    public void The_first_measurement_applies_at_once()
    {
        var decision = Decide(null, Wan, T0);
        Assert.Equal(Timing(200, 3200), decision.Timing);
        Assert.True(decision.Changed);
        Assert.Contains("first measurement", decision.Reason, StringComparison.Ordinal);
        Assert.Contains("RTT p50 200ms", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Higher_values_apply_at_once_even_right_after_a_leader_change()
    {
        var decision = Decide(Timing(100, 1000), Wan, T0, lastLeaderChange: T0 - TimeSpan.FromSeconds(1));
        Assert.Equal(Timing(200, 3200), decision.Timing);
        Assert.True(decision.Changed);
        Assert.Contains("raised at once", decision.Reason, StringComparison.Ordinal);
        Assert.Null(decision.LowerWantedSince);
    }

    [Fact]
    public void Any_rise_applies_even_a_small_one()
    {
        // 50 ms each way between pods: the formula moves election from 1 s to 1.1 s, and that applies.
        var up = Decide(Timing(100, 1000), Delayed, T0);
        Assert.True(up.Changed);
        Assert.Equal(Timing(100, 1100), up.Timing);
    }

    [Fact]
    public void Lowering_by_less_than_the_hysteresis_band_is_ignored()
    {
        var down = Decide(Timing(100, 1100), Lan, T0);
        Assert.False(down.Changed);
        Assert.Equal(Timing(100, 1100), down.Timing);
        Assert.Null(down.LowerWantedSince);
        Assert.Contains("at most 20% below", down.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Lower_values_wait_for_the_quiet_period()
    {
        var current = Timing(200, 3200);

        var first = Decide(current, Lan, T0);
        Assert.False(first.Changed);
        Assert.Equal(current, first.Timing);
        Assert.Equal(T0, first.LowerWantedSince);
        Assert.Contains("without leader changes, until 2026-11-24T12:10:00Z", first.Reason, StringComparison.Ordinal);

        var stillWaiting = Decide(current, Lan, T0 + TimeSpan.FromMinutes(9), lowerWantedSince: first.LowerWantedSince);
        Assert.False(stillWaiting.Changed);
        Assert.Equal(T0, stillWaiting.LowerWantedSince);

        var lowered = Decide(current, Lan, T0 + TimeSpan.FromMinutes(10), lowerWantedSince: stillWaiting.LowerWantedSince);
        Assert.True(lowered.Changed);
        Assert.Equal(Timing(100, 1000), lowered.Timing);
        Assert.Contains("lowered after 10m0s without leader changes", lowered.Reason, StringComparison.Ordinal);
        Assert.Null(lowered.LowerWantedSince);
    }

    [Fact]
    public void A_leader_change_restarts_the_quiet_period()
    {
        var current = Timing(200, 3200);
        var leaderChange = T0 + TimeSpan.FromMinutes(8);

        var blocked = Decide(current, Lan, T0 + TimeSpan.FromMinutes(12), lastLeaderChange: leaderChange, lowerWantedSince: T0);
        Assert.False(blocked.Changed);
        Assert.Contains("until 2026-11-24T12:18:00Z", blocked.Reason, StringComparison.Ordinal);

        var lowered = Decide(current, Lan, T0 + TimeSpan.FromMinutes(18), lastLeaderChange: leaderChange, lowerWantedSince: T0);
        Assert.True(lowered.Changed);
    }

    [Fact]
    public void A_leader_change_long_before_does_not_delay_lowering()
    {
        var lowered = Decide(Timing(200, 3200), Lan, T0 + TimeSpan.FromMinutes(10), lastLeaderChange: T0 - TimeSpan.FromDays(1), lowerWantedSince: T0);
        Assert.True(lowered.Changed);
    }

    [Fact]
    public void When_lower_values_stop_being_wanted_the_wait_resets()
    {
        var back = Decide(Timing(200, 3200), Wan, T0 + TimeSpan.FromMinutes(5), lowerWantedSince: T0);
        Assert.False(back.Changed);
        Assert.Null(back.LowerWantedSince);
    }

    [Fact]
    public void A_raise_of_one_value_does_not_lower_the_other()
    {
        // Heartbeat wants 200 ms (up), election is already at 5 s (above the 3.2 s wanted): only raise.
        var decision = Decide(Timing(100, 5000), Wan, T0);
        Assert.Equal(Timing(200, 5000), decision.Timing);
        Assert.True(decision.Changed);
    }

    [Fact]
    public void Manual_mode_takes_the_spec_values()
    {
        var spec = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "50ms", ElectionTimeout = "750ms" };
        var decision = Decide(Timing(100, 1000), Wan, T0, spec: spec);
        Assert.Equal(Timing(50, 750), decision.Timing);
        Assert.True(decision.Changed);
        Assert.StartsWith("Manual:", decision.Reason, StringComparison.Ordinal);

        var again = Decide(Timing(50, 750), Wan, T0, spec: spec);
        Assert.False(again.Changed);
    }

    [Fact]
    public void Manual_mode_with_an_invalid_spec_keeps_what_runs()
    {
        var spec = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "500ms", ElectionTimeout = "1s" };
        var decision = Decide(Timing(100, 1000), Lan, T0, spec: spec);
        Assert.Equal(Timing(100, 1000), decision.Timing);
        Assert.False(decision.Changed);
        Assert.Contains("at least 5 times heartbeatInterval", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Slow_disks_are_reported_whatever_the_mode()
    {
        var slow = new TuningMeasurements(Ms(1), Ms(3), Ms(25));
        Assert.True(Decide(Timing(100, 1000), slow, T0).SlowDisk);
        Assert.True(Decide(Timing(100, 1000), slow, T0, spec: new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "100ms", ElectionTimeout = "1s" }).SlowDisk);
        Assert.False(Decide(Timing(100, 1000), Lan, T0).SlowDisk);
    }

    [Fact]
    public void The_status_block_shows_values_inputs_prediction_and_last_change()
    {
        var decision = Decide(Timing(100, 1000), Wan, T0);
        var status = TuningPolicy.ToStatus(decision, Wan, previousChange: T0 - TimeSpan.FromHours(1), now: T0);

        Assert.Equal("200ms", status.HeartbeatInterval);
        Assert.Equal("3.2s", status.ElectionTimeout);
        Assert.Equal("200ms", status.RttP50);
        Assert.Equal("300ms", status.RttP99);
        Assert.Equal("2ms", status.FsyncP99);
        Assert.Equal("4s-7.2s", status.PredictedFailover);
        Assert.Equal(decision.Reason, status.Reason);
        Assert.Equal(T0.UtcDateTime, status.LastChange);

        var unchanged = TuningPolicy.ToStatus(Decide(Timing(200, 3200), Wan, T0), Wan, previousChange: T0 - TimeSpan.FromHours(1), now: T0);
        Assert.Equal((T0 - TimeSpan.FromHours(1)).UtcDateTime, unchanged.LastChange);
    }

    [Fact]
    public void The_issues_delay_scenario_raises_at_once_and_lowers_after_the_quiet_period()
    {
        // A LAN cluster; 50 ms is added each way between pods (RTT ≈ 100 ms, p99 ≈ 130 ms); later removed.
        var lan = new TuningMeasurements(Ms(0.5), Ms(2), Ms(1));
        var delayed = new TuningMeasurements(Ms(100.5), Ms(130), Ms(1));
        var timing = Decide(null, lan, T0).Timing;
        Assert.Equal(Timing(100, 1000), timing);

        var raised = Decide(timing, delayed, T0 + TimeSpan.FromMinutes(1));
        Assert.True(raised.Changed);
        Assert.Equal(Timing(110, 1320), raised.Timing);   // H = ceil10(100.5); E = 10 × (130 + 1) = 1310 → 12 × 110
        Assert.Equal("1.732s-3.052s", raised.PredictedFailover); // E + H + 3 × 100.5 ms, and 2E + …

        // Delay removed at minute 30; lower values wanted from then, applied 10 minutes later.
        DateTimeOffset? since = null;
        var current = raised.Timing;
        for (var minute = 30; minute <= 40; minute++)
        {
            var decision = Decide(current, lan, T0 + TimeSpan.FromMinutes(minute), lastLeaderChange: null, lowerWantedSince: since);
            Assert.True(decision.Changed == (minute == 40), $"minute {minute}: changed {decision.Changed}, {decision.Reason}");
            since = decision.LowerWantedSince;
            current = decision.Timing;
        }

        Assert.Equal(Timing(100, 1000), current);
    }

    [Fact]
    public void A_noisy_measurement_series_settles_and_never_flaps()
    {
        // Round trips wander between 80 and 120 ms, with no leader change: the timing may ratchet up while
        // the noise shows its peaks, but never comes back down in between, and settles.
        var random = new Random(3);
        RaftTiming? current = null;
        DateTimeOffset? lowerWantedSince = null;
        var changes = new List<(int Minute, RaftTiming Timing)>();
        for (var minute = 0; minute < 24 * 60; minute++)
        {
            var rtt = Ms(80 + random.NextDouble() * 40);
            var decision = Decide(current, new TuningMeasurements(rtt, rtt * 1.3, Ms(2)), T0 + TimeSpan.FromMinutes(minute), lowerWantedSince: lowerWantedSince);
            if (decision.Changed)
            {
                changes.Add((minute, decision.Timing));
            }

            current = decision.Timing;
            lowerWantedSince = decision.LowerWantedSince;
        }

        var seen = string.Join(", ", changes.Select(c => $"min {c.Minute}: {c.Timing.HeartbeatInterval.TotalMilliseconds}/{c.Timing.ElectionTimeout.TotalMilliseconds}"));
        Assert.True(changes.Count <= 5, $"{changes.Count} changes: {seen}");
        Assert.True(changes.Zip(changes.Skip(1)).All(p => p.Second.Timing.ElectionTimeout >= p.First.Timing.ElectionTimeout), $"timing went down: {seen}");
        Assert.True(changes.Count == 0 || changes[^1].Minute < 12 * 60, $"still changing after 12 hours: {seen}");
    }
}
