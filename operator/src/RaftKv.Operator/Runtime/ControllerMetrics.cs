using System.Collections.Concurrent;
using Prometheus;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Runtime;

/// <summary>
/// The operator's Prometheus metrics, in a registry of its own (so two operators in one process, as in
/// tests, do not share counters). Names follow controller-runtime's where one exists.
/// </summary>
internal sealed class ControllerMetrics
{
    public ControllerMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        Reconciles = factory.CreateCounter("raftkv_operator_reconcile_total", "Reconciles, by result (success, error, requeue).",
            new CounterConfiguration { LabelNames = ["controller", "result"] });
        Errors = factory.CreateCounter("raftkv_operator_reconcile_errors_total", "Reconciles that failed.",
            new CounterConfiguration { LabelNames = ["controller"] });
        Duration = factory.CreateHistogram("raftkv_operator_reconcile_duration_seconds", "Time one reconcile took.",
            new HistogramConfiguration { LabelNames = ["controller"], Buckets = Histogram.ExponentialBuckets(0.005, 2, 14) });
        Steps = factory.CreateCounter("raftkv_operator_steps_total", "Plan steps executed, by kind.",
            new CounterConfiguration { LabelNames = ["step"] });
        QueueDepth = factory.CreateGauge("raftkv_operator_workqueue_depth", "Keys waiting in the work queue.");
        IsLeader = factory.CreateGauge("raftkv_operator_leader", "1 while this instance holds the leader Lease.");
        string[] cluster = ["namespace", "raftcluster"];
        Conditions = factory.CreateGauge("raftkv_operator_cluster_condition",
            "A RaftCluster's status conditions: 1 while the condition is True, 0 while False, with its reason (alerts: Degraded).",
            new GaugeConfiguration { LabelNames = [.. cluster, "type", "reason"] });
        Heartbeat = factory.CreateGauge("raftkv_operator_cluster_heartbeat_interval_seconds",
            "The heartbeat interval a RaftCluster runs with (status.tuning.heartbeatInterval).", new GaugeConfiguration { LabelNames = cluster });
        Election = factory.CreateGauge("raftkv_operator_cluster_election_timeout_seconds",
            "The election timeout a RaftCluster runs with (status.tuning.electionTimeout).", new GaugeConfiguration { LabelNames = cluster });
        RttP99 = factory.CreateGauge("raftkv_operator_cluster_peer_rtt_p99_seconds",
            "The 99th percentile of peer round trips the tuning measured (status.tuning.rttP99).", new GaugeConfiguration { LabelNames = cluster });
        FsyncP99 = factory.CreateGauge("raftkv_operator_cluster_wal_fsync_p99_seconds",
            "The 99th percentile of WAL fsync latency the tuning measured (status.tuning.fsyncP99).", new GaugeConfiguration { LabelNames = cluster });
        TuningChanges = factory.CreateCounter("raftkv_operator_cluster_tuning_changes_total",
            "Timing changes applied to a RaftCluster (Auto tuning or a Manual edit).", new CounterConfiguration { LabelNames = cluster });
    }

    public CollectorRegistry Registry { get; }

    public Counter Reconciles { get; }

    public Counter Errors { get; }

    public Histogram Duration { get; }

    public Counter Steps { get; }

    public Gauge QueueDepth { get; }

    public Gauge IsLeader { get; }

    public Gauge Conditions { get; }

    public Gauge Heartbeat { get; }

    public Gauge Election { get; }

    public Gauge RttP99 { get; }

    public Gauge FsyncP99 { get; }

    public Counter TuningChanges { get; }

    private readonly ConcurrentDictionary<(string Namespace, string Name), string[][]> _conditionLabels = new();

    /// <summary>Publishes a RaftCluster's written status as gauges (conditions with their reasons, timing, measurements).</summary>
    public void RecordStatus(string @namespace, string name, RaftClusterStatus status)
    {
        var conditions = (status.Conditions ?? []).Select(c => new[] { @namespace, name, c.Type, c.Reason ?? "" }).ToArray();
        var previous = _conditionLabels.TryGetValue((@namespace, name), out var old) ? old : [];
        foreach (var labels in previous.Where(p => !conditions.Any(c => c.SequenceEqual(p))))
        {
            Conditions.RemoveLabelled(labels);
        }

        foreach (var (condition, labels) in (status.Conditions ?? []).Zip(conditions))
        {
            Conditions.WithLabels(labels).Set(condition.Status == "True" ? 1 : 0);
        }

        _conditionLabels[(@namespace, name)] = conditions;
        SetSeconds(Heartbeat, @namespace, name, status.Tuning?.HeartbeatInterval);
        SetSeconds(Election, @namespace, name, status.Tuning?.ElectionTimeout);
        SetSeconds(RttP99, @namespace, name, status.Tuning?.RttP99);
        SetSeconds(FsyncP99, @namespace, name, status.Tuning?.FsyncP99);
    }

    /// <summary>Drops a deleted RaftCluster's series.</summary>
    public void ForgetCluster(string @namespace, string name)
    {
        if (_conditionLabels.TryRemove((@namespace, name), out var previous))
        {
            foreach (var labels in previous)
            {
                Conditions.RemoveLabelled(labels);
            }
        }

        foreach (var gauge in new[] { Heartbeat, Election, RttP99, FsyncP99 })
        {
            gauge.RemoveLabelled(@namespace, name);
        }

        TuningChanges.RemoveLabelled(@namespace, name);
    }

    private static void SetSeconds(Gauge gauge, string @namespace, string name, string? duration)
    {
        if (GoDuration.TryParse(duration, out var value))
        {
            gauge.WithLabels(@namespace, name).Set(value.TotalSeconds);
        }
        else
        {
            gauge.RemoveLabelled(@namespace, name);
        }
    }
}
