using System.Diagnostics;
using System.Text.Json.Nodes;

namespace RaftKv.E2E.Tests;

/// <summary>
/// Faults on the local control plane with the real operator and raftkv pods: a learner whose pod cannot be
/// scheduled, and network delay between pods that Auto tuning must follow up and back down. Part of
/// <see cref="RaftClusterE2ETests"/> so the class shares one control plane (a class fixture is per class).
/// </summary>
public sealed partial class RaftClusterE2ETests
{
    [Fact]
    public async Task A_learner_that_cannot_be_scheduled_sets_Degraded_Unschedulable_and_scaling_back_removes_it()
    {
        // A one-member cluster pinned to one node: with required anti-affinity on hostname, a second member fits nowhere.
        const string tight = "tight";
        var applied = await demo.ApplyAsync($$"""
            apiVersion: raftkv.io/v1alpha1
            kind: RaftCluster
            metadata:
              name: {{tight}}
            spec:
              replicas: 1
              storage:
                size: 1Gi
                reclaimPolicy: Delete
              podTemplate:
                nodeSelector:
                  kubernetes.io/hostname: node-5
            """);
        Assert.True(applied.Ok, applied.ToString());
        try
        {
            await Eventually.Until(
                async () => (await demo.ClusterAsync(tight))?["status"],
                s => DemoCluster.IsAvailable(s) && s?["voters"]?.GetValue<int>() == 1,
                s => $"{s?.ToJsonString()}\n{demo.Diagnostics()}",
                TimeSpan.FromMinutes(2),
                $"{tight} Available with one voter");

            var watch = Stopwatch.StartNew();
            var up = await demo.KubectlAsync("patch", "raftcluster", tight, "--type=merge", "-p", """{"spec":{"replicas":3}}""");
            Assert.True(up.Ok, up.ToString());
            var stuck = await Eventually.Until(
                async () => (await demo.ClusterAsync(tight))?["status"],
                s => DemoCluster.Condition(s, "Degraded") is ("True", "Unschedulable", { } message) && message.Contains($"{tight}-1", StringComparison.Ordinal)
                    && s?["learners"]?.GetValue<int>() == 1,
                s => $"{s?.ToJsonString()}\n{demo.Diagnostics()}",
                TimeSpan.FromMinutes(1),
                $"{tight} Degraded with reason Unschedulable naming {tight}-1, a learner");
            output.WriteLine($"Degraded {DemoCluster.Condition(stuck, "Degraded")} {watch.ElapsedMilliseconds} ms after scaling to 3");
            Assert.True(DemoCluster.IsAvailable(stuck), $"one healthy voter keeps {tight} available: {stuck?.ToJsonString()}");
            Assert.Contains("cannot start", DemoCluster.Condition(stuck, "Progressing").Message, StringComparison.Ordinal);

            // Scaling back while the learner waits: the learner leaves Raft and its pod goes.
            var back = await demo.KubectlAsync("patch", "raftcluster", tight, "--type=merge", "-p", """{"spec":{"replicas":1}}""");
            Assert.True(back.Ok, back.ToString());
            var healed = await Eventually.Until(
                async () => ((await demo.ClusterAsync(tight))?["status"], (await demo.PodsAsync(tight)).Count),
                // Degraded may stay True for another reason (SlowDisk on a loaded machine), not for the learner.
                x => DemoCluster.Condition(x.Item1, "Degraded").Reason is not (null or "Unschedulable") && x.Item1?["learners"]?.GetValue<int>() == 0
                    && x.Item1?["voters"]?.GetValue<int>() == 1 && x.Count == 1 && DemoCluster.IsAvailable(x.Item1),
                x => $"pods {x.Count}; {x.Item1?.ToJsonString()}\n{demo.Diagnostics()}",
                TimeSpan.FromMinutes(1),
                $"{tight} back to one voter, no learner, one pod, not Degraded for Unschedulable");
            output.WriteLine($"healed: members {healed.Item1?["members"]?.ToJsonString()}");
        }
        finally
        {
            var deleted = await demo.KubectlAsync("delete", "raftcluster", tight, "--wait=true", "--timeout=60s");
            output.WriteLine(deleted.ToString());
        }
    }

    [Fact]
    public async Task Delay_between_pods_raises_the_election_timeout_per_the_formula_without_a_leader_change_and_lowers_it_once_gone()
    {
        await demo.WaitHealthyAsync(3, TimeSpan.FromMinutes(2));
        var auto = await demo.KubectlAsync("patch", "raftcluster", DemoCluster.Name, "--type=merge", "-p",
            """{"spec":{"tuning":{"mode":"Auto","heartbeatInterval":null,"electionTimeout":null}}}""");
        Assert.True(auto.Ok, auto.ToString());
        var before = await Eventually.Until(
            async () => (await demo.ClusterAsync())?["status"],
            s => DemoCluster.IsAvailable(s) && s?["tuning"]?["reason"]?.GetValue<string>()?.StartsWith("Auto", StringComparison.Ordinal) == true,
            s => s?.ToJsonString() ?? "no status",
            TimeSpan.FromMinutes(1),
            "Auto tuning in force");
        var electionBefore = Election(before);
        var (leader, term) = await demo.RaftLeaderAsync();
        var pods = Enumerable.Range(0, 3).Select(i => $"{DemoCluster.Name}-{i}").ToArray();

        // 50 ms on every pod: 100 ms each way between any two, a round trip of about 200 ms.
        var watch = Stopwatch.StartNew();
        var delayed = await demo.KubectlAsync(["annotate", "pod", .. pods, $"{DemoCluster.DelayAnnotation}=50ms", "--overwrite"]);
        Assert.True(delayed.Ok, delayed.ToString());
        var raised = await Eventually.Until(
            async () => (await demo.ClusterAsync())?["status"],
            s => Measured(s) is { RttP99: var rtt } && rtt >= TimeSpan.FromMilliseconds(150) && Election(s) >= Formula(s) && Election(s) > electionBefore,
            s => $"{s?["tuning"]?.ToJsonString()} (formula {(Measured(s) is null ? "-" : Formula(s).ToString())})",
            TimeSpan.FromMinutes(2),
            "the election timeout raised to the formula's value for the delayed round trips");
        output.WriteLine($"raised from {electionBefore} to {Election(raised)} in {watch.Elapsed.TotalSeconds:0.0} s: {raised?["tuning"]?.ToJsonString()}");

        // Observation window: the delay stays, and nobody calls an election.
        var window = Stopwatch.StartNew();
        while (window.Elapsed < TimeSpan.FromSeconds(10))
        {
            var now = await demo.RaftLeaderAsync();
            Assert.True(now == (leader, term), $"leader/term changed under the delay: {leader:x}/{term} -> {now.Leader:x}/{now.Term} at {watch.Elapsed.TotalSeconds:0.0} s");
        }

        // Delay gone: lower values are called for once the members' one-minute RTT windows forget it, and apply after the quiet period.
        watch.Restart();
        var healed = await demo.KubectlAsync(["annotate", "pod", .. pods, $"{DemoCluster.DelayAnnotation}-"]);
        Assert.True(healed.Ok, healed.ToString());
        var lowered = await Eventually.Until(
            async () => (await demo.ClusterAsync())?["status"],
            s => Election(s) <= Election(raised) * 0.8,
            s => $"{s?["tuning"]?.ToJsonString()}",
            TimeSpan.FromMinutes(3),
            "the election timeout lowered after the quiet period");
        output.WriteLine($"lowered to {Election(lowered)} {watch.Elapsed.TotalSeconds:0.0} s after the delay was removed (quiet period {DemoCluster.TuningQuietPeriod}): {lowered?["tuning"]?.ToJsonString()}");
    }

    private static TimeSpan Election(JsonNode? status) =>
        status?["tuning"]?["electionTimeout"]?.GetValue<string>() is { } text ? DemoCluster.ParseDuration(text) : TimeSpan.Zero;

    private static (TimeSpan RttP50, TimeSpan RttP99, TimeSpan FsyncP99)? Measured(JsonNode? status)
    {
        var tuning = status?["tuning"];
        if (tuning?["rttP50"]?.GetValue<string>() is not { } p50 || tuning["rttP99"]?.GetValue<string>() is not { } p99 || tuning["fsyncP99"]?.GetValue<string>() is not { } fsync)
        {
            return null;
        }

        return (DemoCluster.ParseDuration(p50), DemoCluster.ParseDuration(p99), DemoCluster.ParseDuration(fsync));
    }

    /// <summary>DESIGN.md's election timeout (profile Default) for the inputs status reports: max(10·H, 10·(RTT p99 + fsync p99), 1 s), ≤ 50 s, a multiple of H.</summary>
    private static TimeSpan Formula(JsonNode? status)
    {
        var (p50, p99, fsync) = Measured(status) ?? default;
        var ms = (TimeSpan t) => t.TotalMilliseconds;
        var heartbeat = Math.Clamp(Math.Ceiling(Math.Max(ms(p50), ms(fsync)) / 10) * 10, 100, 5000);
        var election = Math.Min(Math.Max(Math.Max(10 * heartbeat, 10 * (ms(p99) + ms(fsync))), 1000), 50_000);
        election = Math.Ceiling(election / heartbeat) * heartbeat;
        if (election > 50_000)
        {
            election = Math.Floor(50_000 / heartbeat) * heartbeat;
        }

        return TimeSpan.FromMilliseconds(election);
    }
}
