using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Tests.Runtime;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>A local API server that keeps only a short watch history, so a watch resumed after a pause gets 410 Gone.</summary>
public sealed class ShortHistoryKubeCluster : LocalKubeCluster
{
    public const int History = 30;

    protected override int WatchHistory => History;
}

public sealed class InformerRelistTests(ShortHistoryKubeCluster kube) : IClassFixture<ShortHistoryKubeCluster>
{
    [Fact]
    public async Task Informers_that_resume_from_a_compacted_version_get_410_relist_and_see_what_changed_meanwhile()
    {
        var ns = await kube.NewNamespaceAsync("relist");
        using var client = kube.NewClient();
        var informers = new ClusterInformers(client, ns, TimeProvider.System, NullLoggerFactory.Instance);
        var deletedSeen = new List<string>();
        informers.ConfigMaps.Subscribe(e =>
        {
            if (e.Type == WatchEventType.Deleted)
            {
                lock (deletedSeen)
                {
                    deletedSeen.Add(e.Object.Metadata.Name);
                }
            }
        });
        await kube.Client.CoreV1.CreateNamespacedConfigMapAsync(Labelled("before"), ns);

        using (var first = new CancellationTokenSource())
        {
            var running = informers.RunAsync(first.Token);
            await informers.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
            Assert.Equal(6, informers.Lists);
            Assert.NotNull(informers.ConfigMaps.Cache.Get(ns, "before"));
            await first.CancelAsync();
            await running.WaitAsync(Eventually.DefaultTimeout);
        }

        // While the informers are away, more changes than the server keeps happen.
        var resumeFrom = informers.ConfigMaps.ResourceVersion;
        await kube.Client.CoreV1.DeleteNamespacedConfigMapAsync("before", ns);
        for (var i = 0; i < ShortHistoryKubeCluster.History + 10; i++)
        {
            await kube.Client.CoreV1.CreateNamespacedConfigMapAsync(Labelled($"during-{i}"), ns);
        }

        using var second = new CancellationTokenSource();
        var resumed = informers.RunAsync(second.Token);
        await Eventually.Until(
            () => informers.ConfigMaps.Cache.Count == ShortHistoryKubeCluster.History + 10 && informers.ConfigMaps.Cache.Get(ns, "before") is null,
            () => $"cache holds {informers.ConfigMaps.Cache.Count} configmaps, lists {informers.ConfigMaps.Lists}, resumed from {resumeFrom}");
        Assert.Equal(2, informers.ConfigMaps.Lists);
        lock (deletedSeen)
        {
            Assert.Equal(["before"], deletedSeen);
        }

        // Every informer resumed from a version the server no longer had, and relisted.
        await Eventually.Until(() => informers.Lists == 12, () => $"lists over all informers: {informers.Lists}");

        // And they watch on: a change after the relist arrives by watch.
        await kube.Client.CoreV1.CreateNamespacedConfigMapAsync(Labelled("after"), ns);
        await Eventually.Until(() => informers.ConfigMaps.Cache.Get(ns, "after") is not null, () => $"lists {informers.ConfigMaps.Lists}");
        Assert.Equal(2, informers.ConfigMaps.Lists);
        await second.CancelAsync();
        await resumed.WaitAsync(Eventually.DefaultTimeout);
    }

    private static V1ConfigMap Labelled(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { [ClusterLabels.NameKey] = ClusterLabels.AppName } },
        Data = new Dictionary<string, string> { ["k"] = "v" },
    };
}
