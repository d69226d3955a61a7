namespace RaftKv.Simulator.Tests;

/// <summary>
/// Core bugs the simulator found and that are not fixed yet, each pinned to its replay so a fix is noticed. The seeds
/// are excluded from the CI batch (<see cref="SeedBatch.KnownCoreBugSeeds"/>). When a test here fails, the bug is
/// fixed: delete the test and the exclusion.
/// </summary>
public sealed class KnownCoreBugTests
{
    [Fact]
    public void Seed_61_a_leader_that_applies_its_own_removal_throws_in_OnPersisted()
    {
        // 3 founders + n4 (added as learner, promoted, then leader after a transfer). n4 proposes RemoveNode n4 in a
        // four-voter configuration; when it applies the removal (index 142) with entry 143 still being persisted, the
        // following Advance calls RaftCore.OnPersisted, which looks up the leader's own progress (_progress[Id]) -
        // gone since the removal - and throws. Since commit 095a397 a removed leader keeps leading until the remaining
        // voters know the commit, so it is still Leader there. Replay:
        //   dotnet run --project tests/RaftKv.Simulator -c Release -- --seed 61 --nodes 3 --trace
        var result = Simulation.Run(new SimulationOptions { Seed = 61, Nodes = 3 });

        Assert.False(result.Passed, "seed 61 passes now: the bug is fixed; delete this test and the exclusion in SeedBatch.KnownCoreBugSeeds");
        Assert.Contains("KeyNotFoundException: The given key '4' was not present in the dictionary.", result.Violation, StringComparison.Ordinal);
        Assert.Contains("RaftCore.OnPersisted", result.Violation, StringComparison.Ordinal);
        Assert.Contains("RaftNode.Advance", result.Violation, StringComparison.Ordinal);
    }
}
