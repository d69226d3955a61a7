using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator.Controllers;

/// <summary>
/// Connects the informers to the work queue and the queue to the reconciler. Events on a RaftCluster
/// queue its key; events on the objects it owns (through their controller owner reference, or for pods,
/// their StatefulSet's) queue the owner's. Only while leading do workers take keys and reconcile; the
/// informers run all along, so a standby takes over with warm caches.
/// </summary>
internal sealed partial class RaftClusterController
{
    private const string Name = "raftcluster";
    private readonly ClusterInformers _informers;
    private readonly RaftClusterReconciler _reconciler;
    private readonly WorkQueue<string> _queue;
    private readonly OperatorOptions _options;
    private readonly ControllerMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<RaftClusterController> _logger;
    private readonly IEventRecorder _events;
    private long _reconciles;

    public RaftClusterController(ClusterInformers informers, RaftClusterReconciler reconciler, WorkQueue<string> queue, IEventRecorder events,
        OperatorOptions options, ControllerMetrics metrics, TimeProvider time, ILogger<RaftClusterController> logger)
    {
        _informers = informers;
        _reconciler = reconciler;
        _queue = queue;
        _events = events;
        _options = options;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        informers.Clusters.Subscribe(e => _queue.Add(ObjectCache<RaftCluster>.KeyOf(e.Object)));
        informers.StatefulSets.Subscribe(e => EnqueueOwner(e.Object));
        informers.Services.Subscribe(e => EnqueueOwner(e.Object));
        informers.ConfigMaps.Subscribe(e => EnqueueOwner(e.Object));
        informers.Budgets.Subscribe(e => EnqueueOwner(e.Object));
        informers.Pods.Subscribe(e => EnqueuePodOwner(e.Object));
    }

    /// <summary>Reconciles finished (successfully or not) by this instance.</summary>
    public long Reconciles => Interlocked.Read(ref _reconciles);

    public RaftClusterReconciler Reconciler => _reconciler;

    /// <summary>Reconcile until <paramref name="cancellationToken"/> ends (leadership lost or shutdown).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await _informers.WaitForSyncAsync(cancellationToken);
        LogStarted(_options.Workers);
        EnqueueAll();
        var workers = Enumerable.Range(0, _options.Workers).Select(_ => Task.Run(() => WorkAsync(cancellationToken), CancellationToken.None)).ToList();
        try
        {
            // Periodic resync: members' measurements and health change without any Kubernetes event.
            using var timer = new PeriodicTimer(_options.ResyncPeriod, _time);
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                EnqueueAll();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Leadership ended or shutdown.
        }

        await Task.WhenAll(workers);
        LogStopped();
    }

    private void EnqueueAll()
    {
        foreach (var cluster in _informers.Clusters.Cache.List())
        {
            _queue.Add(ObjectCache<RaftCluster>.KeyOf(cluster));
        }

        _metrics.QueueDepth.Set(_queue.Count);
    }

    private void EnqueueOwner(IKubernetesObject<V1ObjectMeta> obj)
    {
        var owner = obj.Metadata.OwnerReferences?.FirstOrDefault(r => r.Controller == true && r.Kind == RaftCluster.ResourceKind
            && r.ApiVersion.StartsWith(RaftCluster.Group + "/", StringComparison.Ordinal));
        if (owner is not null)
        {
            _queue.Add(ObjectCache<RaftCluster>.KeyOf(obj.Metadata.NamespaceProperty, owner.Name));
        }
    }

    /// <summary>A member pod belongs to the StatefulSet NAME, which belongs to RaftCluster NAME.</summary>
    private void EnqueuePodOwner(V1Pod pod)
    {
        var owner = pod.Metadata.OwnerReferences?.FirstOrDefault(r => r.Controller == true && r.Kind == "StatefulSet");
        if (owner is null)
        {
            return;
        }

        var statefulSet = _informers.StatefulSets.Cache.Get(pod.Metadata.NamespaceProperty, owner.Name);
        if (statefulSet is not null)
        {
            EnqueueOwner(statefulSet);
        }
        else if (_informers.Clusters.Cache.Get(pod.Metadata.NamespaceProperty, owner.Name) is not null)
        {
            _queue.Add(ObjectCache<RaftCluster>.KeyOf(pod.Metadata.NamespaceProperty, owner.Name));
        }
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            string? key;
            try
            {
                key = await _queue.TakeAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (key is null)
            {
                return;
            }

            try
            {
                await ProcessAsync(key, cancellationToken);
            }
            finally
            {
                _queue.Done(key);
                _metrics.QueueDepth.Set(_queue.Count);
            }
        }
    }

    private async Task ProcessAsync(string key, CancellationToken cancellationToken)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var (ns, name) = slash < 0 ? ("", key) : (key[..slash], key[(slash + 1)..]);
        var started = _time.GetTimestamp();
        try
        {
            var result = await _reconciler.ReconcileAsync(ns, name, cancellationToken);
            _queue.Forget(key);
            if (result.RequeueAfter is { } after)
            {
                _queue.AddAfter(key, after);
            }

            _metrics.Reconciles.WithLabels(Name, result.RequeueAfter is null ? "success" : "requeue").Inc();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutdown or lost leadership mid-reconcile: the next leader observes and resumes.
            _queue.Add(key);
        }
#pragma warning disable CA1031 // A failed reconcile is retried with backoff; it must never stop the controller.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _metrics.Errors.WithLabels(Name).Inc();
            _metrics.Reconciles.WithLabels(Name, "error").Inc();
            var delay = _queue.AddRateLimited(key);
            LogReconcileFailed(e, key, _queue.Failures(key), delay);
            if (_informers.Clusters.Cache.Get(ns, name) is { } cluster)
            {
                await _events.RecordAsync(cluster, "Warning", "ReconcileFailed", $"{e.GetType().Name}: {e.Message}", cancellationToken);
            }
        }
        finally
        {
            var elapsed = _time.GetElapsedTime(started);
            _metrics.Duration.WithLabels(Name).Observe(elapsed.TotalSeconds);
            Interlocked.Increment(ref _reconciles);
            LogReconciled(key, elapsed.TotalMilliseconds);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Reconciling RaftClusters with {Workers} worker(s)")]
    private partial void LogStarted(int workers);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopped reconciling")]
    private partial void LogStopped();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reconcile of {Key} failed ({Failures} time(s) in a row); retrying in {Delay}")]
    private partial void LogReconcileFailed(Exception exception, string key, int failures, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Reconciled {Key} in {Milliseconds:0.0} ms")]
    private partial void LogReconciled(string key, double milliseconds);
}
