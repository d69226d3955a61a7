namespace RaftKv.Simulator.Tests;

/// <summary>
/// The CI batch: a hundred seeds per cluster size, every check on. A failure prints the seed, the broken
/// invariant, the last events and the command that replays it with a full trace. (Split in three classes so
/// xunit runs them in parallel.)
/// </summary>
internal static class SeedBatch
{
    public const int SeedsPerSize = 100;

    public static void AllPass(int nodes)
    {
        var failures = new List<string>();
        for (var seed = 1; seed <= SeedsPerSize; seed++)
        {
            var result = Simulation.Run(new SimulationOptions { Seed = seed, Nodes = nodes });
            if (!result.Passed)
            {
                failures.Add(Runs.Report(result));
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {SeedsPerSize} seeds failed:\n{string.Join("\n", failures)}");
    }
}

public sealed class OneNodeSeedBatchTests
{
    [Fact]
    public void A_hundred_seeds_of_a_one_node_cluster_keep_every_invariant() => SeedBatch.AllPass(1);
}

public sealed class ThreeNodeSeedBatchTests
{
    [Fact]
    public void A_hundred_seeds_of_a_three_node_cluster_keep_every_invariant() => SeedBatch.AllPass(3);
}

public sealed class FiveNodeSeedBatchTests
{
    [Fact]
    public void A_hundred_seeds_of_a_five_node_cluster_keep_every_invariant() => SeedBatch.AllPass(5);
}
