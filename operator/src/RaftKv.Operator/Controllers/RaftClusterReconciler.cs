using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Runtime;
using RaftKv.Operator.Tls;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Controllers;

/// <summary>What the controller does with a key after a reconcile.</summary>
/// <param name="RequeueAfter">Look again after this long (null: only on the next event or resync).</param>
internal sealed record ReconcileResult(TimeSpan? RequeueAfter)
{
    public static ReconcileResult Done { get; } = new((TimeSpan?)null);
}

/// <summary>What one reconcile saw and did, for tests and logs.</summary>
/// <param name="Step">The step planned (and executed).</param>
/// <param name="Status">The status written.</param>
/// <param name="RecheckSoon">Something may need doing shortly although the step was Nothing (a tuning rise not yet sustained).</param>
internal sealed record ReconcileOutcome(PlanStep Step, RaftClusterStatus? Status, bool RecheckSoon = false);

/// <summary>
/// One reconcile of one RaftCluster: observe (the informers' caches and the members), plan one step with
/// the pure planner, execute that step, write status. Nothing is remembered between reconciles that the
/// cluster does not also say, except tuning's timers (when the leader last changed, since when lower values
/// have been wanted), which a restarted operator starts afresh, erring towards keeping timeouts high.
/// </summary>
internal sealed partial class RaftClusterReconciler(
    IKubernetes client,
    ClusterInformers informers,
    IRaftMembers raftMembers,
    IEventRecorder events,
    OperatorOptions options,
    ControllerMetrics metrics,
    TimeProvider time,
    ILogger<RaftClusterReconciler> logger)
{
    /// <summary>Held on every RaftCluster until the operator has cleaned up after it (volumes, per reclaimPolicy).</summary>
    public const string Finalizer = "raftkv.io/finalizer";

    public const string FieldManager = "raftkv-operator";

    private readonly ClusterObjectBuilder _builder = new(options.ToSettings());
    private readonly TuningPolicyOptions _tuningOptions = new()
    {
        QuietPeriod = options.TuningQuietPeriod,
        DefaultProfile = options.DefaultTuningProfile,
        SustainedSamples = options.TuningSustainedSamples,
    };
    private readonly ConcurrentDictionary<string, TuningMemory> _tuningMemory = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, HashSet<string>> _deletedPods = new(StringComparer.Ordinal);

    /// <summary>The last step planned per cluster (for tests and diagnostics).</summary>
    public ConcurrentDictionary<string, PlanStep> LastSteps { get; } = new(StringComparer.Ordinal);

    public async Task<ReconcileResult> ReconcileAsync(string @namespace, string name, CancellationToken cancellationToken)
    {
        var cluster = informers.Clusters.Cache.Get(@namespace, name);
        if (cluster is null)
        {
            // Deleted: owned objects go with it through their owner references.
            _tuningMemory.TryRemove(ObjectCache<RaftCluster>.KeyOf(@namespace, name), out _);
            _deletedPods.TryRemove(ObjectCache<RaftCluster>.KeyOf(@namespace, name), out _);
            metrics.ForgetCluster(@namespace, name);
            return ReconcileResult.Done;
        }

        if (cluster.Metadata.DeletionTimestamp is not null)
        {
            await FinalizeAsync(cluster, cancellationToken);
            return ReconcileResult.Done;
        }

        if (cluster.Metadata.Finalizers?.Contains(Finalizer) != true)
        {
            await PatchFinalizersAsync(cluster, [.. cluster.Metadata.Finalizers ?? [], Finalizer], cancellationToken);
            // The update comes back through the informer and queues this cluster again.
            return ReconcileResult.Done;
        }

        var outcome = await ReconcileLiveAsync(cluster, cancellationToken);
        LastSteps[ObjectCache<RaftCluster>.KeyOf(cluster)] = outcome.Step;
        return outcome.Step switch
        {
            Nothing when outcome.RecheckSoon => new ReconcileResult(options.ProgressRequeue),
            Nothing => new ReconcileResult(options.ResyncPeriod),
            Wait => new ReconcileResult(options.ProgressRequeue * 2),
            _ => new ReconcileResult(options.ProgressRequeue),
        };
    }

    private async Task<ReconcileOutcome> ReconcileLiveAsync(RaftCluster cluster, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var names = _builder.Names(cluster);
        var ns = names.Namespace;
        var key = ObjectCache<RaftCluster>.KeyOf(cluster);
        var memory = _tuningMemory.GetOrAdd(key, _ => new TuningMemory());

        // Observe: objects from the caches.
        var statefulSet = informers.StatefulSets.Cache.Get(ns, names.StatefulSet);
        var pods = informers.Pods.Cache.List(ns)
            .Where(p => Value(p.Metadata.Labels, ClusterLabels.InstanceKey) == names.Name && names.OrdinalOf(p.Metadata.Name) is not null)
            .ToList();
        // A pod this operator deleted counts as not ready until the cache shows it gone or replaced, so a
        // cache that has not caught up with the delete cannot make the next pod's restart look safe.
        var deleted = _deletedPods.GetOrAdd(key, _ => []);
        lock (deleted)
        {
            deleted.IntersectWith(pods.Select(p => p.Metadata.Uid));
        }

        var observedPods = pods.Select(p => new ObservedPod(names.OrdinalOf(p.Metadata.Name)!.Value,
            IsReady(p) && !IsDeleted(deleted, p.Metadata.Uid), IsUpToDate(p, statefulSet), PodProblems.Of(p))).ToList();
        var membersMap = informers.ConfigMaps.Cache.Get(ns, names.MembersConfigMap);
        var tuningMap = informers.ConfigMaps.Cache.Get(ns, names.TuningConfigMap);

        // Observe: the TLS Secrets, when spec.tls names any.
        var tls = ClusterTlsCheck.Check(cluster.Spec.Tls, names, Math.Max(cluster.Spec.Replicas, statefulSet?.Spec?.Replicas ?? 0),
            await ReadSecretsAsync(ns, ClusterTlsCheck.SecretNames(cluster.Spec.Tls), cancellationToken), now);

        // Observe: the members themselves, through the pods that have an address.
        var endpoints = pods
            .Where(p => !string.IsNullOrEmpty(p.Status?.PodIP) && p.Metadata.DeletionTimestamp is null)
            .Select(p => new MemberEndpoint(names.OrdinalOf(p.Metadata.Name)!.Value, $"{names.ClientScheme}://{FormatHost(p.Status.PodIP)}:{ClusterNames.ClientPort}"))
            .OrderBy(e => e.Ordinal)
            .ToList();
        var target = new MemberTarget(names, endpoints, tls.Credentials);
        var raft = await raftMembers.ObserveAsync(target, cancellationToken);

        if (raft.LeaderId is { } leader && memory.LastLeader != leader)
        {
            // A first sighting after a restart counts as a change: lowering waits a full quiet period.
            memory.LastLeaderChange = now;
            memory.LastLeader = leader;
        }

        var timingInForce = raft.TimingInForce ?? TimingFrom(tuningMap);
        memory.Samples = TuningPolicy.Remember(memory.Samples, raft.Measurements, now, _tuningOptions);
        var recent = raft.Measurements is null ? memory.Samples : memory.Samples.SkipLast(1);
        var decision = TuningPolicy.Decide(
            new TuningInputs(cluster.Spec.Tuning, timingInForce, raft.Measurements, now, memory.LastLeaderChange, memory.LowerWantedSince,
                [.. recent.Select(r => r.Measurements)], cluster.Status?.Tuning?.LastChange is { } lastChange ? new DateTimeOffset(DateTime.SpecifyKind(lastChange, DateTimeKind.Utc)) : null), _tuningOptions);
        memory.LowerWantedSince = decision.LowerWantedSince;

        var bootstrapped = Value(membersMap?.Data, ClusterObjectBuilder.InitialClusterStateKey) == "existing" || raft.LeaderId is not null;
        var observed = new ObservedCluster
        {
            Spec = cluster.Spec,
            Name = names.Name,
            Generation = cluster.Metadata.Generation ?? 0,
            StatefulSetReplicas = statefulSet?.Spec?.Replicas,
            Pods = observedPods,
            Bootstrapped = bootstrapped,
            Members = raft.Members,
            LeaderId = raft.LeaderId,
            // Lost data shows two ways: a pod that answers under a new ID, or raftkv refusing to rejoin without its WAL.
            LostVolumes = raft.LostVolumes.Union(pods.Where(PodProblems.LostItsData).Select(p => names.OrdinalOf(p.Metadata.Name)!.Value)).ToHashSet(),
            PreviousMemberCount = cluster.Status?.Members?.Count is > 0 and var count ? count : cluster.Status?.Replicas ?? 0,
            FsyncP99 = raft.Measurements?.FsyncP99,
            TlsProblem = tls.Problem,
            Tuning = decision,
        };

        // The tuning ConfigMap records the timing in force; only an UpdateTuning step (live on the members
        // first, with an Event) moves it. Before anything is in force, the decision's timing is the start.
        var recordedTiming = timingInForce ?? decision.Timing;
        var membersConfig = ReconcilePlanner.MembersConfig(observed);
        var desired = DesiredObjects.For(cluster, _builder, recordedTiming, membersConfig, statefulSet?.Spec?.Replicas ?? cluster.Spec.Replicas);
        var toApply = desired
            .Where(d => DesiredObjects.NeedsApply(d.Object, Live(d.Object, ns)))
            .Select(d => d.Key)
            .ToList();
        observed = observed with { ObjectsToApply = toApply };

        var step = ReconcilePlanner.Plan(observed, names);
        if (logger.IsEnabled(LogLevel.Information))
        {
            var description = step.Describe();
            LogPlanned(ns, names.Name, step, description);
        }
        await ExecuteAsync(cluster, step, membersConfig, recordedTiming, target, pods, cancellationToken);

        var tuningStatus = TuningPolicy.ToStatus(decision, raft.Measurements, cluster.Status?.Tuning?.LastChange, now);
        var status = StatusComputer.Compute(observed, step, names, cluster.Status, tuningStatus, now);
        await WriteStatusAsync(cluster, status, cancellationToken);
        metrics.RecordStatus(ns, names.Name, status);
        return new ReconcileOutcome(step, status, decision.RaisePending);
    }

    private async Task ExecuteAsync(RaftCluster cluster, PlanStep step, (int MemberCount, bool Bootstrapped)? membersConfig,
        RaftTiming recordedTiming, MemberTarget target, List<V1Pod> pods, CancellationToken cancellationToken)
    {
        var ns = target.Names.Namespace;
        switch (step)
        {
            case Bootstrap bootstrap:
                foreach (var d in DesiredObjects.For(cluster, _builder, recordedTiming, (bootstrap.Replicas, false), bootstrap.Replicas))
                {
                    await ApplyAsync(d.Object, ns, cancellationToken);
                }

                break;
            case CreateObjects create:
                var wanted = create.Objects.ToHashSet(StringComparer.Ordinal);
                foreach (var d in DesiredObjects.For(cluster, _builder, recordedTiming, membersConfig, create.StatefulSetReplicas).Where(d => wanted.Contains(d.Key)))
                {
                    await ApplyAsync(d.Object, ns, cancellationToken);
                }

                break;
            case AddLearner add:
                await raftMembers.AddLearnerAsync(target, add.PeerUrl, cancellationToken);
                break;
            case ScaleStatefulSet scale:
                await client.AppsV1.PatchNamespacedStatefulSetAsync(
                    new V1Patch(new JsonObject { ["spec"] = new JsonObject { ["replicas"] = scale.Replicas } }.ToJsonString(), V1Patch.PatchType.MergePatch),
                    target.Names.StatefulSet, ns, cancellationToken: cancellationToken);
                break;
            case PromoteLearner promote:
                await raftMembers.PromoteAsync(target, promote.Id, cancellationToken);
                break;
            case TransferLeadership transfer:
                await raftMembers.MoveLeaderAsync(target, transfer.ToId, cancellationToken);
                break;
            case RemoveMember remove:
                await raftMembers.RemoveAsync(target, remove.Id, cancellationToken);
                break;
            case RemoveAndReaddLostMember lost:
                await raftMembers.RemoveAsync(target, lost.Id, cancellationToken);
                await raftMembers.AddLearnerAsync(target, lost.PeerUrl, cancellationToken);
                await DeletePodAsync(ObjectCache<RaftCluster>.KeyOf(cluster), target.Names.Pod(lost.Ordinal), pods, ns, cancellationToken);
                break;
            case RollPod roll:
                await DeletePodAsync(ObjectCache<RaftCluster>.KeyOf(cluster), roll.Pod, pods, ns, cancellationToken);
                break;
            case UpdateTuning tuning:
                var applied = await raftMembers.SetTimingAsync(target, tuning.Timing, cancellationToken);
                await ApplyAsync(_builder.TuningConfigMap(cluster, tuning.Timing), ns, cancellationToken);
                await events.RecordAsync(cluster, "Normal", "Retuned",
                    $"{tuning.Why} (applied live on {applied} of {target.Endpoints.Count} member(s), recorded in {target.Names.TuningConfigMap})", cancellationToken);
                metrics.Steps.WithLabels(step.GetType().Name).Inc();
                metrics.TuningChanges.WithLabels(ns, cluster.Metadata.Name).Inc();
                return;
            case Wait or WaitForCatchUp or Nothing:
                return;
        }

        metrics.Steps.WithLabels(step.GetType().Name).Inc();
        await events.RecordAsync(cluster, "Normal", step.GetType().Name, Capitalize(step.Describe()), cancellationToken);
    }

    /// <summary>The named Secrets of <paramref name="ns"/>, null for those that do not exist (read by name: the operator has no Secret informer).</summary>
    private async Task<IReadOnlyDictionary<string, V1Secret?>> ReadSecretsAsync(string ns, IReadOnlyList<string> secretNames, CancellationToken cancellationToken)
    {
        var secrets = new Dictionary<string, V1Secret?>(StringComparer.Ordinal);
        foreach (var secretName in secretNames)
        {
            try
            {
                secrets[secretName] = await client.CoreV1.ReadNamespacedSecretAsync(secretName, ns, cancellationToken: cancellationToken);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                secrets[secretName] = null;
            }
        }

        return secrets;
    }

    private IKubernetesObject<V1ObjectMeta>? Live(IKubernetesObject<V1ObjectMeta> desired, string ns) => desired switch
    {
        V1StatefulSet s => informers.StatefulSets.Cache.Get(ns, s.Metadata.Name),
        V1Service s => informers.Services.Cache.Get(ns, s.Metadata.Name),
        V1ConfigMap c => informers.ConfigMaps.Cache.Get(ns, c.Metadata.Name),
        V1PodDisruptionBudget b => informers.Budgets.Cache.Get(ns, b.Metadata.Name),
        _ => throw new InvalidOperationException($"the operator does not own objects of kind {desired.Kind}"),
    };

    /// <summary>Server-side apply: the operator owns exactly the fields its builders set; other managers' fields stay.</summary>
    private async Task ApplyAsync(IKubernetesObject<V1ObjectMeta> obj, string ns, CancellationToken cancellationToken)
    {
        var patch = new V1Patch(KubernetesJson.Serialize(obj), V1Patch.PatchType.ApplyPatch);
        var name = obj.Metadata.Name;
        switch (obj)
        {
            case V1StatefulSet:
                await client.AppsV1.PatchNamespacedStatefulSetAsync(patch, name, ns, fieldManager: FieldManager, force: true, cancellationToken: cancellationToken);
                break;
            case V1Service:
                await client.CoreV1.PatchNamespacedServiceAsync(patch, name, ns, fieldManager: FieldManager, force: true, cancellationToken: cancellationToken);
                break;
            case V1ConfigMap:
                await client.CoreV1.PatchNamespacedConfigMapAsync(patch, name, ns, fieldManager: FieldManager, force: true, cancellationToken: cancellationToken);
                break;
            case V1PodDisruptionBudget:
                await client.PolicyV1.PatchNamespacedPodDisruptionBudgetAsync(patch, name, ns, fieldManager: FieldManager, force: true, cancellationToken: cancellationToken);
                break;
            default:
                throw new InvalidOperationException($"the operator does not own objects of kind {obj.Kind}");
        }

        LogApplied(obj.Kind, ns, name);
    }

    private async Task DeletePodAsync(string clusterKey, string pod, List<V1Pod> pods, string ns, CancellationToken cancellationToken)
    {
        var cached = pods.FirstOrDefault(p => p.Metadata.Name == pod);
        if (cached?.Metadata.Uid is { } uid)
        {
            var deleted = _deletedPods.GetOrAdd(clusterKey, _ => []);
            lock (deleted)
            {
                deleted.Add(uid);
            }
        }

        try
        {
            await client.CoreV1.DeleteNamespacedPodAsync(pod, ns, cancellationToken: cancellationToken);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already gone: the StatefulSet recreates it either way.
        }
    }

    private async Task WriteStatusAsync(RaftCluster cluster, RaftClusterStatus status, CancellationToken cancellationToken)
    {
        var json = KubernetesJson.Serialize(status);
        if (cluster.Status is not null && json == KubernetesJson.Serialize(cluster.Status))
        {
            return;
        }

        var patch = new JsonObject { ["status"] = JsonNode.Parse(json) };
        await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, cluster.Metadata.NamespaceProperty, RaftCluster.Plural, cluster.Metadata.Name, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// The RaftCluster is being deleted. Owned objects (StatefulSet, Services, ConfigMaps, PDB) go by owner
    /// references; volumes are not owned by it, so they go here when <c>spec.storage.reclaimPolicy</c> is
    /// Delete and stay for a later cluster of the same name when Retain. Then the finalizer is removed.
    /// </summary>
    private async Task FinalizeAsync(RaftCluster cluster, CancellationToken cancellationToken)
    {
        if (cluster.Metadata.Finalizers?.Contains(Finalizer) != true)
        {
            return;
        }

        var ns = cluster.Metadata.NamespaceProperty;
        if (cluster.Spec.Storage.ReclaimPolicy == ReclaimPolicy.Delete)
        {
            var claims = await client.CoreV1.ListNamespacedPersistentVolumeClaimAsync(ns, labelSelector: ClusterLabels.SelectorString(cluster.Metadata.Name), cancellationToken: cancellationToken);
            foreach (var claim in claims.Items)
            {
                try
                {
                    await client.CoreV1.DeleteNamespacedPersistentVolumeClaimAsync(claim.Metadata.Name, ns, cancellationToken: cancellationToken);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    // Already gone.
                }
            }

            await events.RecordAsync(cluster, "Normal", "VolumesDeleted",
                $"deleted {claims.Items.Count} PersistentVolumeClaim(s): spec.storage.reclaimPolicy is Delete", cancellationToken);
        }
        else
        {
            await events.RecordAsync(cluster, "Normal", "VolumesRetained",
                "kept the members' PersistentVolumeClaims: spec.storage.reclaimPolicy is Retain (a RaftCluster of the same name reuses them)", cancellationToken);
        }

        await PatchFinalizersAsync(cluster, [.. cluster.Metadata.Finalizers.Where(f => f != Finalizer)], cancellationToken);
        LogFinalized(ns, cluster.Metadata.Name, cluster.Spec.Storage.ReclaimPolicy);
    }

    /// <summary>Set metadata.finalizers, guarded by the resourceVersion seen, so a concurrent change is not overwritten (409: the next reconcile retries).</summary>
    private async Task PatchFinalizersAsync(RaftCluster cluster, List<string> finalizers, CancellationToken cancellationToken)
    {
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = cluster.Metadata.ResourceVersion,
                ["finalizers"] = new JsonArray([.. finalizers.Select(f => JsonValue.Create(f))]),
            },
        };
        await client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, cluster.Metadata.NamespaceProperty, RaftCluster.Plural, cluster.Metadata.Name, cancellationToken: cancellationToken);
    }

    private static bool IsDeleted(HashSet<string> deleted, string? uid)
    {
        lock (deleted)
        {
            return uid is not null && deleted.Contains(uid);
        }
    }

    private static bool IsReady(V1Pod pod) =>
        pod.Metadata.DeletionTimestamp is null && pod.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>The pod runs the StatefulSet's update revision (or the set reports none, as before its controller saw it).</summary>
    private static bool IsUpToDate(V1Pod pod, V1StatefulSet? statefulSet)
    {
        var update = statefulSet?.Status?.UpdateRevision;
        return string.IsNullOrEmpty(update) || Value(pod.Metadata.Labels, "controller-revision-hash") == update;
    }

    private static RaftTiming? TimingFrom(V1ConfigMap? tuning)
    {
        if (tuning?.Data is not { } data
            || !long.TryParse(Value(data, ClusterObjectBuilder.HeartbeatKey), NumberStyles.None, CultureInfo.InvariantCulture, out var heartbeat)
            || !long.TryParse(Value(data, ClusterObjectBuilder.ElectionKey), NumberStyles.None, CultureInfo.InvariantCulture, out var election)
            || heartbeat <= 0 || election <= 0)
        {
            return null;
        }

        return new RaftTiming(TimeSpan.FromMilliseconds(heartbeat), TimeSpan.FromMilliseconds(election));
    }

    private static string? Value(IDictionary<string, string>? map, string key) => map is not null && map.TryGetValue(key, out var value) ? value : null;

    private static string FormatHost(string ip) => IPAddress.TryParse(ip, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip;

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];

    /// <summary>Tuning's timers for one cluster.</summary>
    private sealed class TuningMemory
    {
        public ulong? LastLeader { get; set; }

        public DateTimeOffset? LastLeaderChange { get; set; }

        public DateTimeOffset? LowerWantedSince { get; set; }

        /// <summary>The last measurement samples, one per sample interval, oldest first.</summary>
        public IReadOnlyList<TimedMeasurements> Samples { get; set; } = [];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "RaftCluster {Namespace}/{Name}: {Description} ({Step})")]
    private partial void LogPlanned(string @namespace, string name, PlanStep step, string description);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Applied {Kind} {Namespace}/{Name}")]
    private partial void LogApplied(string kind, string @namespace, string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "RaftCluster {Namespace}/{Name} finalized (volumes: {ReclaimPolicy})")]
    private partial void LogFinalized(string @namespace, string name, ReclaimPolicy reclaimPolicy);
}
