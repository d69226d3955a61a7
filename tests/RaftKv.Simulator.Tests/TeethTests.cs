namespace RaftKv.Simulator.Tests;

/// <summary>
/// The simulator has teeth: with a known-unsafe variant of the core or of the host switched on, some seed breaks
/// an invariant; the same seed passes with the variant off (so the finding is the variant's doing).
/// </summary>
public sealed class TeethTests
{
    private static SimulationResult FindViolation(int maxSeeds, Func<int, SimulationOptions> options)
    {
        var failure = Runs.FirstFailure(Enumerable.Range(1, maxSeeds), options);
        Assert.True(failure is not null, $"no violation found in {maxSeeds} seeds");
        return failure;
    }

    private static void AssertSafeVariantPasses(SimulationResult unsafeResult, SimulationOptions safe)
    {
        var control = Simulation.Run(safe);
        Assert.True(control.Passed, "the safe variant failed the same seed too:\n" + Runs.Report(control));
        Assert.False(unsafeResult.Passed);
    }

    [Fact]
    public void Granting_votes_without_the_log_up_to_date_check_is_caught()
    {
        static SimulationOptions Options(int seed, bool unsafeVote) => new()
        {
            Seed = seed,
            Nodes = SimulationOptions.NodesForSeed(seed),
            UnsafeGrantVoteWithoutLogCheck = unsafeVote,
        };

        var failure = FindViolation(50, seed => Options(seed, unsafeVote: true));

        Assert.Matches("^(leader completeness|state machine safety|log matching|linearizability|acknowledged write)", failure.Violation);
        Assert.Contains("--unsafe vote-without-log-check", failure.Options.ReplayCommand(), StringComparison.Ordinal);
        AssertSafeVariantPasses(failure, Options(failure.Options.Seed, unsafeVote: false));
    }

    [Fact]
    public void Committing_a_previous_term_entry_by_counting_replicas_is_caught()
    {
        // Figure 8 of the Raft paper needs a leader that commits an old entry by counting and is cut off before an
        // entry of its own term spreads, then a rival with a conflicting entry from a later term. So: one entry
        // per message, and leaders isolated right after taking office and right after their commit index moves.
        static SimulationOptions Options(int seed, bool unsafeCommit) => new()
        {
            Seed = seed,
            Nodes = 3,
            LoadDuration = 10_000_000,
            MaxSizePerMessage = 0,
            IsolateNewLeaders = 1,
            IsolateOnCommit = 1,
            UnsafeCommitPreviousTermByCounting = unsafeCommit,
        };

        var failure = FindViolation(800, seed => Options(seed, unsafeCommit: true));

        Assert.Matches("^(leader completeness|state machine safety|log matching|linearizability|acknowledged write)", failure.Violation);
        AssertSafeVariantPasses(failure, Options(failure.Options.Seed, unsafeCommit: false));
    }

    [Fact]
    public void Serving_reads_from_local_state_without_read_index_is_caught_as_stale_reads()
    {
        var failure = FindViolation(20, seed => new SimulationOptions { Seed = seed, Nodes = 3, HostBug = HostBug.LocalReads });

        Assert.StartsWith("linearizability (times in µs of virtual time): Illegal", failure.Violation, StringComparison.Ordinal);
        Assert.Contains("cannot place next:", failure.Violation, StringComparison.Ordinal);
        AssertSafeVariantPasses(failure, failure.Options with { HostBug = HostBug.None });
    }

    [Fact]
    public void Acknowledging_writes_before_they_commit_is_caught()
    {
        var failure = FindViolation(20, seed => new SimulationOptions { Seed = seed, Nodes = 3, HostBug = HostBug.AckOnPropose });

        Assert.StartsWith("linearizability (times in µs of virtual time): Illegal", failure.Violation, StringComparison.Ordinal);
        AssertSafeVariantPasses(failure, failure.Options with { HostBug = HostBug.None });
    }

    [Fact]
    public void Sending_votes_and_acks_before_the_disk_write_is_synced_is_caught()
    {
        var failure = FindViolation(200, seed => new SimulationOptions
        {
            Seed = seed,
            Nodes = 3,
            FaultInterval = 50_000,
            IsolateNewLeaders = 1,
            HostBug = HostBug.AckBeforeSync,
        });

        Assert.Matches("^(election safety|leader completeness|state machine safety|log matching|linearizability|acknowledged write)", failure.Violation);
        AssertSafeVariantPasses(failure, failure.Options with { HostBug = HostBug.None });
    }
}
