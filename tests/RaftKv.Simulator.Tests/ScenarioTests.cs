using RaftKv.Linearizability;

namespace RaftKv.Simulator.Tests;

public sealed class ScenarioTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public void Without_faults_every_operation_completes_and_one_leader_serves_the_run(int nodes)
    {
        var result = Simulation.Run(new SimulationOptions { Seed = 7, Nodes = nodes, Faults = false });

        Assert.True(result.Passed, Runs.Report(result));
        var stats = result.Stats;
        Assert.True(stats.ClientOperations > 1000, stats.ToString());
        Assert.True(stats.TimedOut == 0, stats.ToString());
        Assert.True(stats.LeaderChanges == 1, stats.ToString());
        Assert.True(stats.MessagesDropped == 0 && stats.Crashes == 0 && stats.Partitions == 0, stats.ToString());
    }

    [Fact]
    public void Faulty_runs_exercise_crashes_partitions_membership_transfers_and_snapshots()
    {
        var totals = new SimulationStats();
        for (var seed = 1; seed <= 12; seed++)
        {
            var stats = Simulation.Run(new SimulationOptions { Seed = seed, Nodes = 5 }).Stats;
            totals.Crashes += stats.Crashes;
            totals.Partitions += stats.Partitions;
            totals.MembershipChanges += stats.MembershipChanges;
            totals.Transfers += stats.Transfers;
            totals.SnapshotsSent += stats.SnapshotsSent;
            totals.TimedOut += stats.TimedOut;
            totals.MessagesDropped += stats.MessagesDropped;
        }

        Assert.True(
            totals.Crashes > 0 && totals.Partitions > 0 && totals.MembershipChanges > 0 && totals.Transfers > 0
                && totals.SnapshotsSent > 0 && totals.TimedOut > 0 && totals.MessagesDropped > 0,
            $"some fault never happened in 12 seeds: {totals}");
    }

    [Fact]
    public void Key_value_commands_survive_encoding_and_duplicates_apply_once()
    {
        var machine = new KvStateMachine();
        var put = new KvCommand(1, new KvPut("k", "v1"));
        var cas = new KvCommand(2, new KvCompareAndSet("k", "v1", null));

        Assert.Equal(put, KvCommand.Decode(put.Encode()));
        Assert.Equal(cas, KvCommand.Decode(cas.Encode()));
        Assert.Equal(new KvPutResult(), machine.Apply(put));
        Assert.Equal(new KvCompareAndSetResult(true), machine.Apply(cas));
        Assert.Equal(new KvPutResult(), machine.Apply(put)); // duplicate of request 1: no effect
        Assert.Null(machine.Get("k").Value);

        var copy = KvStateMachine.Deserialize(machine.Serialize());
        Assert.Equal(machine.Serialize(), copy.Serialize());
        Assert.Equal(new KvCompareAndSetResult(true), copy.Apply(cas)); // the answer is remembered across snapshots
    }
}
