using Prometheus;

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
    }

    public CollectorRegistry Registry { get; }

    public Counter Reconciles { get; }

    public Counter Errors { get; }

    public Histogram Duration { get; }

    public Counter Steps { get; }

    public Gauge QueueDepth { get; }

    public Gauge IsLeader { get; }
}
