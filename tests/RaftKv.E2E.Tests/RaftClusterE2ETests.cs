using System.Diagnostics;
using Xunit.Abstractions;

namespace RaftKv.E2E.Tests;

/// <summary>The sample RaftCluster on the local control plane with real raftkv pods, driven as a user would:
/// kubectl for the resource, etcdctl through the client Service.</summary>
public sealed partial class RaftClusterE2ETests(DemoCluster demo, ITestOutputHelper output) : IClassFixture<DemoCluster>
{
    [Fact]
    public async Task The_sample_serves_etcdctl_through_the_client_service_and_even_replicas_are_refused()
    {
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(2));
        var put = await demo.EtcdctlAsync("put", "greeting", "hello");
        Assert.True(put.Ok && put.Stdout.Contains("OK", StringComparison.Ordinal), put + "\n" + demo.Diagnostics());
        var get = await demo.EtcdctlAsync("get", "greeting", "--print-value-only");
        Assert.True(get.Ok, get.ToString());
        Assert.Equal("hello", get.Stdout.Trim());

        var even = await demo.KubectlAsync("patch", "raftcluster", DemoCluster.Name, "--type=merge", "-p", """{"spec":{"replicas":4}}""");
        Assert.False(even.Ok, even.ToString());
        Assert.Contains("odd", even.Stderr, StringComparison.Ordinal);
        var replicas = await demo.KubectlAsync("get", "raftcluster", DemoCluster.Name, "-o", "jsonpath={.spec.replicas}");
        Assert.Equal("3", replicas.Stdout.Trim());
    }

    [Fact]
    public async Task Scaling_3_to_5_by_patch_and_back_to_3_by_kubectl_scale_changes_the_member_list()
    {
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(2));
        var watch = Stopwatch.StartNew();
        var up = await demo.KubectlAsync("patch", "raftcluster", DemoCluster.Name, "--type=merge", "-p", """{"spec":{"replicas":5}}""");
        Assert.True(up.Ok, up.ToString());
        await demo.WaitHealthyAsync(5, TimeSpan.FromMinutes(3));
        output.WriteLine($"scaled 3 -> 5 in {watch.Elapsed.TotalSeconds:0.0} s");
        var put = await demo.EtcdctlAsync("put", "after-scale-up", "5");
        Assert.True(put.Ok, put.ToString());

        watch.Restart();
        var down = await demo.KubectlAsync("scale", "raftcluster", DemoCluster.Name, "--replicas=3");
        Assert.True(down.Ok, down.ToString());
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(3));
        output.WriteLine($"scaled 5 -> 3 in {watch.Elapsed.TotalSeconds:0.0} s");
        var get = await demo.EtcdctlAsync("get", "after-scale-up", "--print-value-only");
        Assert.True(get.Ok && get.Stdout.Trim() == "5", get.ToString());
    }

    [Fact]
    public async Task Deleting_the_leaders_pod_writes_resume_and_the_cluster_heals()
    {
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(2));

        // Auto tuning follows what it measures, and on a loaded shared machine that can be an election timeout of
        // tens of seconds; failover is measured with fixed timing (Manual) so the figure means something.
        var manual = await demo.KubectlAsync("patch", "raftcluster", DemoCluster.Name, "--type=merge", "-p",
            """{"spec":{"tuning":{"mode":"Manual","heartbeatInterval":"200ms","electionTimeout":"2s"}}}""");
        Assert.True(manual.Ok, manual.ToString());
        var status = await Eventually.Until(
            async () => (await demo.ClusterAsync())?["status"],
            s => s?["tuning"]?["electionTimeout"]?.GetValue<string>() == "2s" && DemoCluster.IsAvailable(s),
            s => s?.ToJsonString() ?? "no status",
            TimeSpan.FromMinutes(1),
            "Manual timing 200ms/2s in force");
        var leader = status!["leader"]!.GetValue<string>();
        var uid = (await demo.GetAsync($"/api/v1/namespaces/{DemoCluster.Namespace}/pods/{leader}"))?["metadata"]?["uid"]?.GetValue<string>() ?? "";
        var leaderLog = Path.Combine(demo.Root, "pods", $"{DemoCluster.Namespace}_{leader}_{uid[..Math.Min(8, uid.Length)]}", "raftkv.log");
        var before = await demo.EtcdctlAsync("put", "before-failover", "1");
        Assert.True(before.Ok, before.ToString());

        var watch = Stopwatch.StartNew();
        var delete = await demo.KubectlAsync("delete", "pod", leader, "--wait=false");
        Assert.True(delete.Ok, delete.ToString());
        var deleted = watch.Elapsed;

        // Writes through the Service until one succeeds after the deletion: that is when writes resumed.
        Result? last = null;
        var resumed = await Eventually.Until(
            async () => last = await demo.EtcdctlAsync("put", "after-failover", "1"),
            r => r.Ok,
            r => r?.ToString() ?? "",
            TimeSpan.FromMinutes(1),
            "a write after the leader's pod was deleted");
        var resumedAfter = watch.Elapsed;
        output.WriteLine($"leader {leader} deleted at {deleted.TotalMilliseconds:0} ms; writes resumed {resumedAfter.TotalMilliseconds:0} ms after the delete was issued");
        Console.WriteLine($"e2e: writes resumed {resumedAfter.TotalMilliseconds:0} ms after the leader's pod ({leader}) was deleted");

        // The mechanism behind a quick resume: the terminating leader still reached its peers (the pod keeps its links
        // until its process exits) and handed leadership over on SIGTERM. Without that it finds no connected voter,
        // stops without a handover, and the others wait an election timeout (tens of seconds under Auto tuning).
        await Eventually.Until(
            async () => File.Exists(leaderLog) ? await File.ReadAllTextAsync(leaderLog) : $"{leaderLog} missing",
            text => text.Contains("handed leadership to", StringComparison.Ordinal),
            text => $"{leaderLog}:\n{text}",
            TimeSpan.FromMinutes(1),
            "the old leader's log says it handed leadership over before stopping");

        var healed = await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(3));
        output.WriteLine($"healed in {watch.Elapsed.TotalSeconds:0.0} s; leader now {healed?["leader"]}");
        var get = await demo.EtcdctlAsync("get", "before-failover", "--print-value-only");
        Assert.True(get.Ok && get.Stdout.Trim() == "1", get.ToString());
        var auto = await demo.KubectlAsync("patch", "raftcluster", DemoCluster.Name, "--type=merge", "-p",
            """{"spec":{"tuning":{"mode":"Auto","heartbeatInterval":null,"electionTimeout":null}}}""");
        Assert.True(auto.Ok, auto.ToString());
    }
}
