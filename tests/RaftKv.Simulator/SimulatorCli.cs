using System.Globalization;

namespace RaftKv.Simulator;

/// <summary>
/// Command line: <c>--seeds N</c> runs seeds 1..N (1, 3 and 5 nodes in turn) and ends with
/// <c>sim: P passed, F failed</c>; <c>--seed S</c> runs one seed; <c>--trace</c> prints every event of a single
/// seed; <c>--nodes K</c> overrides the cluster size; <c>--unsafe NAME</c> turns on a known-unsafe core variant;
/// <c>--no-faults</c> runs without fault injection; <c>--verbose</c> also prints a line per passing seed.
/// </summary>
internal static class SimulatorCli
{
    private const string Usage =
        "usage: RaftKv.Simulator [--seeds N [--first-seed S]] [--seed S] [--nodes 1|3|5] [--trace] [--no-faults] [--fault-interval-ms M] [--isolate-new-leaders P] [--isolate-on-commit P] [--duration-ms D] [--max-message-bytes B] [--host-bug local-reads|ack-on-propose|ack-before-sync] [--shrink-two-voters] [--verbose] [--unsafe commit-previous-term|vote-without-log-check]";

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        int? seeds = null, seed = null, nodes = null;
        long? faultInterval = null;
        double? isolate = null, isolateOnCommit = null;
        long? duration = null;
        int? maxMessage = null;
        var hostBug = HostBug.None;
        var shrinkTwo = false;
        var verbose = false;
        var firstSeed = 1;
        bool trace = false, faults = true, unsafeCommit = false, unsafeVote = false;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--seeds":
                        seeds = ParseInt(args, ref i, 1);
                        break;
                    case "--first-seed":
                        firstSeed = ParseInt(args, ref i, 0);
                        break;
                    case "--seed":
                        seed = ParseInt(args, ref i, 0);
                        break;
                    case "--nodes":
                        nodes = ParseInt(args, ref i, 1);
                        if (nodes is not (1 or 3 or 5))
                        {
                            throw new ArgumentException("--nodes must be 1, 3 or 5");
                        }

                        break;
                    case "--trace":
                        trace = true;
                        break;
                    case "--fault-interval-ms":
                        faultInterval = ParseInt(args, ref i, 1) * 1000L;
                        break;
                    case "--isolate-new-leaders":
                        isolate = ParseProbability(args, ref i);
                        break;
                    case "--duration-ms":
                        duration = ParseInt(args, ref i, 100) * 1000L;
                        break;
                    case "--max-message-bytes":
                        maxMessage = ParseInt(args, ref i, 0);
                        break;
                    case "--isolate-on-commit":
                        isolateOnCommit = ParseProbability(args, ref i);
                        break;
                    case "--host-bug":
                        hostBug = HostBugNames.Parse(i + 1 < args.Length ? args[++i] : "");
                        break;
                    case "--verbose":
                        verbose = true;
                        break;
                    case "--shrink-two-voters":
                        shrinkTwo = true;
                        break;
                    case "--no-faults":
                        faults = false;
                        break;
                    case "--unsafe":
                        var name = i + 1 < args.Length ? args[++i] : "";
                        switch (name)
                        {
                            case "commit-previous-term":
                                unsafeCommit = true;
                                break;
                            case "vote-without-log-check":
                                unsafeVote = true;
                                break;
                            default:
                                throw new ArgumentException($"--unsafe takes commit-previous-term or vote-without-log-check, not '{name}'");
                        }

                        break;
                    case "-h" or "--help":
                        stdout.WriteLine(Usage);
                        return 0;
                    default:
                        throw new ArgumentException($"unknown argument '{args[i]}'");
                }
            }

            if (seeds is not null && seed is not null)
            {
                throw new ArgumentException("give either --seeds N or --seed S, not both");
            }

            if (trace && seed is null)
            {
                throw new ArgumentException("--trace needs --seed S (one run)");
            }
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            stderr.WriteLine(Usage);
            return 2;
        }

        SimulationOptions Options(int s) => new()
        {
            Seed = s,
            Nodes = nodes ?? SimulationOptions.NodesForSeed(s),
            Faults = faults,
            FaultInterval = faultInterval,
            IsolateNewLeaders = isolate,
            IsolateOnCommit = isolateOnCommit,
            MaxSizePerMessage = (ulong?)maxMessage,
            HostBug = hostBug,
            ShrinkTwoVoters = shrinkTwo,
            LoadDuration = duration ?? SimulationOptions.DefaultLoadDuration,
            UnsafeCommitPreviousTermByCounting = unsafeCommit,
            UnsafeGrantVoteWithoutLogCheck = unsafeVote,
        };

        if (seed is { } single)
        {
            var result = Simulation.Run(Options(single), trace ? stdout : null);
            Report(result, stdout, printTail: !trace);
            stdout.WriteLine($"sim: {(result.Passed ? 1 : 0)} passed, {(result.Passed ? 0 : 1)} failed");
            return result.Passed ? 0 : 1;
        }

        var count = seeds ?? 100;
        int passed = 0, failed = 0;
        for (var s = firstSeed; s < firstSeed + count; s++)
        {
            var result = Simulation.Run(Options(s));
            if (result.Passed)
            {
                passed++;
                if (verbose)
                {
                    Report(result, stdout, printTail: false);
                }
            }
            else
            {
                failed++;
                Report(result, stdout, printTail: true);
            }
        }

        stdout.WriteLine($"sim: {passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>Prints a run's outcome; a failure gets its seed, the violation, the last events and the replay command.</summary>
    public static void Report(SimulationResult result, TextWriter output, bool printTail)
    {
        var o = result.Options;
        if (result.Passed)
        {
            output.WriteLine($"PASS seed {o.Seed} ({o.Nodes} nodes): {result.Stats}");
            return;
        }

        output.WriteLine($"FAIL seed {o.Seed} ({o.Nodes} nodes) at {Trace.Format(result.Stats.EndTime)}: {result.Violation}");
        if (printTail)
        {
            output.WriteLine("  last events:");
            foreach (var line in result.TraceTail)
            {
                output.WriteLine("    " + line);
            }
        }

        output.WriteLine($"  replay: {o.ReplayCommand()}");
    }

    private static double ParseProbability(string[] args, ref int i)
    {
        var flag = args[i];
        return i + 1 < args.Length && double.TryParse(args[++i], NumberStyles.Float, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 1
            ? p
            : throw new ArgumentException($"{flag} takes a probability between 0 and 1");
    }

    private static int ParseInt(string[] args, ref int i, int min)
    {
        var flag = args[i];
        if (i + 1 >= args.Length || !int.TryParse(args[++i], NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min)
        {
            throw new ArgumentException($"{flag} takes a whole number >= {min}");
        }

        return value;
    }
}
