using System.Diagnostics;
using Grpc.Core;
using RaftKv.Protocol.Admin;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>
/// One fault scenario: a cluster size and a fault schedule that runs while clients load the cluster. After it the
/// runner heals every fault, restarts stopped members and checks the history, the watch and the members' hashes.
/// </summary>
/// <param name="Name">Name on the result line and for --scenario.</param>
/// <param name="Size">Members at the start.</param>
/// <param name="Bounded">Part of the bounded (CI) set; the full set runs every scenario, longer.</param>
/// <param name="Faults">The fault schedule; runs until <see cref="ScenarioContext.Running"/> turns false.</param>
/// <param name="OnlyWorkloadWrites">Every revision comes from the workload (false when the scenario writes other keys), so the watch must see each one.</param>
/// <param name="Custom">A scenario with its own set-up and checks (the operator scenarios on the local control plane): seed, options → result.</param>
internal sealed record Scenario(string Name, int Size, bool Bounded, Func<ScenarioContext, Task> Faults, bool OnlyWorkloadWrites = true,
    Func<int, ChaosOptions, CancellationToken, Task<ScenarioResult>>? Custom = null)
{
    public override string ToString() => Name;
}

/// <summary>What a fault schedule works with: the cluster, seeded randomness, the event log and the time left.</summary>
internal sealed class ScenarioContext
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public required ChaosCluster Cluster { get; init; }

    public required Random Random { get; init; }

    public required EventLog Log { get; init; }

    public required TimeSpan Duration { get; init; }

    public required Watcher Watcher { get; init; }

    public required CancellationToken Cancellation { get; init; }

    /// <summary>The highest revision compacted so far (a resumed watch must start above it).</summary>
    public long CompactedTo { get; set; }

    /// <summary>Members that were given up on purpose (a corrupted member that refused to start).</summary>
    public List<string> Notes { get; } = [];

    private bool _started;

    /// <summary>True while the schedule is to go on: always for its first round, then until <see cref="Duration"/> passed.</summary>
    public bool Running
    {
        get
        {
            var first = !_started;
            _started = true;
            return !Cancellation.IsCancellationRequested && (first || _clock.Elapsed < Duration);
        }
    }

    /// <summary>Waits a random time between the bounds (the schedule's pacing; the durations come from the seed).</summary>
    public Task PauseAsync(int minMs, int maxMs) => Task.Delay(Random.Next(minMs, maxMs + 1), Cancellation);

    public ChaosMember Pick(IReadOnlyList<ChaosMember> members) => members[Random.Next(members.Count)];

    public List<ChaosMember> Shuffled(IEnumerable<ChaosMember> members) => [.. members.OrderBy(m => m.Name, StringComparer.Ordinal).Select(m => (m, Random.Next())).OrderBy(x => x.Item2).Select(x => x.m)];

    /// <summary>The agreed leader, waiting up to 15 s for one.</summary>
    public async Task<ChaosMember?> LeaderAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            if (await Cluster.LeaderAsync(Cancellation).ConfigureAwait(false) is { } leader)
            {
                return leader;
            }

            await Task.Delay(100, Cancellation).ConfigureAwait(false);
        }

        Log.Add("no agreed leader within 15 s");
        return null;
    }
}

/// <summary>The scenarios. Every random choice comes from the scenario's seeded <see cref="Random"/>.</summary>
internal static class Scenarios
{
    public static IReadOnlyList<Scenario> All { get; } =
    [
        new("kill-random-3", 3, false, KillRandomAsync),
        new("kill-leader-3", 3, true, KillLeaderAsync),
        new("kill-leader-5", 5, false, KillLeaderAsync),
        new("kill-two-5", 5, false, KillTwoAsync),
        new("restart-all-3", 3, false, RestartAllAsync),
        new("partition-minority-5", 5, false, MinorityPartitionAsync),
        new("partition-no-majority-5", 5, false, NoMajorityPartitionAsync),
        new("partition-no-majority-3", 3, false, NoMajorityPartitionAsync),
        new("isolated-leader-3", 3, true, IsolatedLeaderAsync),
        new("asymmetric-cut-3", 3, false, AsymmetricCutAsync),
        new("asymmetric-cut-5", 5, false, AsymmetricCutAsync),
        new("delay-and-loss-3", 3, false, DelayAsync),
        new("slow-disk-3", 3, true, SlowDiskAsync),
        new("move-leader-3", 3, false, MoveLeaderAsync),
        new("membership-3", 3, false, MembershipAsync),
        new("compact-defrag-3", 3, false, CompactDefragAsync),
        new("mixed-5", 5, false, MixedAsync),
        new("bad-input-3", 3, true, BadInput.RunAsync, OnlyWorkloadWrites: false),
        new("clean-restart-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.None)),
        new("torn-wal-tail-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.WalTornTail)),
        new("lost-wal-tail-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.WalTruncatedTail)),
        new("corrupt-wal-middle-3", 3, true, c => Corruption.RunAsync(c, Corruption.Kind.WalFlippedBytes)),
        new("corrupt-snapshot-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.SnapshotFlippedBytes)),
        new("truncated-snapshot-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.SnapshotTruncated)),
        new("corrupt-store-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.StoreFlippedBytes)),
        new("truncated-store-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.StoreTruncated)),
        new("corrupt-store-value-3", 3, false, c => Corruption.RunAsync(c, Corruption.Kind.StoreFlippedValue), OnlyWorkloadWrites: false),
        .. Operator.OperatorScenarios.All,
    ];

    private static async Task KillRandomAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var victim = c.Pick([.. c.Cluster.Current]);
            await c.Cluster.KillAsync(victim);
            await c.PauseAsync(300, 2000);
            c.Cluster.Restart(victim);
            await c.PauseAsync(1000, 2500);
        }
    }

    private static async Task KillLeaderAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            if (await c.LeaderAsync() is { } leader)
            {
                await c.Cluster.KillAsync(leader);
                await c.PauseAsync(500, 2000);
                c.Cluster.Restart(leader);
            }

            await c.PauseAsync(1500, 3000);
        }
    }

    private static async Task KillTwoAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var victims = c.Shuffled(c.Cluster.Current).Take(2).ToList();
            await Task.WhenAll(victims.Select(c.Cluster.KillAsync));
            await c.PauseAsync(500, 2500);
            victims.ForEach(c.Cluster.Restart);
            await c.PauseAsync(1500, 3000);
        }
    }

    private static async Task RestartAllAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var all = c.Cluster.Current.ToList();
            await Task.WhenAll(all.Select(c.Cluster.KillAsync));
            await c.PauseAsync(0, 1000);
            all.ForEach(c.Cluster.Restart);
            await c.PauseAsync(2500, 4000);
        }
    }

    private static async Task MinorityPartitionAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var members = c.Shuffled(c.Cluster.Current);
            var minority = members.Take((members.Count - 1) / 2).ToList();
            await c.Cluster.PartitionAsync(minority, [.. members.Skip(minority.Count)], c.Cancellation);
            await c.PauseAsync(1500, 4000);
            await c.Cluster.HealAsync(c.Cancellation);
            await c.PauseAsync(1000, 2000);
        }
    }

    private static async Task NoMajorityPartitionAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            // Every member alone or in a pair: no side has a majority, so no write may commit until it heals.
            var members = c.Shuffled(c.Cluster.Current);
            var groups = members.Chunk(members.Count == 3 ? 1 : 2).ToList();
            for (var i = 0; i < groups.Count; i++)
            {
                for (var j = i + 1; j < groups.Count; j++)
                {
                    await c.Cluster.PartitionAsync(groups[i], groups[j], c.Cancellation);
                }
            }

            await c.PauseAsync(1500, 3500);
            await c.Cluster.HealAsync(c.Cancellation);
            await c.PauseAsync(1500, 2500);
        }
    }

    private static async Task IsolatedLeaderAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            if (await c.LeaderAsync() is { } leader)
            {
                await c.Cluster.PartitionAsync([leader], [.. c.Cluster.Current.Where(m => m != leader)], c.Cancellation);
                await c.PauseAsync(2000, 4000);
                await c.Cluster.HealAsync(c.Cancellation);
            }

            await c.PauseAsync(1000, 2000);
        }
    }

    private static async Task AsymmetricCutAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var members = c.Cluster.Current.ToList();
            var leader = await c.LeaderAsync() ?? c.Pick(members);
            var others = members.Where(m => m != leader).ToList();
            switch (c.Random.Next(3))
            {
                case 0:
                    // The leader hears everyone but nobody hears it.
                    c.Log.Add($"asymmetric: {leader.Name} cannot send");
                    foreach (var o in others)
                    {
                        await c.Cluster.SetPeerFaultAsync(leader, o, new PeerFaultRequest { Cut = true }, c.Cancellation);
                    }

                    break;
                case 1:
                    // Everyone hears the leader but it hears nobody.
                    c.Log.Add($"asymmetric: {leader.Name} cannot receive");
                    foreach (var o in others)
                    {
                        await c.Cluster.SetPeerFaultAsync(o, leader, new PeerFaultRequest { Cut = true }, c.Cancellation);
                    }

                    break;
                default:
                    // One follower cannot send to the leader (it still gets heartbeats, so it may never campaign).
                    var follower = c.Pick(others);
                    c.Log.Add($"asymmetric: {follower.Name} cannot send to {leader.Name}");
                    await c.Cluster.SetPeerFaultAsync(follower, leader, new PeerFaultRequest { Cut = true }, c.Cancellation);
                    break;
            }

            await c.PauseAsync(2000, 4000);
            await c.Cluster.HealAsync(c.Cancellation);
            await c.PauseAsync(1000, 2000);
        }
    }

    private static async Task DelayAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var members = c.Cluster.Current.ToList();
            foreach (var from in members)
            {
                foreach (var to in members.Where(m => m != from))
                {
                    if (c.Random.Next(2) == 0)
                    {
                        var fault = new PeerFaultRequest { DelayMs = (uint)c.Random.Next(10, 200), Loss = c.Random.Next(3) == 0 ? 0.1 : 0 };
                        c.Log.Add($"{from.Name} -> {to.Name}: delay {fault.DelayMs} ms, loss {fault.Loss}");
                        await c.Cluster.SetPeerFaultAsync(from, to, fault, c.Cancellation);
                    }
                }
            }

            await c.PauseAsync(1500, 3000);
            await c.Cluster.HealAsync(c.Cancellation);
        }
    }

    private static async Task SlowDiskAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var members = c.Cluster.Current.ToList();
            var slow = c.Random.Next(2) == 0 ? await c.LeaderAsync() ?? c.Pick(members) : c.Pick(members);
            await c.Cluster.SetDiskFaultAsync(slow, c.Random.Next(50, 800), c.Cancellation);
            if (c.Random.Next(3) == 0)
            {
                await c.Cluster.SetDiskFaultAsync(c.Pick(members), c.Random.Next(20, 300), c.Cancellation);
            }

            await c.PauseAsync(1500, 3500);
            await c.Cluster.HealAsync(c.Cancellation);
            await c.PauseAsync(500, 1500);
        }
    }

    private static async Task MoveLeaderAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            if (await c.LeaderAsync() is { } leader)
            {
                var target = c.Pick([.. c.Cluster.Current.Where(m => m != leader)]);
                c.Log.Add($"move leader {leader.Name} -> {target.Name}");
                try
                {
                    await new Maintenance.MaintenanceClient(leader.Channel).MoveLeaderAsync(new MoveLeaderRequest { TargetID = target.Id },
                        deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: c.Cancellation);
                }
                catch (RpcException e)
                {
                    // A transfer may fail (the leader changed meanwhile); that is an answer, not a fault of the cluster.
                    c.Log.Add($"move leader answered {e.StatusCode}: {e.Status.Detail}");
                }
            }

            await c.PauseAsync(500, 1500);
        }
    }

    private static async Task MembershipAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            // Grow by a learner, promote it once it caught up, then remove a random other voter (the leader too, sometimes).
            var added = await c.Cluster.AddMemberAsync(c.Cancellation);
            await c.PauseAsync(500, 1500);
            await c.Cluster.PromoteAsync(added, c.Cancellation);
            await c.PauseAsync(500, 1500);
            var victim = c.Pick([.. c.Cluster.Current.Where(m => m != added)]);
            await c.Cluster.RemoveAsync(victim, c.Cancellation);
            await c.PauseAsync(1000, 2000);
        }
    }

    private static async Task CompactDefragAsync(ScenarioContext c)
    {
        while (c.Running)
        {
            var target = c.Watcher.LastRevision - 20;
            if (target > c.CompactedTo)
            {
                c.Log.Add($"compact to {target}");
                try
                {
                    await c.Cluster.CallAnyAsync(ch => new KV.KVClient(ch).CompactAsync(new CompactionRequest { Revision = target, Physical = c.Random.Next(2) == 0 },
                        deadline: ChaosCluster.Deadline(), cancellationToken: c.Cancellation).ResponseAsync, c.Cancellation);
                    c.CompactedTo = target;
                }
                catch (RpcException e)
                {
                    c.Log.Add($"compact answered {e.StatusCode}: {e.Status.Detail}");
                }
            }

            await c.PauseAsync(200, 1000);
            var member = c.Pick([.. c.Cluster.Current]);
            c.Log.Add($"defragment {member.Name}");
            await new Maintenance.MaintenanceClient(member.Channel).DefragmentAsync(new DefragmentRequest(), deadline: DateTime.UtcNow.AddSeconds(30),
                cancellationToken: c.Cancellation);
            await c.PauseAsync(200, 1000);
        }
    }

    private static async Task MixedAsync(ScenarioContext c)
    {
        Func<ScenarioContext, Task>[] steps = [KillRandomAsync, KillLeaderAsync, MinorityPartitionAsync, IsolatedLeaderAsync, AsymmetricCutAsync, DelayAsync, SlowDiskAsync, MoveLeaderAsync];
        while (c.Running)
        {
            // One round of a randomly chosen schedule (its context ends right after the first round), then heal.
            var step = steps[c.Random.Next(steps.Length)];
            c.Log.Add($"mixed: {step.Method.Name}");
            await StepOnceAsync(step, c);
            await c.Cluster.HealAsync(c.Cancellation);
        }
    }

    private static async Task StepOnceAsync(Func<ScenarioContext, Task> step, ScenarioContext c)
    {
        var once = new ScenarioContext
        {
            Cluster = c.Cluster,
            Random = c.Random,
            Log = c.Log,
            Duration = TimeSpan.FromMilliseconds(1),
            Watcher = c.Watcher,
            Cancellation = c.Cancellation,
        };
        await step(once);
        foreach (var m in c.Cluster.Current.Where(m => !m.IsRunning))
        {
            c.Cluster.Restart(m);
        }
    }
}
