using k8s;
using k8s.Models;

namespace LocalKube.Tests;

/// <summary>The C# KubernetesClient (what the operator uses) against the local API server.</summary>
public sealed class KubernetesClientTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>
{
    [Fact]
    public async Task Informer_style_list_then_watch_sees_every_later_change()
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kube.KubeconfigPath);
        using var client = new Kubernetes(config);
        var ns = await kube.NewNamespace("informer");
        await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "before" } }, ns);

        // List, then watch from the list's resourceVersion: the informer pattern.
        var list = await client.CoreV1.ListNamespacedConfigMapAsync(ns);
        Assert.Equal(["before"], list.Items.Select(i => i.Metadata.Name));
        var seen = new List<string>();
        var done = new TaskCompletionSource();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var watching = Task.Run(async () =>
        {
            await foreach (var (type, item) in client.CoreV1.WatchListNamespacedConfigMapAsync(ns, resourceVersion: list.Metadata.ResourceVersion, allowWatchBookmarks: true, cancellationToken: cts.Token))
            {
                if (type == WatchEventType.Bookmark)
                {
                    continue;
                }

                lock (seen)
                {
                    seen.Add($"{type}:{item.Metadata.Name}:{(item.Data is { } d && d.TryGetValue("k", out var v) ? v : "")}");
                    if (seen.Count == 3)
                    {
                        done.TrySetResult();
                        return;
                    }
                }
            }
        });

        var created = await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "after" }, Data = new Dictionary<string, string> { ["k"] = "1" } }, ns);
        created.Data["k"] = "2";
        await client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "after", ns);
        await client.CoreV1.DeleteNamespacedConfigMapAsync("before", ns);

        await Task.WhenAny(done.Task, Task.Delay(TimeSpan.FromSeconds(20), cts.Token).ContinueWith(_ => { }, TaskScheduler.Default));
        await cts.CancelAsync();
        lock (seen)
        {
            Assert.True(done.Task.IsCompleted, $"watch saw only: {string.Join(", ", seen)}");
            Assert.Equal(["Added:after:1", "Modified:after:2", "Deleted:before:"], seen);
        }

        try
        {
            await watching;
        }
        catch (OperationCanceledException)
        {
            // Ended by the test.
        }

        // A stale write through the typed client surfaces as a 409.
        var stale = await client.CoreV1.ReadNamespacedConfigMapAsync("after", ns);
        stale.Metadata.ResourceVersion = "1";
        var error = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => client.CoreV1.ReplaceNamespacedConfigMapAsync(stale, "after", ns));
        Assert.Equal(System.Net.HttpStatusCode.Conflict, error.Response.StatusCode);
    }
}
