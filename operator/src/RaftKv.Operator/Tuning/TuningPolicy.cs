using System.Globalization;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tuning;

/// <summary>How cautiously Auto tuning moves.</summary>
internal sealed record TuningPolicyOptions
{
    /// <summary>
    /// Lower values are applied only after they have been called for, without a leader change, for this
    /// long: a short calm spell on a flaky network must not shorten the timeouts that kept it stable.
    /// </summary>
    public TimeSpan QuietPeriod { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Lowering is considered only when the formula asks for at least this fraction less than the values in
    /// force; rises always apply. The band between is where noise lives, so timing does not flap.
    /// </summary>
    public double Hysteresis { get; init; } = 0.2;

    /// <summary>The profile of clusters whose spec names none (the operator's <c>--default-tuning-profile</c>).</summary>
    public TuningProfile DefaultProfile { get; init; } = TuningProfile.Default;
}

/// <summary>Everything one tuning decision depends on; time comes in as values, never from a clock.</summary>
/// <param name="Spec">The cluster's tuning spec.</param>
/// <param name="Current">The timing in force on the members, or null before any was applied.</param>
/// <param name="Measurements">The latest measurements, or null if the members have not reported any yet.</param>
/// <param name="Now">The time of this decision.</param>
/// <param name="LastLeaderChange">When the cluster last saw a leader change, if ever.</param>
/// <param name="LowerWantedSince">Carried over from the previous decision: since when lower values have been called for.</param>
internal sealed record TuningInputs(
    RaftClusterTuning Spec,
    RaftTiming? Current,
    TuningMeasurements? Measurements,
    DateTimeOffset Now,
    DateTimeOffset? LastLeaderChange,
    DateTimeOffset? LowerWantedSince);

/// <summary>What to do about timing.</summary>
/// <param name="Timing">The timing to have in force after this decision.</param>
/// <param name="Changed">Whether <see cref="Timing"/> differs from the timing in force (apply it, record an Event).</param>
/// <param name="Reason">Why, with the inputs, for status and the Event.</param>
/// <param name="SlowDisk">WAL fsync p99 above 10 ms: report Degraded with reason SlowDisk.</param>
/// <param name="LowerWantedSince">To pass to the next decision.</param>
/// <param name="PredictedFailover">Expected leaderless time after a leader failure with <see cref="Timing"/>.</param>
internal sealed record TuningDecision(
    RaftTiming Timing,
    bool Changed,
    string Reason,
    bool SlowDisk,
    DateTimeOffset? LowerWantedSince,
    string PredictedFailover);

/// <summary>
/// Auto tuning's behaviour over time, around <see cref="TuningFormula"/>: raise at once (a timeout too
/// short for the network causes needless elections now), lower only by more than the hysteresis band
/// and only after a quiet period without leader changes (a timeout too long only slows failover). Manual
/// mode applies the spec's values, which RaftClusterValidator has checked.
/// </summary>
internal static class TuningPolicy
{
    public static TuningDecision Decide(TuningInputs inputs, TuningPolicyOptions options)
    {
        var current = inputs.Current;
        var slowDisk = inputs.Measurements is { } m && TuningFormula.IsSlowDisk(m);
        var rtt = inputs.Measurements?.RttP50 ?? TimeSpan.Zero;

        if (inputs.Spec.Mode == TuningMode.Manual)
        {
            var problems = RaftClusterValidator.Validate(new RaftClusterSpec { Tuning = inputs.Spec });
            if (problems.Count > 0)
            {
                // The API server's rules should have stopped this; keep what runs rather than guess.
                var keep = current ?? RaftTiming.EtcdDefault;
                return new TuningDecision(keep, current is null, $"Manual: spec.tuning is invalid, keeping the values in force: {string.Join("; ", problems)}",
                    slowDisk, null, TuningFormula.PredictedFailover(keep, rtt));
            }

            var manual = new RaftTiming(GoDuration.Parse(inputs.Spec.HeartbeatInterval!), GoDuration.Parse(inputs.Spec.ElectionTimeout!));
            var changed = manual != current;
            return new TuningDecision(manual, changed, $"Manual: heartbeat {Format(manual.HeartbeatInterval)}, election {Format(manual.ElectionTimeout)} from spec.tuning",
                slowDisk, null, TuningFormula.PredictedFailover(manual, rtt));
        }

        if (inputs.Measurements is not { } measurements)
        {
            var keep = current ?? RaftTiming.EtcdDefault;
            return new TuningDecision(keep, current is null, current is null
                    ? "Auto: no measurements yet; etcd's defaults until the members report round-trip and fsync latency"
                    : "Auto: no new measurements; keeping the values in force",
                slowDisk, inputs.LowerWantedSince, TuningFormula.PredictedFailover(keep, rtt));
        }

        var wanted = TuningFormula.Compute(measurements, inputs.Spec.Profile ?? options.DefaultProfile);
        var inputsText = $"RTT p50 {Format(measurements.RttP50)}, p99 {Format(measurements.RttP99)}, fsync p99 {Format(measurements.FsyncP99)}";
        if (current is null)
        {
            return Apply(wanted, $"Auto: first measurement ({inputsText})");
        }

        // Any rise applies: a timeout below what the network needs causes needless elections now. The
        // formula's steps (10 ms for H, multiples of H for E) keep rises from being arbitrarily small.
        var heartbeatUp = wanted.HeartbeatInterval > current.HeartbeatInterval;
        var electionUp = wanted.ElectionTimeout > current.ElectionTimeout;
        if (heartbeatUp || electionUp)
        {
            // Raise at once. A value that wants to go down meanwhile stays where it is: lowering waits.
            var heartbeat = Max(current.HeartbeatInterval, wanted.HeartbeatInterval);
            var raised = new RaftTiming(heartbeat, TuningFormula.ElectionMultipleOf(heartbeat, Max(current.ElectionTimeout, wanted.ElectionTimeout)));
            return Apply(raised, $"Auto: raised at once ({inputsText})");
        }

        var heartbeatDown = Significant(current.HeartbeatInterval, wanted.HeartbeatInterval, options) && wanted.HeartbeatInterval < current.HeartbeatInterval;
        var electionDown = Significant(current.ElectionTimeout, wanted.ElectionTimeout, options) && wanted.ElectionTimeout < current.ElectionTimeout;
        if (!heartbeatDown && !electionDown)
        {
            return Keep($"Auto: measurements call for values at most {options.Hysteresis * 100:0}% below those in force; keeping them ({inputsText})", lowerWantedSince: null);
        }

        var since = inputs.LowerWantedSince ?? inputs.Now;
        var quietFrom = inputs.LastLeaderChange is { } leaderChange && leaderChange > since ? leaderChange : since;
        if (inputs.Now - quietFrom < options.QuietPeriod)
        {
            var lowerAt = (quietFrom + options.QuietPeriod).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            return Keep($"Auto: lower values (heartbeat {Format(wanted.HeartbeatInterval)}, election {Format(wanted.ElectionTimeout)}) wait for "
                + $"{Format(options.QuietPeriod)} without leader changes, until {lowerAt} ({inputsText})", since);
        }

        return Apply(wanted, $"Auto: lowered after {Format(options.QuietPeriod)} without leader changes ({inputsText})");

        TuningDecision Apply(RaftTiming timing, string why) =>
            new(timing, timing != current, $"{why}: heartbeat {Format(timing.HeartbeatInterval)}, election {Format(timing.ElectionTimeout)}",
                slowDisk, null, TuningFormula.PredictedFailover(timing, measurements.RttP50));

        TuningDecision Keep(string why, DateTimeOffset? lowerWantedSince) =>
            new(current, false, why, slowDisk, lowerWantedSince, TuningFormula.PredictedFailover(current, measurements.RttP50));
    }

    /// <summary>
    /// The status block for a decision: the values in force, the inputs, and when the values last
    /// changed (<paramref name="now"/> if this decision changes them).
    /// </summary>
    public static RaftClusterTuningStatus ToStatus(TuningDecision decision, TuningMeasurements? measurements, DateTimeOffset? previousChange, DateTimeOffset now) => new()
    {
        HeartbeatInterval = Format(decision.Timing.HeartbeatInterval),
        ElectionTimeout = Format(decision.Timing.ElectionTimeout),
        RttP50 = measurements is null ? null : Format(measurements.RttP50),
        RttP99 = measurements is null ? null : Format(measurements.RttP99),
        FsyncP99 = measurements is null ? null : Format(measurements.FsyncP99),
        PredictedFailover = decision.PredictedFailover,
        Reason = decision.Reason,
        LastChange = (decision.Changed ? now : previousChange)?.UtcDateTime,
    };

    /// <summary>Whether moving from <paramref name="current"/> to <paramref name="wanted"/> is outside the hysteresis band.</summary>
    private static bool Significant(TimeSpan current, TimeSpan wanted, TuningPolicyOptions options) =>
        current <= TimeSpan.Zero
            ? wanted != current
            : Math.Abs((wanted - current).Ticks) >= options.Hysteresis * current.Ticks;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static string Format(TimeSpan value) => GoDuration.Format(value);
}
