namespace RaftKv.Simulator.Tests;

/// <summary>
/// Behaviour of the core the simulator found and works around, pinned so a change is noticed. When one of these
/// stops reproducing, the core was fixed: switch the workaround off (make the option the default) and delete the test.
/// </summary>
public sealed class KnownCoreHazardTests
{
    [Fact]
    public void Removing_the_leader_of_a_two_voter_configuration_can_leave_the_survivor_without_quorum_forever()
    {
        // Seed 43, one founding node grown to voters {1,2}; with --shrink-two-voters the simulator removes n1 while it
        // leads. n1 commits RemoveNode n1 at index 143 on n2's acknowledgement, applies it and steps down at once; the
        // only messages n2 ever got carried commit 141, so n2 never applies its new configuration {2} and keeps
        // asking n1 (shut down) for votes. Replay: dotnet run --project tests/RaftKv.Simulator -c Release --
        // --seed 43 --nodes 1 --shrink-two-voters --trace
        var result = Simulation.Run(new SimulationOptions { Seed = 43, Nodes = 1, ShrinkTwoVoters = true });

        Assert.False(result.Passed, "the hazard no longer reproduces: make ShrinkTwoVoters the default and delete this test");
        Assert.StartsWith("no progress", result.Violation, StringComparison.Ordinal);
        Assert.Contains("n1 removed; n2 PreCandidate", result.Violation, StringComparison.Ordinal);
        Assert.Contains("conf voters=[1,2]", result.Violation, StringComparison.Ordinal);
    }
}
