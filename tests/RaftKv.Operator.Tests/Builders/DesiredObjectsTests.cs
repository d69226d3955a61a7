using k8s;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Builders;

public sealed class DesiredObjectsTests
{
    private static readonly ClusterObjectBuilder Builder = new(new OperatorSettings { DefaultVersion = "0.1.0" });

    [Fact]
    public void Supporting_objects_come_before_the_statefulset_that_uses_them()
    {
        var objects = DesiredObjects.For(Clusters.Demo(), Builder, RaftTiming.EtcdDefault, (3, false), 3);
        Assert.Equal(
            ["Service/demo-peers", "Service/demo-client", "ConfigMap/demo-tuning", "ConfigMap/demo-members", "PodDisruptionBudget/demo", "StatefulSet/demo"],
            objects.Select(o => o.Key));
    }

    [Fact]
    public void The_members_config_map_is_left_out_while_the_membership_is_unknown()
    {
        var objects = DesiredObjects.For(Clusters.Demo(), Builder, RaftTiming.EtcdDefault, null, 3);
        Assert.DoesNotContain(objects, o => o.Key == "ConfigMap/demo-members");
    }

    [Fact]
    public void A_cluster_from_a_snapshot_mounts_it_and_restores_it_only_while_it_forms()
    {
        var cluster = Clusters.Demo(configure: s => s.Bootstrap = new RaftClusterBootstrap
        {
            Snapshot = new RaftClusterSnapshotSource { PersistentVolumeClaimName = "backups", Path = "nightly/demo.db" },
        });
        V1PodSpec Pod((int, bool)? members) =>
            ((V1StatefulSet)DesiredObjects.For(cluster, Builder, RaftTiming.EtcdDefault, members, 1).Single(o => o.Key == "StatefulSet/demo").Object).Spec.Template.Spec;

        var forming = Pod((1, false));
        var claim = Assert.Single(forming.Volumes, v => v.PersistentVolumeClaim is not null);
        Assert.Equal(("restore", "backups", true), (claim.Name, claim.PersistentVolumeClaim.ClaimName, claim.PersistentVolumeClaim.ReadOnlyProperty ?? false));
        var container = Assert.Single(forming.Containers);
        Assert.Contains(container.VolumeMounts, m => m.Name == "restore" && m.MountPath == "/var/lib/raftkv-restore" && m.ReadOnlyProperty == true);
        Assert.Equal("--restore-snapshot=/var/lib/raftkv-restore/nightly/demo.db", container.Args[^1]);

        foreach (var formed in new (int, bool)?[] { (3, true), null })
        {
            var pod = Pod(formed);
            Assert.DoesNotContain(pod.Volumes, v => v.Name == "restore");
            Assert.DoesNotContain(pod.Containers[0].Args, a => a.StartsWith("--restore-snapshot", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void A_missing_object_needs_applying()
    {
        Assert.True(DesiredObjects.NeedsApply(Builder.ClientService(Clusters.Demo()), null));
    }

    [Fact]
    public void Fields_the_server_adds_do_not_count_as_differences()
    {
        var desired = Builder.ClientService(Clusters.Demo());
        var live = RoundTrip(desired);
        live.Metadata.ResourceVersion = "42";
        live.Metadata.Uid = "abc";
        live.Metadata.Labels["added-by-someone"] = "x";
        live.Spec.ClusterIP = "10.0.0.12";
        live.Spec.SessionAffinity = "None";
        live.Status = new V1ServiceStatus();

        Assert.False(DesiredObjects.NeedsApply(desired, live));
    }

    [Fact]
    public void A_changed_field_we_own_needs_applying()
    {
        var desired = Builder.ClientService(Clusters.Demo());
        var live = RoundTrip(desired);
        live.Spec.Ports[0].Port = 12379;
        Assert.True(DesiredObjects.NeedsApply(desired, live));

        var relabeled = RoundTrip(desired);
        relabeled.Metadata.Labels.Remove("app.kubernetes.io/managed-by");
        Assert.True(DesiredObjects.NeedsApply(desired, relabeled));
    }

    [Fact]
    public void The_statefulset_replica_count_is_the_planners_not_a_difference()
    {
        var desired = Builder.StatefulSet(Clusters.Demo(5), 5);
        var live = RoundTrip(desired);
        live.Spec.Replicas = 4;
        Assert.False(DesiredObjects.NeedsApply(desired, live));

        live.Spec.Template.Spec.Containers[0].Image = "raftkv:0.0.9";
        Assert.True(DesiredObjects.NeedsApply(desired, live));
    }

    [Fact]
    public void Canonicalized_quantities_are_equal()
    {
        var desired = Builder.StatefulSet(Clusters.Demo(configure: s => s.Storage.Size = "1024Mi"), 3);
        var live = RoundTrip(desired);
        live.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests["storage"] = new ResourceQuantity("1Gi");
        Assert.False(DesiredObjects.NeedsApply(desired, live));
    }

    [Fact]
    public void New_tuning_values_change_only_the_tuning_config_map()
    {
        var before = DesiredObjects.For(Clusters.Demo(), Builder, RaftTiming.EtcdDefault, (3, true), 3);
        var after = DesiredObjects.For(Clusters.Demo(), Builder, new RaftTiming(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(3)), (3, true), 3);
        var changed = before.Zip(after).Where(p => DesiredObjects.NeedsApply(p.Second.Object, p.First.Object)).Select(p => p.First.Key);
        Assert.Equal(["ConfigMap/demo-tuning"], changed);
    }

    private static T RoundTrip<T>(T obj) => KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(obj));
}
