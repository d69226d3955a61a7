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

    /// <summary>
    /// A rise applies only up to what each of the last this many samples calls for (the current one and
    /// <see cref="TuningInputs.Recent"/>): one noisy sample (a p99 from a burst of slow fsyncs) moves nothing,
    /// a level sustained over this many samples applies at once. 1 raises on every sample.
    /// </summary>
    public int SustainedSamples { get; init; } = 3;

    /// <summary>
    /// Samples closer together than this count as one (the reconciler keeps one per interval), so a burst of
    /// reconciles cannot make a spike look sustained.
    /// </summary>
    public TimeSpan SampleInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// One rise multiplies heartbeat and election by at most this: a sustained jump climbs over a few samples
    /// instead of leaping to tens of seconds, and stops where the measurements settle.
    /// </summary>
    public double MaxRaiseFactor { get; init; } = 2.0;
}

/// <summary>Everything one tuning decision depends on; time comes in as values, never from a clock.</summary>
/// <param name="Spec">The cluster's tuning spec.</param>
/// <param name="Current">The timing in force on the members, or null before any was applied.</param>
/// <param name="Measurements">The latest measurements, or null if the members have not reported any yet.</param>
/// <param name="Now">The time of this decision.</param>
/// <param name="LastLeaderChange">When the cluster last saw a leader change, if ever.</param>
/// <param name="LowerWantedSince">Carried over from the previous decision: since when lower values have been called for.</param>
/// <param name="Recent">Earlier samples, oldest first, not including <paramref name="Measurements"/> (see <see cref="TuningPolicy.Remember"/>).</param>
/// <param name="LastChange">When the timing in force was last changed, if known (status.tuning.lastChange): capped rises step once per sample interval.</param>
internal sealed record TuningInputs(
    RaftClusterTuning Spec,
    RaftTiming? Current,
    TuningMeasurements? Measurements,
    DateTimeOffset Now,
    DateTimeOffset? LastLeaderChange,
    DateTimeOffset? LowerWantedSince,
    IReadOnlyList<TuningMeasurements>? Recent = null,
    DateTimeOffset? LastChange = null);

/// <summary>One kept measurement sample and when it was taken.</summary>
internal sealed record TimedMeasurements(DateTimeOffset At, TuningMeasurements Measurements);

/// <summary>What to do about timing.</summary>
/// <param name="Timing">The timing to have in force after this decision.</param>
/// <param name="Changed">Whether <see cref="Timing"/> differs from the timing in force (apply it, record an Event).</param>
/// <param name="Reason">Why, with the inputs, for status and the Event.</param>
/// <param name="SlowDisk">WAL fsync p99 above 10 ms: report Degraded with reason SlowDisk.</param>
/// <param name="LowerWantedSince">To pass to the next decision.</param>
/// <param name="PredictedFailover">Expected leaderless time after a leader failure with <see cref="Timing"/>.</param>
/// <param name="RaisePending">The latest sample calls for more than is in force, not (yet) sustained or capped: look again soon.</param>
internal sealed record TuningDecision(
    RaftTiming Timing,
    bool Changed,
    string Reason,
    bool SlowDisk,
    DateTimeOffset? LowerWantedSince,
    string PredictedFailover,
    bool RaisePending = false);

/// <summary>
/// Auto tuning's behaviour over time, around <see cref="TuningFormula"/>: raise at once (a timeout too
/// short for the network causes needless elections now) once the level is sustained over a few samples,
/// at most by <see cref="TuningPolicyOptions.MaxRaiseFactor"/> per step (a p99 is a tail figure: a burst
/// of slow fsyncs under load multiplied it by 10 for seconds and took election timeouts to 7–44 s);
/// lower only by more than the hysteresis band, only to what every recent sample allows, and only after
/// a quiet period without leader changes (a timeout too long only slows failover). Manual mode applies
/// the spec's values, which RaftClusterValidator has checked.
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

        var profile = inputs.Spec.Profile ?? options.DefaultProfile;
        var latest = TuningFormula.Compute(measurements, profile);
        var window = (inputs.Recent ?? []).TakeLast(Math.Max(0, options.SustainedSamples - 1)).Append(measurements).ToList();
        var sustained = window.Count >= options.SustainedSamples;
        // What every sample of the window calls for at least (rises) and at most (lowering).
        var calledFor = window.Select(w => TuningFormula.Compute(w, profile)).ToList();
        var floor = new RaftTiming(calledFor.Min(t => t.HeartbeatInterval), calledFor.Min(t => t.ElectionTimeout));
        var ceiling = new RaftTiming(calledFor.Max(t => t.HeartbeatInterval), calledFor.Max(t => t.ElectionTimeout));
        var inputsText = $"RTT p50 {Format(measurements.RttP50)}, p99 {Format(measurements.RttP99)}, fsync p99 {Format(measurements.FsyncP99)}";
        if (current is null)
        {
            // Nothing in force yet (the ConfigMap is written with etcd's defaults before this happens, so rare):
            // start from what this sample calls for, within one capped step of etcd's defaults.
            return Apply(CapRise(RaftTiming.EtcdDefault, latest, options), $"Auto: first measurement ({inputsText})");
        }

        // A rise applies at once when sustained: a timeout below what the network needs causes needless
        // elections now. The formula's steps (10 ms for H, multiples of H for E) keep rises from being tiny.
        var latestUp = latest.HeartbeatInterval > current.HeartbeatInterval || latest.ElectionTimeout > current.ElectionTimeout;
        var target = sustained ? floor : current;
        var stepDue = inputs.LastChange is not { } lastChange || inputs.Now - lastChange >= options.SampleInterval;
        if ((target.HeartbeatInterval > current.HeartbeatInterval || target.ElectionTimeout > current.ElectionTimeout) && !stepDue)
        {
            // Reconciles can follow each other within milliseconds (every status write is a watch event): one
            // capped step per sample interval, or the cap would not slow anything down.
            var next = Keep($"Auto: raising toward heartbeat {Format(target.HeartbeatInterval)}, election {Format(target.ElectionTimeout)}, "
                + $"one step per {Format(options.SampleInterval)} ({inputsText})", lowerWantedSince: null);
            return next with { RaisePending = true };
        }

        if (target.HeartbeatInterval > current.HeartbeatInterval || target.ElectionTimeout > current.ElectionTimeout)
        {
            // A value that wants to go down meanwhile stays where it is: lowering waits.
            var raised = CapRise(current, new RaftTiming(Max(current.HeartbeatInterval, target.HeartbeatInterval), Max(current.ElectionTimeout, target.ElectionTimeout)), options);
            var capped = raised.ElectionTimeout < target.ElectionTimeout || raised.HeartbeatInterval < target.HeartbeatInterval;
            var how = capped
                ? $"raised by at most {options.MaxRaiseFactor:0.##}x per step toward heartbeat {Format(target.HeartbeatInterval)}, election {Format(target.ElectionTimeout)}"
                : "raised at once";
            return Apply(raised, $"Auto: {how}, sustained over {window.Count} sample(s) ({inputsText})") with { RaisePending = capped };
        }

        if (latestUp)
        {
            var held = Keep($"Auto: the latest sample calls for heartbeat {Format(latest.HeartbeatInterval)}, election {Format(latest.ElectionTimeout)}; "
                + $"raised only when {options.SustainedSamples} samples in a row call for more ({inputsText})", lowerWantedSince: null);
            return held with { RaisePending = true };
        }

        // Lowering goes only as far as the highest sample of the window allows.
        var wanted = new RaftTiming(ceiling.HeartbeatInterval, TuningFormula.ElectionMultipleOf(ceiling.HeartbeatInterval, ceiling.ElectionTimeout));

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

    /// <summary>
    /// The samples to keep after one more (oldest first): a sample that comes sooner than
    /// <see cref="TuningPolicyOptions.SampleInterval"/> after the last one kept replaces its figures (one sample
    /// per interval), and only the last <see cref="TuningPolicyOptions.SustainedSamples"/> are kept.
    /// </summary>
    public static IReadOnlyList<TimedMeasurements> Remember(IReadOnlyList<TimedMeasurements> kept, TuningMeasurements? sample, DateTimeOffset now, TuningPolicyOptions options)
    {
        if (sample is null)
        {
            return kept;
        }

        var list = kept.ToList();
        if (list.Count > 0 && now - list[^1].At < options.SampleInterval)
        {
            // Too soon after the last kept sample: it stands for this interval, with the newest figures.
            list[^1] = list[^1] with { Measurements = sample };
        }
        else
        {
            list.Add(new TimedMeasurements(now, sample));
        }

        return list.TakeLast(Math.Max(1, options.SustainedSamples)).ToList();
    }

    /// <summary><paramref name="wanted"/>, but no more than <see cref="TuningPolicyOptions.MaxRaiseFactor"/> times <paramref name="from"/> (election a multiple of heartbeat, ≥ 5 heartbeats).</summary>
    private static RaftTiming CapRise(RaftTiming from, RaftTiming wanted, TuningPolicyOptions options)
    {
        var factor = Math.Max(1.0, options.MaxRaiseFactor);
        var heartbeat = Min(wanted.HeartbeatInterval, TimeSpan.FromTicks((long)(from.HeartbeatInterval.Ticks * factor)));
        heartbeat = TimeSpan.FromTicks(heartbeat.Ticks / TuningFormula.HeartbeatGranularity.Ticks * TuningFormula.HeartbeatGranularity.Ticks);
        heartbeat = Max(heartbeat, Min(wanted.HeartbeatInterval, TuningFormula.HeartbeatGranularity));
        var election = Min(wanted.ElectionTimeout, TimeSpan.FromTicks((long)(from.ElectionTimeout.Ticks * factor)));
        return new RaftTiming(heartbeat, TuningFormula.ElectionMultipleOf(heartbeat, Max(election, heartbeat * 5)));
    }

    /// <summary>Whether moving from <paramref name="current"/> to <paramref name="wanted"/> is outside the hysteresis band.</summary>
    private static bool Significant(TimeSpan current, TimeSpan wanted, TuningPolicyOptions options) =>
        current <= TimeSpan.Zero
            ? wanted != current
            : Math.Abs((wanted - current).Ticks) >= options.Hysteresis * current.Ticks;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string Format(TimeSpan value) => GoDuration.Format(value);
}
