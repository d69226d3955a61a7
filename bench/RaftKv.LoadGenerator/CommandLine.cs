using System.Globalization;

namespace RaftKv.LoadGenerator;

/// <summary>Options of the default mode: start raftkv and etcd clusters and compare them on the standard workloads.</summary>
internal sealed record CompareOptions
{
    /// <summary>Fewer requests, one round, no etcdctl check perf: a smoke run of the whole pipeline (about a minute).</summary>
    public bool Quick { get; init; }

    /// <summary>Each round runs every workload against both systems (the order alternates); the table shows every round.</summary>
    public int Rounds { get; init; } = 2;

    /// <summary>Only workloads whose name matches this glob (* and ?); null runs all.</summary>
    public string? Filter { get; init; }

    public bool CheckPerf { get; init; } = true;

    /// <summary>Results file; null writes bench/results/loadgen.md in the repository.</summary>
    public string? Output { get; init; }

    public string EtcdPath { get; init; } = "/usr/bin/etcd";

    public string EtcdctlPath { get; init; } = "/usr/bin/etcdctl";

    /// <summary>bin/raftkv in the repository unless given.</summary>
    public string? RaftkvPath { get; init; }
}

internal sealed class UsageException(string message) : Exception(message);

/// <summary>Parses the command line: a workload subcommand against running endpoints, or (no subcommand) the comparison.</summary>
internal static class CommandLine
{
    public const string Usage = """
        Usage:
          RaftKv.LoadGenerator [compare] [--quick] [--rounds N] [--filter GLOB] [--no-check-perf] [--output FILE]
                               [--etcd PATH] [--etcdctl PATH] [--raftkv PATH]
              Start a 3-member raftkv cluster and a 3-member etcd cluster on loopback, run the standard workloads
              against both (alternating), and write bench/results/loadgen.md. This is what 'make bench' runs.
              --quick (or BenchmarkDotNet's --job short|dry) runs fewer requests, one round, no check perf.
          RaftKv.LoadGenerator put|range|txn-put|watch --endpoints HOST:PORT[,HOST:PORT...] [options]
              --clients N (1)  --conns N (1)  --total N (10000)  --key-size N (8)  --val-size N (256)
              --key-space N (1)  --target all|leader (all)  --max-seconds S (60)
              range:   --consistency l|s (l)
              txn-put: --txn-ops N (1)
              watch:   --watchers N (1)  --watch-streams N (1)   (--total puts, each delivered to every watcher)
        """;

    public static object Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var kind = args.Count > 0 ? args[0] switch
        {
            "put" => WorkloadKind.Put,
            "range" => WorkloadKind.Range,
            "txn-put" => WorkloadKind.TxnPut,
            "watch" => WorkloadKind.Watch,
            _ => (WorkloadKind?)null,
        } : null;
        var rest = args.Count > 0 && (kind is not null || args[0] == "compare") ? args.Skip(1).ToList() : [.. args];
        return kind is { } k ? ParseWorkload(k, rest) : ParseCompare(rest);
    }

    private static CompareOptions ParseCompare(List<string> args)
    {
        var options = new CompareOptions();
        var roundsGiven = false;
        for (var i = 0; i < args.Count; i++)
        {
            var (name, inline) = Split(args[i]);
            switch (name)
            {
                case "--quick":
                    options = options with { Quick = true };
                    break;
                case "--job":
                    // BenchmarkDotNet's quick jobs, so one BENCH_ARGS makes every benchmark of 'make bench' quick.
                    var job = Value(args, ref i, name, inline);
                    options = options with { Quick = options.Quick || job is "short" or "dry" or "Short" or "Dry" };
                    break;
                case "--rounds":
                    options = options with { Rounds = Positive(Value(args, ref i, name, inline), name) };
                    roundsGiven = true;
                    break;
                case "--filter":
                    var filter = Value(args, ref i, name, inline);
                    options = options with { Filter = filter == "*" ? null : filter };
                    break;
                case "--no-check-perf":
                    options = options with { CheckPerf = false };
                    break;
                case "--output":
                    options = options with { Output = Value(args, ref i, name, inline) };
                    break;
                case "--etcd":
                    options = options with { EtcdPath = Value(args, ref i, name, inline) };
                    break;
                case "--etcdctl":
                    options = options with { EtcdctlPath = Value(args, ref i, name, inline) };
                    break;
                case "--raftkv":
                    options = options with { RaftkvPath = Value(args, ref i, name, inline) };
                    break;
                default:
                    throw new UsageException($"unknown option '{args[i]}' for the comparison run; see the usage below");
            }
        }

        if (options.Quick)
        {
            options = options with { CheckPerf = false, Rounds = roundsGiven ? options.Rounds : 1 };
        }

        return options;
    }

    private static WorkloadSpec ParseWorkload(WorkloadKind kind, List<string> args)
    {
        var spec = new WorkloadSpec(kind);
        for (var i = 0; i < args.Count; i++)
        {
            var (name, inline) = Split(args[i]);
            spec = name switch
            {
                "--endpoints" => spec with { Endpoints = [.. Value(args, ref i, name, inline).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] },
                "--clients" => spec with { Clients = Positive(Value(args, ref i, name, inline), name) },
                "--conns" => spec with { Conns = Positive(Value(args, ref i, name, inline), name) },
                "--total" => spec with { Total = Positive(Value(args, ref i, name, inline), name) },
                "--key-size" => spec with { KeySize = Positive(Value(args, ref i, name, inline), name) },
                "--val-size" => spec with { ValSize = NonNegative(Value(args, ref i, name, inline), name) },
                "--key-space" or "--key-space-size" => spec with { KeySpace = Positive(Value(args, ref i, name, inline), name) },
                "--max-seconds" => spec with { MaxDuration = TimeSpan.FromSeconds(Positive(Value(args, ref i, name, inline), name)) },
                "--target" => spec with
                {
                    Target = Value(args, ref i, name, inline) switch
                    {
                        "all" => Target.All,
                        "leader" => Target.Leader,
                        var v => throw new UsageException($"--target must be 'all' or 'leader', not '{v}'"),
                    },
                },
                "--consistency" when kind == WorkloadKind.Range => spec with
                {
                    Linearizable = Value(args, ref i, name, inline) switch
                    {
                        "l" => true,
                        "s" => false,
                        var v => throw new UsageException($"--consistency must be 'l' (linearizable) or 's' (serializable), not '{v}'"),
                    },
                },
                "--txn-ops" when kind == WorkloadKind.TxnPut => spec with { TxnOps = Positive(Value(args, ref i, name, inline), name) },
                "--watchers" when kind == WorkloadKind.Watch => spec with { Watchers = Positive(Value(args, ref i, name, inline), name) },
                "--watch-streams" when kind == WorkloadKind.Watch => spec with { WatchStreams = Positive(Value(args, ref i, name, inline), name) },
                _ => throw new UsageException($"unknown option '{args[i]}' for '{Verb(kind)}'; see the usage below"),
            };
        }

        return Validate(spec);
    }

    /// <summary>Checks the combinations a run cannot satisfy, with what to change.</summary>
    public static WorkloadSpec Validate(WorkloadSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Endpoints.Count == 0)
        {
            throw new UsageException($"'{Verb(spec.Kind)}' needs --endpoints HOST:PORT[,HOST:PORT...] (the members' client URLs)");
        }

        var digits = (spec.KeySpace - 1).ToString(CultureInfo.InvariantCulture).Length;
        if (spec.KeySize < digits)
        {
            throw new UsageException($"--key-size {spec.KeySize} is too short for --key-space {spec.KeySpace} (keys are {digits}-digit decimal numbers); raise --key-size to {digits} or lower --key-space");
        }

        if (spec.Kind == WorkloadKind.TxnPut && spec.TxnOps > spec.KeySpace)
        {
            throw new UsageException($"--txn-ops {spec.TxnOps} needs at least as many keys (a txn may not put one key twice); raise --key-space to {spec.TxnOps}");
        }

        if (spec.Kind == WorkloadKind.Watch && spec.WatchStreams > spec.Watchers)
        {
            throw new UsageException($"--watch-streams {spec.WatchStreams} is more than --watchers {spec.Watchers}; every stream carries at least one watcher");
        }

        return spec;
    }

    /// <summary>A glob with * and ? against a workload name, case-insensitive.</summary>
    public static bool Matches(string? glob, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (glob is null)
        {
            return true;
        }

        var pattern = "^" + System.Text.RegularExpressions.Regex.Escape(glob).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(name, pattern, System.Text.RegularExpressions.RegexOptions.IgnoreCase);
    }

    private static string Verb(WorkloadKind kind) => kind == WorkloadKind.TxnPut ? "txn-put" : kind.ToString().ToLowerInvariant();

    private static (string Name, string? Inline) Split(string arg)
    {
        var eq = arg.IndexOf('=', StringComparison.Ordinal);
        return arg.StartsWith("--", StringComparison.Ordinal) && eq > 0 ? (arg[..eq], arg[(eq + 1)..]) : (arg, null);
    }

    private static string Value(List<string> args, ref int i, string name, string? inline)
    {
        if (inline is not null)
        {
            return inline;
        }

        if (i + 1 >= args.Count)
        {
            throw new UsageException($"{name} needs a value");
        }

        return args[++i];
    }

    private static int Positive(string text, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new UsageException($"{name} must be a whole number above 0, not '{text}'");

    private static int NonNegative(string text, string name) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new UsageException($"{name} must be a whole number (0 or more), not '{text}'");
}
