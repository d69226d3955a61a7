using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Tests.Runtime;
using Xunit.Abstractions;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>The operator against a local API server, with a model of the Raft side (no raftkv pods).</summary>
public sealed class OperatorOnLocalKubeTests(LocalKubeCluster kube, ITestOutputHelper output) : IClassFixture<LocalKubeCluster>
{
    [Fact]
    public async Task A_RaftCluster_gets_its_objects_with_owner_references_a_finalizer_and_status_for_its_generation()
    {
        var ns = await kube.NewNamespaceAsync("create");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-a", ns);
        var created = await kube.CreateClusterAsync(ns, "demo");

        // Owned objects, each with a controller owner reference to this RaftCluster.
        var owned = await Eventually.Until(async () => await OwnedObjectsAsync(ns),
            objects => objects.Count == 6,
            objects => string.Join(", ", objects.Select(o => $"{o.Kind}/{o.Metadata.Name}")));
        Assert.Equal(
            ["ConfigMap/demo-members", "ConfigMap/demo-tuning", "PodDisruptionBudget/demo", "Service/demo-client", "Service/demo-peers", "StatefulSet/demo"],
            owned.Select(o => $"{o.Kind}/{o.Metadata.Name}").Order(StringComparer.Ordinal).ToList());
        Assert.All(owned, o =>
        {
            var owner = Assert.Single(o.Metadata.OwnerReferences);
            Assert.Equal((RaftCluster.ResourceKind, "demo", created.Metadata.Uid, true), (owner.Kind, owner.Name, owner.Uid, owner.Controller == true));
        });
        var statefulSet = await kube.Client.AppsV1.ReadNamespacedStatefulSetAsync("demo", ns);
        Assert.Equal(3, statefulSet.Spec.Replicas);

        // Status for the generation, with conditions stamped with it; the model cluster has a leader.
        var cluster = await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
            c => c.Status?.ObservedGeneration == c.Metadata.Generation && Condition(c, ConditionTypes.Available)?.Status == "True",
            c => KubernetesJson.Serialize(c.Status));
        Assert.Contains(RaftClusterReconciler.Finalizer, cluster.Metadata.Finalizers);
        Assert.All(cluster.Status!.Conditions!, c => Assert.Equal(cluster.Metadata.Generation, c.ObservedGeneration));
        Assert.Equal(["Available", "Degraded", "Progressing"], cluster.Status.Conditions!.Select(c => c.Type).Order(StringComparer.Ordinal).ToList());
        Assert.Equal("demo-0", cluster.Status.Leader);
        Assert.Equal((3, 2, 1), (cluster.Status.Voters, cluster.Status.Quorum, cluster.Status.FailureTolerance));
        Assert.Equal("existing", (await kube.Client.CoreV1.ReadNamespacedConfigMapAsync("demo-members", ns)).Data["initial-cluster-state"]);

        // A spec change is a new generation; status follows it.
        await kube.Client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"spec":{"tuning":{"mode":"Manual","heartbeatInterval":"200ms","electionTimeout":"2s"}}}""", V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, "demo");
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
            c => c.Metadata.Generation == 2 && c.Status?.ObservedGeneration == 2 && c.Status.Tuning?.ElectionTimeout == "2s",
            c => $"generation {c.Metadata.Generation}, status {KubernetesJson.Serialize(c.Status)}");
        var tuning = await Eventually.Until(async () => await kube.Client.CoreV1.ReadNamespacedConfigMapAsync("demo-tuning", ns),
            c => c.Data["election-timeout"] == "2000",
            c => KubernetesJson.Serialize(c.Data));
        Assert.Equal("200", tuning.Data["heartbeat-interval"]);

        // Steps are recorded as Events on the RaftCluster.
        var events = await Eventually.Until(async () => await kube.Client.CoreV1.ListNamespacedEventAsync(ns),
            list => list.Items.Any(e => e.Reason == "Bootstrap") && list.Items.Any(e => e.Reason == "Retuned"),
            list => string.Join("; ", list.Items.Select(e => $"{e.Reason}: {e.Message}")));
        Assert.All(events.Items.Where(e => e.Reason is "Bootstrap" or "Retuned"), e => Assert.Equal(("RaftCluster", "demo"), (e.InvolvedObject.Kind, e.InvolvedObject.Name)));
        output.WriteLine(string.Join(Environment.NewLine, members.Calls));
    }

    [Fact]
    public async Task Scaling_up_adds_a_learner_then_grows_the_StatefulSet_then_promotes()
    {
        var ns = await kube.NewNamespaceAsync("scale");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-scale", ns);
        await kube.CreateClusterAsync(ns, "demo");
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!, c => c.Status?.Voters == 3, c => KubernetesJson.Serialize(c.Status));

        // As kubectl scale does: through the scale subresource.
        await kube.Client.CustomObjects.PatchNamespacedCustomObjectScaleAsync(new V1Patch("""{"spec":{"replicas":5}}""", V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, "demo");

        var cluster = await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
            c => c.Status?.Voters == 5 && c.Status.ObservedGeneration == c.Metadata.Generation,
            c => $"{KubernetesJson.Serialize(c.Status)}; calls: {string.Join("; ", members.Calls)}");
        Assert.Equal(5, (await kube.Client.AppsV1.ReadNamespacedStatefulSetAsync("demo", ns)).Spec.Replicas);
        Assert.Equal((5, 3, 2), (cluster.Status!.Voters, cluster.Status.Quorum, cluster.Status.FailureTolerance));

        // One member at a time, each a learner before a voter, and the pod only after the member exists.
        var calls = members.Calls.Where(c => !c.Contains("timing", StringComparison.Ordinal)).Select(c => c[(c.IndexOf(": ", StringComparison.Ordinal) + 2)..]).ToList();
        Assert.Equal(["formed with 3 member(s)", "add learner 3", "promote 4099", "add learner 4", "promote 4100"], calls);
    }

    [Fact]
    public async Task Scaling_down_removes_members_from_Raft_before_their_pods_go_highest_first()
    {
        var ns = await kube.NewNamespaceAsync("shrink");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-shrink", ns);
        await kube.CreateClusterAsync(ns, "demo", replicas: 5);
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!, c => c.Status?.Voters == 5, c => KubernetesJson.Serialize(c.Status));

        await kube.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("""{"spec":{"replicas":3}}""", V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, "demo");

        await Eventually.Until(async () => (await kube.Client.AppsV1.ReadNamespacedStatefulSetAsync("demo", ns)).Spec.Replicas,
            r => r == 3, r => $"StatefulSet replicas {r}; calls: {string.Join("; ", members.Calls)}");
        var cluster = await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
            c => c.Status?.Voters == 3 && c.Status.ObservedGeneration == c.Metadata.Generation, c => KubernetesJson.Serialize(c.Status));
        Assert.Equal((3, 2, 1), (cluster.Status!.Voters, cluster.Status.Quorum, cluster.Status.FailureTolerance));
        var calls = members.Calls.Where(c => !c.Contains("timing", StringComparison.Ordinal)).Select(c => c[(c.IndexOf(": ", StringComparison.Ordinal) + 2)..]).ToList();
        Assert.Equal(["formed with 5 member(s)", "remove 4100", "remove 4099"], calls);
    }

    [Fact]
    public async Task An_even_replica_count_is_rejected_by_the_API_server_with_a_message_naming_odd()
    {
        var ns = await kube.NewNamespaceAsync("even");

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => kube.CreateClusterAsync(ns, "even", replicas: 4));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Contains("must be odd", e.Response.Content, StringComparison.Ordinal);
        Assert.Null(await kube.GetClusterAsync(ns, "even"));
    }

    [Fact]
    public async Task The_API_server_refuses_tls_without_the_operators_secret_and_adding_or_removing_a_tls_side_later()
    {
        var ns = await kube.NewNamespaceAsync("tls");

        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => kube.CreateClusterAsync(ns, "noop", edit: s => s.Tls = new RaftClusterTls { ServerSecretName = "server" }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, missing.Response.StatusCode);
        Assert.Contains(RaftClusterTls.OperatorSecretRuleMessage, missing.Response.Content, StringComparison.Ordinal);

        await kube.CreateClusterAsync(ns, "plain");
        var added = await Assert.ThrowsAsync<HttpOperationException>(() => PatchSpecAsync(ns, "plain", """{"tls":{"peerSecretName":"peer"}}"""));
        Assert.Contains("cannot be added or removed after creation", added.Response.Content, StringComparison.Ordinal);

        await kube.CreateClusterAsync(ns, "peers", edit: s => s.Tls = new RaftClusterTls { PeerSecretName = "peer" });
        await PatchSpecAsync(ns, "peers", """{"tls":{"peerSecretName":"peer-rotated"}}""");
        Assert.Equal("peer-rotated", (await kube.GetClusterAsync(ns, "peers"))?.Spec.Tls?.PeerSecretName);
        var removed = await Assert.ThrowsAsync<HttpOperationException>(() => PatchSpecAsync(ns, "peers", """{"tls":null}"""));
        Assert.Contains("cannot be added or removed after creation", removed.Response.Content, StringComparison.Ordinal);
    }

    private Task<object> PatchSpecAsync(string ns, string name, string specJson) =>
        kube.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch($$"""{"spec":{{specJson}}}""", V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, name);

    [Fact]
    public async Task Deleting_a_RaftCluster_runs_the_finalizer_and_lets_it_go()
    {
        var ns = await kube.NewNamespaceAsync("delete");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-delete", ns);
        await kube.CreateClusterAsync(ns, "gone", replicas: 1, edit: s => s.Storage.ReclaimPolicy = ReclaimPolicy.Delete);
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "gone"))!,
            c => c.Metadata.Finalizers?.Contains(RaftClusterReconciler.Finalizer) == true && c.Status?.ObservedGeneration == c.Metadata.Generation,
            c => KubernetesJson.Serialize(c.Metadata));

        await kube.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, "gone");

        await Eventually.Until(async () => await kube.GetClusterAsync(ns, "gone"), c => c is null, c => KubernetesJson.Serialize(c?.Metadata));
        var events = await kube.Client.CoreV1.ListNamespacedEventAsync(ns);
        Assert.Contains(events.Items, e => e.Reason == "VolumesDeleted");
    }

    [Fact]
    public async Task Health_readiness_and_metrics_are_served()
    {
        var ns = await kube.NewNamespaceAsync("metrics");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-metrics", ns);
        await kube.CreateClusterAsync(ns, "demo", replicas: 1);
        using var http = new HttpClient { BaseAddress = op.Address };

        Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        await Eventually.Until(async () => (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode, s => s == HttpStatusCode.OK, s => $"readyz {s}");
        var metrics = await Eventually.Until(async () => await http.GetStringAsync(new Uri("/metrics", UriKind.Relative)),
            text => text.Contains("raftkv_operator_reconcile_total{controller=\"raftcluster\"", StringComparison.Ordinal)
                && text.Contains("raftkv_operator_reconcile_duration_seconds_bucket", StringComparison.Ordinal),
            text => text);
        Assert.Contains("raftkv_operator_leader 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_the_lease_holder_reconciles_and_the_standby_takes_over_when_it_stops()
    {
        var ns = await kube.NewNamespaceAsync("election");
        var members = new ModelRaftMembers(kube.Client);
        await using var first = await RunningOperator.StartAsync(kube.Client, members, ns, "op-first", ns);
        await Eventually.Until(() => first.Elector.IsLeader, () => "op-first did not become leader");
        await using var second = await RunningOperator.StartAsync(kube.Client, members, ns, "op-second", ns);
        await Eventually.Until(() => second.Informers.HasSynced, () => "op-second's informers did not sync");

        await kube.CreateClusterAsync(ns, "one", replicas: 1);
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "one"))!, c => c.Status?.ObservedGeneration == 1, c => KubernetesJson.Serialize(c.Status));
        Assert.True(first.Controller.Reconciles > 0);
        Assert.Equal(0, second.Controller.Reconciles);
        Assert.False(second.Elector.IsLeader);
        var lease = await kube.Client.CoordinationV1.ReadNamespacedLeaseAsync("raftkv-operator", ns);
        Assert.Equal("op-first", lease.Spec.HolderIdentity);

        // The leader shuts down (SIGTERM): it releases the Lease and the standby leads at once.
        await first.StopAsync();
        await Eventually.Until(() => second.Elector.IsLeader, () => "op-second did not take over");
        lease = await kube.Client.CoordinationV1.ReadNamespacedLeaseAsync("raftkv-operator", ns);
        Assert.Equal("op-second", lease.Spec.HolderIdentity);
        Assert.True(lease.Spec.LeaseTransitions >= 1, $"transitions {lease.Spec.LeaseTransitions}");

        await kube.CreateClusterAsync(ns, "two", replicas: 1);
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "two"))!, c => c.Status?.ObservedGeneration == 1, c => KubernetesJson.Serialize(c.Status));
        Assert.True(second.Controller.Reconciles > 0);
    }

    [Fact]
    public async Task A_standby_takes_over_after_the_lease_lapses_when_the_leader_vanishes_without_releasing()
    {
        var ns = await kube.NewNamespaceAsync("lapse");
        // A holder that never renews: as if the leader's process was killed.
        await kube.Client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = "raftkv-operator", NamespaceProperty = ns },
            Spec = new V1LeaseSpec { HolderIdentity = "op-crashed", LeaseDurationSeconds = 4, RenewTime = DateTime.UtcNow, AcquireTime = DateTime.UtcNow },
        }, ns);
        var members = new ModelRaftMembers(kube.Client);
        await using var standby = await RunningOperator.StartAsync(kube.Client, members, ns, "op-standby", ns);
        await kube.CreateClusterAsync(ns, "one", replicas: 1);

        await Eventually.Until(() => standby.Informers.HasSynced, () => "informers did not sync");
        Assert.False(standby.Elector.IsLeader, "took a Lease another instance holds");
        await Eventually.Until(() => standby.Elector.IsLeader, () => "did not take over the lapsed Lease");
        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "one"))!, c => c.Status?.ObservedGeneration == 1, c => KubernetesJson.Serialize(c.Status));
    }

    [Fact]
    public async Task A_failing_reconcile_is_retried_with_backoff_recorded_as_a_Warning_Event_and_counted_never_crashing()
    {
        var ns = await kube.NewNamespaceAsync("failing");
        await using var op = await RunningOperator.StartAsync(kube.Client, new UnreachableMembers(), ns, "op-failing", ns);
        await kube.CreateClusterAsync(ns, "demo", replicas: 1);
        using var http = new HttpClient { BaseAddress = op.Address };

        var events = await Eventually.Until(async () => await kube.Client.CoreV1.ListNamespacedEventAsync(ns),
            list => list.Items.Count(e => e.Reason == "ReconcileFailed") >= 2,
            list => string.Join("; ", list.Items.Select(e => $"{e.Type} {e.Reason}: {e.Message}")));
        var failed = events.Items.First(e => e.Reason == "ReconcileFailed");
        Assert.Equal("Warning", failed.Type);
        Assert.Contains("member API down for this test", failed.Message, StringComparison.Ordinal);
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("raftkv_operator_reconcile_errors_total{controller=\"raftcluster\"}", metrics, StringComparison.Ordinal);
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri("/healthz", UriKind.Relative)));
        Assert.True(op.Elector.IsLeader);
    }

    /// <summary>A member view whose every call fails, as when the members' API cannot be reached at all.</summary>
    private sealed class UnreachableMembers : IRaftMembers
    {
        private static InvalidOperationException Down() => new("member API down for this test");

        public Task<MemberObservation> ObserveAsync(MemberTarget target, CancellationToken cancellationToken) => throw Down();

        public Task<ulong> AddLearnerAsync(MemberTarget target, string peerUrl, CancellationToken cancellationToken) => throw Down();

        public Task PromoteAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) => throw Down();

        public Task RemoveAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) => throw Down();

        public Task MoveLeaderAsync(MemberTarget target, ulong toId, CancellationToken cancellationToken) => throw Down();

        public Task<int> SetTimingAsync(MemberTarget target, Operator.Tuning.RaftTiming timing, CancellationToken cancellationToken) => throw Down();
    }

    private async Task<List<IKubernetesObject<V1ObjectMeta>>> OwnedObjectsAsync(string ns)
    {
        var all = new List<IKubernetesObject<V1ObjectMeta>>();
        all.AddRange((await kube.Client.CoreV1.ListNamespacedServiceAsync(ns)).Items.Select(WithKind<V1Service>("Service")));
        all.AddRange((await kube.Client.CoreV1.ListNamespacedConfigMapAsync(ns)).Items.Where(c => c.Metadata.Name != "kube-root-ca.crt").Select(WithKind<V1ConfigMap>("ConfigMap")));
        all.AddRange((await kube.Client.AppsV1.ListNamespacedStatefulSetAsync(ns)).Items.Select(WithKind<V1StatefulSet>("StatefulSet")));
        all.AddRange((await kube.Client.PolicyV1.ListNamespacedPodDisruptionBudgetAsync(ns)).Items.Select(WithKind<V1PodDisruptionBudget>("PodDisruptionBudget")));
        return all;
    }

    private static Func<T, IKubernetesObject<V1ObjectMeta>> WithKind<T>(string kind)
        where T : IKubernetesObject<V1ObjectMeta> => o =>
        {
            o.Kind = kind;
            return o;
        };

    private static V1Condition? Condition(RaftCluster cluster, string type) => cluster.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

}
