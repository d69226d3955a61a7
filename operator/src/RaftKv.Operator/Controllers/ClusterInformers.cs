using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator.Controllers;

/// <summary>
/// The informers the RaftCluster controller reads from: RaftClusters, and the kinds it owns (selected by
/// the <c>app.kubernetes.io/name=raftkv</c> label, so the operator does not cache every pod of the cluster).
/// </summary>
internal sealed class ClusterInformers
{
    /// <summary>The label every object the operator makes carries (pods through the StatefulSet's template).</summary>
    public static readonly string OwnedSelector = $"{ClusterLabels.NameKey}={ClusterLabels.AppName}";

    /// <summary>How long the server keeps one watch open; the informer resumes from its resourceVersion after.</summary>
    private const int WatchTimeoutSeconds = 300;

    public ClusterInformers(IKubernetes client, string? @namespace, TimeProvider time, ILoggerFactory loggers, InformerOptions? options = null)
    {
        var scope = string.IsNullOrEmpty(@namespace) ? "all namespaces" : $"namespace {@namespace}";
        var logger = loggers.CreateLogger("RaftKv.Operator.Runtime.Informer");
        bool? Bookmarks(bool watch) => watch ? true : null;
        int? Timeout(bool watch) => watch ? WatchTimeoutSeconds : null;

        Clusters = new Informer<RaftCluster>(new KubernetesListWatcher<RaftCluster, RaftClusterList>($"raftclusters in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.CustomObjects.ListClusterCustomObjectWithHttpMessagesAsync<RaftClusterList>(RaftCluster.Group, RaftCluster.Version, RaftCluster.Plural,
                    allowWatchBookmarks: Bookmarks(watch), resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.CustomObjects.ListNamespacedCustomObjectWithHttpMessagesAsync<RaftClusterList>(RaftCluster.Group, RaftCluster.Version, @namespace, RaftCluster.Plural,
                    allowWatchBookmarks: Bookmarks(watch), resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)), time, logger, options);

        StatefulSets = new Informer<V1StatefulSet>(new KubernetesListWatcher<V1StatefulSet, V1StatefulSetList>($"statefulsets in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.AppsV1.ListStatefulSetForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.AppsV1.ListNamespacedStatefulSetWithHttpMessagesAsync(@namespace, allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)),
            time, logger, options);

        Services = new Informer<V1Service>(new KubernetesListWatcher<V1Service, V1ServiceList>($"services in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.CoreV1.ListServiceForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.CoreV1.ListNamespacedServiceWithHttpMessagesAsync(@namespace, allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)),
            time, logger, options);

        ConfigMaps = new Informer<V1ConfigMap>(new KubernetesListWatcher<V1ConfigMap, V1ConfigMapList>($"configmaps in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.CoreV1.ListConfigMapForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.CoreV1.ListNamespacedConfigMapWithHttpMessagesAsync(@namespace, allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)),
            time, logger, options);

        Budgets = new Informer<V1PodDisruptionBudget>(new KubernetesListWatcher<V1PodDisruptionBudget, V1PodDisruptionBudgetList>($"poddisruptionbudgets in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.PolicyV1.ListPodDisruptionBudgetForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.PolicyV1.ListNamespacedPodDisruptionBudgetWithHttpMessagesAsync(@namespace, allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)),
            time, logger, options);

        Pods = new Informer<V1Pod>(new KubernetesListWatcher<V1Pod, V1PodList>($"pods in {scope}",
            (rv, watch, ct) => string.IsNullOrEmpty(@namespace)
                ? client.CoreV1.ListPodForAllNamespacesWithHttpMessagesAsync(allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)
                : client.CoreV1.ListNamespacedPodWithHttpMessagesAsync(@namespace, allowWatchBookmarks: Bookmarks(watch), labelSelector: OwnedSelector, resourceVersion: rv, timeoutSeconds: Timeout(watch), watch: watch, cancellationToken: ct)),
            time, logger, options);
    }

    public Informer<RaftCluster> Clusters { get; }

    public Informer<V1StatefulSet> StatefulSets { get; }

    public Informer<V1Service> Services { get; }

    public Informer<V1ConfigMap> ConfigMaps { get; }

    public Informer<V1PodDisruptionBudget> Budgets { get; }

    public Informer<V1Pod> Pods { get; }

    /// <summary>Run every informer until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => Task.WhenAll(
        Clusters.RunAsync(cancellationToken), StatefulSets.RunAsync(cancellationToken), Services.RunAsync(cancellationToken),
        ConfigMaps.RunAsync(cancellationToken), Budgets.RunAsync(cancellationToken), Pods.RunAsync(cancellationToken));

    /// <summary>Completes when every informer has listed once.</summary>
    public Task WaitForSyncAsync(CancellationToken cancellationToken) => Task.WhenAll(
        Clusters.WaitForSyncAsync(cancellationToken), StatefulSets.WaitForSyncAsync(cancellationToken), Services.WaitForSyncAsync(cancellationToken),
        ConfigMaps.WaitForSyncAsync(cancellationToken), Budgets.WaitForSyncAsync(cancellationToken), Pods.WaitForSyncAsync(cancellationToken));

    public bool HasSynced => Clusters.HasSynced && StatefulSets.HasSynced && Services.HasSynced && ConfigMaps.HasSynced && Budgets.HasSynced && Pods.HasSynced;

    /// <summary>All full lists made so far, over all informers (grows by one per relist after a 410).</summary>
    public int Lists => Clusters.Lists + StatefulSets.Lists + Services.Lists + ConfigMaps.Lists + Budgets.Lists + Pods.Lists;
}
