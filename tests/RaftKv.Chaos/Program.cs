using System.Globalization;
using RaftKv.Chaos;

AppDomain.CurrentDomain.ProcessExit += (_, _) => ChaosCluster.KillAllStarted();
AppDomain.CurrentDomain.UnhandledException += (_, _) => ChaosCluster.KillAllStarted();
return await ChaosCli.RunAsync(args, Console.Out, CancellationToken.None);

namespace RaftKv.Chaos
{
    /// <summary>The command line of the fault suite (make chaos).</summary>
    internal static class ChaosCli
    {
        private const string Usage = """
            usage: RaftKv.Chaos [--full] [--seed N] [--scenario NAME[,NAME...]] [--duration SECONDS] [--raftkv PATH] [--results DIR] [--list]
              --full        every scenario, 25 s of faults each (default: the bounded CI set, 4 s each)
              --seed N      seed of every scenario's schedule and clients (default: from the clock; printed on each line)
              --scenario    run only these scenarios (replay a failure: --scenario NAME --seed N)
              --raftkv      the program to start (default: bin/raftkv of the repository, built by make build)
              --results     where failures keep their schedule, history and member logs (default: chaos-results)
            """;

        public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
        {
            var full = false;
            int? seed = null;
            double? duration = null;
            string? binary = null;
            var results = "chaos-results";
            var only = new List<string>();
            try
            {
                for (var i = 0; i < args.Length; i++)
                {
                    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                    switch (args[i])
                    {
                        case "--full":
                            full = true;
                            break;
                        case "--seed":
                            seed = int.Parse(Next(), CultureInfo.InvariantCulture);
                            break;
                        case "--duration":
                            duration = double.Parse(Next(), CultureInfo.InvariantCulture);
                            break;
                        case "--scenario":
                            only.AddRange(Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
                            break;
                        case "--raftkv":
                            binary = Next();
                            break;
                        case "--results":
                            results = Next();
                            break;
                        case "--list":
                            foreach (var s in Scenarios.All)
                            {
                                output.WriteLine($"{s.Name}{(s.Bounded ? "" : " (full set only)")}");
                            }

                            return 0;
                        case "-h" or "--help":
                            output.WriteLine(Usage);
                            return 0;
                        default:
                            throw new ArgumentException($"unknown argument '{args[i]}'");
                    }
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                output.WriteLine($"chaos: {e.Message}\n{Usage}");
                return 2;
            }

            binary ??= FindBinary();
            if (binary is null || !File.Exists(binary))
            {
                output.WriteLine($"chaos: raftkv program not found{(binary is null ? " (no bin/raftkv above the current directory)" : $" at {binary}")}; run make build first or pass --raftkv PATH");
                return 2;
            }

            var unknown = only.Where(n => Scenarios.All.All(s => s.Name != n)).ToList();
            if (unknown.Count > 0)
            {
                output.WriteLine($"chaos: unknown scenario {string.Join(", ", unknown)}; --list shows them");
                return 2;
            }

            var chosen = only.Count > 0 ? Scenarios.All.Where(s => only.Contains(s.Name)).ToList() : Scenarios.All.Where(s => full || s.Bounded).ToList();
            var options = new ChaosOptions
            {
                Binary = Path.GetFullPath(binary),
                ResultsDir = Path.GetFullPath(results),
                Duration = TimeSpan.FromSeconds(duration ?? (full ? 25 : 4)),
            };
            var runSeed = seed ?? (Environment.TickCount & 0x7FFFFFFF);
            output.WriteLine($"chaos: {chosen.Count} scenarios, seed {runSeed}, {options.Duration.TotalSeconds:0} s of faults each, raftkv {options.Binary}");

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            var passed = 0;
            var failed = 0;
            foreach (var scenario in chosen)
            {
                if (stop.IsCancellationRequested)
                {
                    break;
                }

                var result = await Runner.RunAsync(scenario, runSeed, options, stop.Token);
                output.WriteLine(result.ToString());
                output.Flush();
                if (result.Passed)
                {
                    passed++;
                }
                else
                {
                    failed++;
                }
            }

            output.WriteLine($"chaos: {passed} passed, {failed} failed");
            return failed == 0 && passed == chosen.Count ? 0 : 1;
        }

        /// <summary>bin/raftkv in the current directory or the nearest parent that has one.</summary>
        private static string? FindBinary()
        {
            for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "bin", "raftkv");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            return null;
        }
    }
}
