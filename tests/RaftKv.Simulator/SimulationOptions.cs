namespace RaftKv.Simulator;

/// <summary>What to run: the seed decides everything else (fault mix, timings, client operations).</summary>
internal sealed record SimulationOptions
{
    public required int Seed { get; init; }

    /// <summary>Founding voters: 1, 3 or 5.</summary>
    public required int Nodes { get; init; }

    /// <summary>Virtual time during which clients run and faults are injected (µs).</summary>
    public long LoadDuration { get; init; } = DefaultLoadDuration;

    public const long DefaultLoadDuration = 12_000_000;

    /// <summary>After faults heal, the cluster must commit a new write within this much virtual time (µs).</summary>
    public long ProgressBound { get; init; } = 3_000_000;

    /// <summary>Virtual length of one Raft tick (µs).</summary>
    public long TickInterval { get; init; } = 10_000;

    public int ElectionTicks { get; init; } = 10;

    public int Clients { get; init; } = 5;

    public int Keys { get; init; } = 5;

    /// <summary>
    /// Mean virtual time between injected faults (µs); each gap is uniform in [0.4, 1.6] times it. Null lets the
    /// seed choose (50 ms to 600 ms).
    /// </summary>
    public long? FaultInterval { get; init; }

    /// <summary>
    /// Probability that a new leader is cut off right after taking office; null lets the seed choose (0 to 70 %).
    /// High values make commit-rule mistakes (Raft paper figure 8) likely.
    /// </summary>
    public double? IsolateNewLeaders { get; init; }

    /// <summary>Probability that a leader is cut off the moment its commit index advances; null lets the seed choose (0 to 5 %).</summary>
    public double? IsolateOnCommit { get; init; }

    /// <summary>Byte limit of one MsgApp (0: one entry per message); null lets the seed choose (0, 256 or 4096).</summary>
    public ulong? MaxSizePerMessage { get; init; }

    /// <summary>A deliberate mistake in the simulated host (not the core), to show the checks catch it.</summary>
    public HostBug HostBug { get; init; }

    /// <summary>Also remove a voter from two-voter configurations (open liveness hazard, off by default).</summary>
    public bool ShrinkTwoVoters { get; init; }

    /// <summary>Inject faults (network, crashes, disks, membership, transfers). Off gives a fault-free run.</summary>
    public bool Faults { get; init; } = true;

    /// <summary>Known-unsafe core variants, for showing that the simulator catches them (<see cref="RaftKv.Raft.RaftConfig"/>).</summary>
    public bool UnsafeCommitPreviousTermByCounting { get; init; }

    /// <summary>Known-unsafe core variant: grant votes without the log up-to-date check.</summary>
    public bool UnsafeGrantVoteWithoutLogCheck { get; init; }

    /// <summary>The founding cluster size the CLI uses for a seed when --nodes is not given.</summary>
    public static int NodesForSeed(int seed) => (seed % 3) switch
    {
        0 => 1,
        1 => 3,
        _ => 5,
    };

    /// <summary>The one command that replays this run with a full trace.</summary>
    public string ReplayCommand()
    {
        var command = $"dotnet run --project tests/RaftKv.Simulator -c Release -- --seed {Seed} --nodes {Nodes}";
        if (UnsafeCommitPreviousTermByCounting)
        {
            command += " --unsafe commit-previous-term";
        }

        if (UnsafeGrantVoteWithoutLogCheck)
        {
            command += " --unsafe vote-without-log-check";
        }

        if (!Faults)
        {
            command += " --no-faults";
        }

        if (IsolateNewLeaders is { } p)
        {
            command += string.Create(System.Globalization.CultureInfo.InvariantCulture, $" --isolate-new-leaders {p}");
        }

        if (HostBug != HostBug.None)
        {
            command += $" --host-bug {HostBugNames.Name(HostBug)}";
        }

        if (ShrinkTwoVoters)
        {
            command += " --shrink-two-voters";
        }

        if (IsolateOnCommit is { } c)
        {
            command += string.Create(System.Globalization.CultureInfo.InvariantCulture, $" --isolate-on-commit {c}");
        }

        if (MaxSizePerMessage is { } max)
        {
            command += $" --max-message-bytes {max}";
        }

        if (LoadDuration != DefaultLoadDuration)
        {
            command += $" --duration-ms {LoadDuration / 1000}";
        }

        if (FaultInterval is { } interval)
        {
            command += $" --fault-interval-ms {interval / 1000}";
        }

        return command + " --trace";
    }
}

/// <summary>Known-wrong host behaviours the simulator can switch on to prove its checks have teeth.</summary>
internal enum HostBug
{
    None,

    /// <summary>Serve reads from the local state machine without ReadIndex (stale reads on followers and deposed leaders).</summary>
    LocalReads,

    /// <summary>Acknowledge a put as soon as it is proposed, before it commits (writes can be lost).</summary>
    AckOnPropose,

    /// <summary>Send votes and acknowledgements before the write they promise is synced (a crash forgets them).</summary>
    AckBeforeSync,
}

internal static class HostBugNames
{
    public static string Name(HostBug bug) => bug switch
    {
        HostBug.LocalReads => "local-reads",
        HostBug.AckOnPropose => "ack-on-propose",
        HostBug.AckBeforeSync => "ack-before-sync",
        _ => "none",
    };

    public static HostBug Parse(string name) => name switch
    {
        "local-reads" => HostBug.LocalReads,
        "ack-on-propose" => HostBug.AckOnPropose,
        "ack-before-sync" => HostBug.AckBeforeSync,
        _ => throw new ArgumentException($"--host-bug takes local-reads, ack-on-propose or ack-before-sync, not '{name}'"),
    };
}

/// <summary>Outcome of one run.</summary>
/// <param name="Options">What ran.</param>
/// <param name="Violation">The first invariant broken, or null when the run passed.</param>
/// <param name="TraceTail">The last trace lines before the end (or the violation).</param>
/// <param name="Stats">Counts worth printing (operations, elections, faults).</param>
internal sealed record SimulationResult(SimulationOptions Options, string? Violation, IReadOnlyList<string> TraceTail, SimulationStats Stats)
{
    public bool Passed => Violation is null;
}

/// <summary>Counts gathered during a run.</summary>
internal sealed class SimulationStats
{
    public int ClientOperations { get; set; }
    public int Acknowledged { get; set; }
    public int TimedOut { get; set; }
    public int Refused { get; set; }
    public int MessagesSent { get; set; }
    public int MessagesDropped { get; set; }
    public int Crashes { get; set; }
    public int Partitions { get; set; }
    public int LeaderChanges { get; set; }
    public int MembershipChanges { get; set; }
    public int Transfers { get; set; }
    public int SnapshotsSent { get; set; }
    public long CheckerSteps { get; set; }
    public int PreviousTermCommits { get; set; }
    public ulong FinalCommit { get; set; }
    public long EndTime { get; set; }

    public override string ToString() =>
        $"ops={ClientOperations} acked={Acknowledged} timedout={TimedOut} refused={Refused} msgs={MessagesSent} dropped={MessagesDropped} " +
        $"crashes={Crashes} partitions={Partitions} leaderChanges={LeaderChanges} confChanges={MembershipChanges} transfers={Transfers} " +
        $"snapshots={SnapshotsSent} commit={FinalCommit} checkerSteps={CheckerSteps} prevTermCommits={PreviousTermCommits}";
}

/// <summary>Thrown inside a run when an invariant breaks; ends the run.</summary>
internal sealed class InvariantViolationException(string message) : Exception(message);
