using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tests.Runtime;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>
/// A version change rolls the pods one at a time, the leader's last after a transfer. No pod runtime
/// here: the test plays the StatefulSet controller (revisions, pods) and the kubelet (readiness).
/// </summary>
public sealed class RollingUpdateTests(LocalKubeCluster kube) : IClassFixture<LocalKubeCluster>
{
    [Fact]
    public async Task A_version_change_restarts_one_pod_at_a_time_and_the_leaders_last_after_a_transfer()
    {
        var ns = await kube.NewNamespaceAsync("roll");
        var members = new ModelRaftMembers(kube.Client);
        await using var op = await RunningOperator.StartAsync(kube.Client, members, ns, "op-roll", ns);
        await kube.CreateClusterAsync(ns, "demo", edit: s => s.Version = "v1");
        var statefulSet = await Eventually.Until(async () => await ReadStatefulSetAsync(ns), s => s is not null, _ => "no StatefulSet");
        await SetRevisionAsync(ns, "r1");
        for (var i = 0; i < 3; i++)
        {
            await CreateReadyPodAsync(ns, statefulSet!, i, "r1");
        }

        await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
            c => c.Status?.ReadyReplicas == 3 && c.Status.Phase == ClusterPhase.Running,
            c => KubernetesJson.Serialize(c.Status));

        await kube.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("""{"spec":{"version":"v2"}}""", V1Patch.PatchType.MergePatch),
            RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, "demo");
        var updated = await Eventually.Until(async () => (await ReadStatefulSetAsync(ns))!, s => s.Spec.Template.Spec.Containers[0].Image.EndsWith(":v2", StringComparison.Ordinal),
            s => s.Spec.Template.Spec.Containers[0].Image);
        Assert.Equal(statefulSet!.Metadata.Uid, updated.Metadata.Uid);
        var podsNow = (await kube.Client.CoreV1.ListNamespacedPodAsync(ns)).Items;
        Assert.True(podsNow.Count == 3, $"pods after the template update: {string.Join(", ", podsNow.Select(p => $"{p.Metadata.Name} owners {KubernetesJson.Serialize(p.Metadata.OwnerReferences)}"))}; sts uid {updated.Metadata.Uid}");
        await SetRevisionAsync(ns, "r2");

        // Play the StatefulSet controller: a deleted pod comes back on the new revision, ready.
        var restarted = new List<string>();
        var leaderWhenRestarted = new List<string>();
        var overlaps = new List<string>();
        await Eventually.Until(async () =>
        {
            var pods = (await kube.Client.CoreV1.ListNamespacedPodAsync(ns)).Items;
            for (var i = 0; i < 3; i++)
            {
                if (pods.All(p => p.Metadata.Name != $"demo-{i}"))
                {
                    restarted.Add($"demo-{i}");
                    leaderWhenRestarted.Add(members.LeaderPod(ns, "demo")); // the Raft side's view, not a possibly stale status
                    if (pods.Count != 2)
                    {
                        overlaps.Add($"while {restarted[^1]} was down, pods present: [{string.Join(", ", pods.Select(p => p.Metadata.Name))}]");
                    }

                    await CreateReadyPodAsync(ns, statefulSet!, i, "r2");
                }
            }

            return pods.Count == 3 && pods.All(p => p.Metadata.Labels["controller-revision-hash"] == "r2");
        }, done => done, _ => $"restarted so far: {string.Join(", ", restarted)}; overlaps: {string.Join("; ", overlaps)}; calls: {string.Join("; ", members.Calls)}", TimeSpan.FromSeconds(60));

        var events = (await kube.Client.CoreV1.ListNamespacedEventAsync(ns)).Items.OrderBy(e => e.Metadata.CreationTimestamp).Select(e => $"{e.Reason}: {e.Message}");
        Assert.True(overlaps.Count == 0, $"{string.Join("; ", overlaps)}; events: {string.Join(" | ", events)}");
        Assert.Equal(["demo-2", "demo-1", "demo-0"], restarted);
        // demo-0 led at first; it handed over before its own restart, so no pod was restarted while it led.
        Assert.Equal("demo-0", leaderWhenRestarted[0]);
        Assert.NotEqual("demo-0", leaderWhenRestarted[2]);
        Assert.Contains(members.Calls, c => c.Contains("move leader", StringComparison.Ordinal));
    }

    private async Task<V1StatefulSet?> ReadStatefulSetAsync(string ns)
    {
        try
        {
            return await kube.Client.AppsV1.ReadNamespacedStatefulSetAsync("demo", ns);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private Task<V1StatefulSet> SetRevisionAsync(string ns, string revision) =>
        kube.Client.AppsV1.PatchNamespacedStatefulSetStatusAsync(new V1Patch(new JsonObject
        {
            ["status"] = new JsonObject { ["replicas"] = 3, ["updateRevision"] = revision, ["currentRevision"] = revision },
        }.ToJsonString(), V1Patch.PatchType.MergePatch), "demo", ns);

    private async Task CreateReadyPodAsync(string ns, V1StatefulSet statefulSet, int ordinal, string revision)
    {
        var labels = new Dictionary<string, string>(ClusterLabels.For("demo")) { ["controller-revision-hash"] = revision };
        var pod = await kube.Client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = $"demo-{ordinal}",
                Labels = labels,
                OwnerReferences = [new V1OwnerReference { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = "demo", Uid = statefulSet.Metadata.Uid, Controller = true }],
            },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "raftkv", Image = "raftkv:test" }] },
        }, ns);
        pod.Status = new V1PodStatus
        {
            Phase = "Running",
            Conditions = [new V1PodCondition { Type = "Ready", Status = "True" }],
        };
        await kube.Client.CoreV1.ReplaceNamespacedPodStatusAsync(pod, pod.Metadata.Name, ns);
    }
}
