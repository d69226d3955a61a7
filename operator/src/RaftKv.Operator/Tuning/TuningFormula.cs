using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tuning;

/// <summary>
/// What the members measured: round-trip times (the largest p50 and p99 over member pairs) and the WAL
/// fsync p99 (the largest over members). All non-negative.
/// </summary>
internal sealed record TuningMeasurements(TimeSpan RttP50, TimeSpan RttP99, TimeSpan FsyncP99)
{
    /// <summary>Combines per-pair and per-member figures: the slowest pair and the slowest disk decide.</summary>
    public static TuningMeasurements? Combine(IEnumerable<(TimeSpan P50, TimeSpan P99)> peerRtts, IEnumerable<TimeSpan> fsyncP99s)
    {
        var rtts = peerRtts.ToList();
        var fsyncs = fsyncP99s.ToList();
        if (rtts.Count == 0 && fsyncs.Count == 0)
        {
            return null;
        }

        return new TuningMeasurements(
            rtts.Count == 0 ? TimeSpan.Zero : rtts.Max(r => r.P50),
            rtts.Count == 0 ? TimeSpan.Zero : rtts.Max(r => r.P99),
            fsyncs.Count == 0 ? TimeSpan.Zero : fsyncs.Max());
    }
}

/// <summary>
/// DESIGN.md's tuning rules, as arithmetic only (sources: etcd's tuning guide — heartbeat about the
/// round-trip time, election at least 10 round trips, election ≥ 5 heartbeats, election ≤ 50 s — and the
/// Raft paper §5.6, broadcast time ≪ election timeout ≪ time between failures):
/// <list type="bullet">
/// <item>heartbeat H = clamp(max(RTT p50, fsync p99) rounded up to 10 ms, H_min, 5 s), H_min = 100 ms (Aggressive 30 ms);</item>
/// <item>broadcast B = RTT p99 + fsync p99 (a round trip plus the follower's fsync before it acknowledges);</item>
/// <item>election E = clamp(max(10·H, 10·B, E_floor), ≤ 50 s), E_floor = 1000 ms (Aggressive 300 ms), a multiple of H;</item>
/// <item>predicted failover ≈ E..2E (randomized election timeout) + H + 3·RTT p50 (pre-vote, vote, first append).</item>
/// </list>
/// </summary>
internal static class TuningFormula
{
    public static readonly TimeSpan HeartbeatGranularity = TimeSpan.FromMilliseconds(10);
    public static readonly TimeSpan MaxHeartbeat = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan MaxElection = TimeSpan.FromSeconds(50);

    /// <summary>WAL fsync p99 above this is reported as a slow disk (Degraded, reason SlowDisk), not hidden by longer timeouts.</summary>
    public static readonly TimeSpan SlowDiskThreshold = TimeSpan.FromMilliseconds(10);

    public static TimeSpan MinHeartbeat(TuningProfile profile) =>
        profile == TuningProfile.Aggressive ? TimeSpan.FromMilliseconds(30) : TimeSpan.FromMilliseconds(100);

    public static TimeSpan ElectionFloor(TuningProfile profile) =>
        profile == TuningProfile.Aggressive ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromMilliseconds(1000);

    /// <summary>The timing the measurements call for.</summary>
    public static RaftTiming Compute(TuningMeasurements measurements, TuningProfile profile)
    {
        if (measurements.RttP50 < TimeSpan.Zero || measurements.RttP99 < TimeSpan.Zero || measurements.FsyncP99 < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(measurements), measurements, "latencies cannot be negative");
        }

        var heartbeat = Clamp(
            RoundUp(Max(measurements.RttP50, measurements.FsyncP99), HeartbeatGranularity),
            MinHeartbeat(profile),
            MaxHeartbeat);
        var broadcast = measurements.RttP99 + measurements.FsyncP99;
        var election = Max(Max(heartbeat * 10, Saturating10x(broadcast)), ElectionFloor(profile));
        return new RaftTiming(heartbeat, ElectionMultipleOf(heartbeat, election));
    }

    /// <summary>
    /// <paramref name="election"/> capped at 50 s and rounded up to a multiple of <paramref name="heartbeat"/>;
    /// if rounding up would pass 50 s, the largest multiple below it (still ≥ 10·H, as H ≤ 5 s).
    /// </summary>
    public static TimeSpan ElectionMultipleOf(TimeSpan heartbeat, TimeSpan election)
    {
        var capped = election > MaxElection ? MaxElection : election;
        var rounded = RoundUp(capped, heartbeat);
        return rounded <= MaxElection ? rounded : TimeSpan.FromTicks(MaxElection.Ticks / heartbeat.Ticks * heartbeat.Ticks);
    }

    /// <summary>Expected leaderless time after the leader fails, for status: <c>"1.13s-2.13s"</c>.</summary>
    public static string PredictedFailover(RaftTiming timing, TimeSpan rttP50)
    {
        var overhead = timing.HeartbeatInterval + rttP50 * 3;
        var low = RoundUp(timing.ElectionTimeout + overhead, TimeSpan.FromMilliseconds(1));
        var high = RoundUp(timing.ElectionTimeout * 2 + overhead, TimeSpan.FromMilliseconds(1));
        return $"{GoDuration.Format(low)}-{GoDuration.Format(high)}";
    }

    public static bool IsSlowDisk(TuningMeasurements measurements) => measurements.FsyncP99 > SlowDiskThreshold;

    private static TimeSpan Saturating10x(TimeSpan value) => value > MaxElection ? MaxElection : value * 10;

    private static TimeSpan RoundUp(TimeSpan value, TimeSpan unit) =>
        TimeSpan.FromTicks((value.Ticks + unit.Ticks - 1) / unit.Ticks * unit.Ticks);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;
}
