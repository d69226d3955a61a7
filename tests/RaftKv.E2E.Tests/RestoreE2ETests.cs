namespace RaftKv.E2E.Tests;

/// <summary>A RaftCluster started from a snapshot of another (spec.bootstrap.snapshot on a PersistentVolumeClaim).</summary>
public sealed partial class RaftClusterE2ETests
{
    [Fact]
    public async Task A_cluster_started_from_a_snapshot_of_demo_has_its_keys_grows_to_three_and_stops_mounting_the_snapshot()
    {
        const string Name = "restored";
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(2));
        var put = await demo.EtcdctlAsync("put", "backed-up", "yes");
        Assert.True(put.Ok, put.ToString());

        // The snapshot goes onto a claim, as a backup job would leave it (the local control plane's claims are directories).
        var claim = await demo.ApplyAsync("""
            apiVersion: v1
            kind: PersistentVolumeClaim
            metadata:
              name: backups
            spec:
              accessModes: [ReadWriteOnce]
              resources: {requests: {storage: 1Gi}}
            """);
        Assert.True(claim.Ok, claim.ToString());
        var claimDir = Directory.CreateDirectory(Path.Combine(demo.Root, "volumes", DemoCluster.Namespace, "backups", "nightly")).FullName;
        var saved = await demo.EtcdctlAsync("snapshot", "save", Path.Combine(claimDir, "demo.db"));
        Assert.True(saved.Ok, saved.ToString());

        var applied = await demo.ApplyAsync($$"""
            apiVersion: raftkv.io/v1alpha1
            kind: RaftCluster
            metadata:
              name: {{Name}}
            spec:
              replicas: 3
              bootstrap:
                snapshot:
                  persistentVolumeClaimName: backups
                  path: nightly/demo.db
            """);
        Assert.True(applied.Ok, applied.ToString());
        try
        {
            var status = await demo.WaitAvailableAsync(Name, 3, TimeSpan.FromMinutes(4));
            output.WriteLine($"{Name} Available with leader {status?["leader"]}");

            var get = await demo.EtcdctlAtAsync(Name, "get", "backed-up", "--print-value-only");
            Assert.True(get.Ok && get.Stdout.Trim() == "yes", get.ToString());
            var members = await demo.EtcdctlAtAsync(Name, "member", "list");
            Assert.Equal(3, members.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.Contains($"{Name}-", StringComparison.Ordinal)));

            // Formed: the claim is no longer in the pod template (a claim one node mounts cannot be in every member's pod).
            var template = (await demo.GetAsync($"/apis/apps/v1/namespaces/{DemoCluster.Namespace}/statefulsets/{Name}"))?["spec"]?["template"]?["spec"];
            Assert.DoesNotContain(template?["volumes"]?.AsArray() ?? [], v => v?["name"]?.GetValue<string>() == "restore");
        }
        finally
        {
            await demo.KubectlAsync("delete", "raftcluster", Name, "--wait=false");
        }
    }
}
