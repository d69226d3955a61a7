using System.Globalization;
using System.Text;

namespace RaftKv.LoadGenerator;

/// <summary>Everything the results file shows.</summary>
internal sealed class ReportInput
{
    public DateTime Started { get; init; }

    public DateTime Finished { get; set; }

    public CompareOptions Options { get; init; } = new();

    public string Environment { get; init; } = "";

    public List<WorkloadResult> Results { get; } = [];

    public Dictionary<string, long> IdleRss { get; } = [];

    public Dictionary<string, string> CheckPerf { get; } = [];
}

/// <summary>One target of the issue, judged per round.</summary>
internal sealed record TargetCheck(string Target, string Workload, IReadOnlyList<(int Round, bool Met, string Detail)> Rounds);

/// <summary>Renders the comparison as markdown (pure: everything it shows comes from <see cref="ReportInput"/>).</summary>
internal static class Report
{
    public const string PutMany = "put, 1000 clients";
    public const string PutOne = "put, 1 client";
    public const string GetOne = "range linearizable, 1 client";

    public static string Render(ReportInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var md = new StringBuilder();
        md.AppendLine("# Load generator: raftkv against etcd 3.4, 3 members each on loopback");
        md.AppendLine();
        md.AppendLine(Inv($"Run: {input.Started:yyyy-MM-dd HH:mm} UTC to {input.Finished:HH:mm} UTC; {input.Environment}."));
        md.AppendLine(Inv($"Mode: {(input.Options.Quick ? "quick" : "full")}, {input.Options.Rounds} round{(input.Options.Rounds == 1 ? "" : "s")}{(input.Options.Filter is null ? "" : $", filter `{input.Options.Filter}`")}. Command: `make bench` (`dotnet run -c Release --project bench/RaftKv.LoadGenerator -- [--quick]`)."));
        md.AppendLine();
        md.AppendLine("Both clusters run at the same time on this shared 2-core machine (other engineers build here too), started by the same");
        md.AppendLine("etcd command lines (default heartbeat 100 ms / election 1000 ms, data in a temp dir). Each workload runs against one");
        md.AppendLine("system and then the other, the order alternating from workload to workload and round to round, so both meet the same");
        md.AppendLine("noise; compare rows of one round rather than absolute figures. Before round 1 both get an unmeasured warm-up of every");
        md.AppendLine("request kind (raftkv's JIT compiles its hot paths). The load generator (.NET, Grpc.Net.Client) shares the");
        md.AppendLine("same two cores. Latency is per request from the client (watch: from starting a put to a watcher receiving its event).");
        md.AppendLine("RSS is the peak of the three members' summed VmRSS during the workload; CPU is the members' user+system time per");
        md.AppendLine("request; fsyncs and commits are the leader's `etcd_disk_wal_fsync_duration_seconds` and");
        md.AppendLine("`etcd_disk_backend_commit_duration_seconds` counts (and mean durations) over the workload; entries per fsync is the");
        md.AppendLine("leader's committed-index advance (`etcd_server_proposals_committed_total`) over its WAL fsyncs.");
        md.AppendLine();
        md.AppendLine("Where raftkv's time goes and what misses the targets: [loadgen-findings.md](loadgen-findings.md).");
        md.AppendLine();

        var checks = Targets(input.Results);
        if (checks.Count > 0)
        {
            md.AppendLine("## Targets");
            md.AppendLine();
            md.AppendLine("| Target | Result per round |");
            md.AppendLine("|---|---|");
            foreach (var check in checks)
            {
                md.AppendLine(Inv($"| {check.Target} | {string.Join("; ", check.Rounds.Select(r => $"round {r.Round}: {(r.Met ? "**met**" : "**not met**")} ({r.Detail})"))} |"));
            }

            md.AppendLine();
        }

        md.AppendLine("## Results");
        md.AppendLine();
        md.AppendLine("| Workload | System | Round | Done | Errors | Throughput | p50 | p90 | p99 | max | RSS peak | CPU/req | Leader WAL fsyncs (mean) | Entries per fsync | Leader backend commits (mean) |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in input.Results.OrderBy(r => Order(input.Results, r.Spec.Name)).ThenBy(r => r.Round).ThenBy(r => r.System, StringComparer.Ordinal))
        {
            var h = r.Latency;
            var m = r.LeaderMetrics;
            var fsyncs = m.WalFsyncs > 0 ? Inv($"{m.WalFsyncs:F0} ({m.WalFsyncSeconds / m.WalFsyncs * 1000:F2} ms)") : "0";
            var perFsync = m.WalFsyncs > 0 && m.ProposalsCommitted > 0 ? Inv($"{m.ProposalsCommitted / m.WalFsyncs:F1}") : "-";
            var commits = m.BackendCommits > 0 ? Inv($"{m.BackendCommits:F0} ({m.BackendCommitSeconds / m.BackendCommits * 1000:F2} ms)") : "0";
            var cpu = r.Completed > 0 ? Inv($"{r.MemberCpuSeconds * 1e6 / r.Completed:F0} µs") : "-";
            md.AppendLine(Inv($"| {r.Spec.Name} | {r.System} | {r.Round} | {r.Completed} | {r.Errors} | {r.Throughput:N0}/s | {Ms(h.Percentile(50))} | {Ms(h.Percentile(90))} | {Ms(h.Percentile(99))} | {Ms(h.Max)} | {MiB(r.PeakRssBytes)} | {cpu} | {fsyncs} | {perFsync} | {commits} |"));
        }

        md.AppendLine();
        if (input.IdleRss.Count > 0)
        {
            md.AppendLine(Inv($"Idle RSS after start-up (three members summed): {string.Join(", ", input.IdleRss.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {MiB(kv.Value)}"))}."));
            md.AppendLine();
        }

        var errors = input.Results.Where(r => r.FirstError is not null).ToList();
        if (errors.Count > 0)
        {
            md.AppendLine("Errors (first of each run):");
            md.AppendLine();
            foreach (var r in errors)
            {
                md.AppendLine(Inv($"- {r.Spec.Name}, {r.System}, round {r.Round}: {r.FirstError}"));
            }

            md.AppendLine();
        }

        md.AppendLine("## Workloads");
        md.AppendLine();
        foreach (var spec in input.Results.Select(r => r.Spec).DistinctBy(s => s.Name))
        {
            md.AppendLine(Inv($"- **{spec.Name}**: {spec.Describe()}, at most {spec.MaxDuration.TotalSeconds:F0} s."));
        }

        md.AppendLine();
        if (input.CheckPerf.Count > 0)
        {
            md.AppendLine("## etcdctl check perf --load=l (ETCDCTL_API=3, etcdctl 3.4, all three endpoints)");
            md.AppendLine();
            foreach (var (system, output) in input.CheckPerf.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                md.AppendLine(Inv($"{system}:"));
                md.AppendLine();
                md.AppendLine("```");
                md.AppendLine(output.TrimEnd());
                md.AppendLine("```");
                md.AppendLine();
            }
        }

        return md.ToString();
    }

    /// <summary>The issue's three targets, judged in every round both systems completed the workload.</summary>
    public static IReadOnlyList<TargetCheck> Targets(IReadOnlyList<WorkloadResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var checks = new List<TargetCheck>();
        var rounds = results.Select(r => r.Round).Distinct().Order().ToList();

        var many = new List<(int, bool, string)>();
        foreach (var round in rounds)
        {
            var e = Find(results, PutMany, Driver.Etcd, round);
            var k = Find(results, PutMany, Driver.Raftkv, round);
            if (e is not null && k is not null && e.Completed > 0 && k.Completed > 0)
            {
                var ratio = k.Throughput / e.Throughput;
                var p99k = k.Latency.Percentile(99);
                var p99e = e.Latency.Percentile(99);
                many.Add((round, ratio >= 2 && p99k <= p99e && k.Errors == 0,
                    Inv($"raftkv {k.Throughput:N0}/s = {ratio:F2}× etcd's {e.Throughput:N0}/s; p99 {Ms(p99k)} vs {Ms(p99e)}{(k.Errors > 0 ? $"; {k.Errors} errors" : "")}")));
            }
        }

        if (many.Count > 0)
        {
            checks.Add(new TargetCheck("put, 1000 clients: raftkv throughput ≥ 2× etcd's, p99 no worse", PutMany, many));
        }

        AddLatency(checks, results, rounds, PutOne, 1000, "put, 1 client: raftkv p50 ≤ 1.0 ms");
        AddLatency(checks, results, rounds, GetOne, 500, "linearizable get, 1 client: raftkv p50 ≤ 0.5 ms");
        return checks;
    }

    /// <summary>One line per run for the console.</summary>
    public static string Line(WorkloadResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var h = r.Latency;
        return Inv($"{r.System}: {r.Completed} done, {r.Errors} errors in {r.Elapsed.TotalSeconds:F1} s = {r.Throughput:N0}/s; p50 {Ms(h.Percentile(50))} p90 {Ms(h.Percentile(90))} p99 {Ms(h.Percentile(99))} max {Ms(h.Max)}{(r.FirstError is null ? "" : $"; first error: {r.FirstError}")}");
    }

    /// <summary>Microseconds as milliseconds: three decimals below 10 ms, one above.</summary>
    public static string Ms(long micros) => micros < 10_000 ? Inv($"{micros / 1000.0:F3} ms") : Inv($"{micros / 1000.0:F1} ms");

    public static string MiB(long bytes) => bytes > 0 ? Inv($"{bytes / 1048576.0:F0} MiB") : "-";

    /// <summary>etcdctl's progress bar redraws one line with carriage returns; only its final state and the verdicts stay.</summary>
    public static string CleanCheckPerf(string output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var lines = output.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n')
            .Select(l => l.Split('\r').Last().TrimEnd())
            .Select(l => System.Text.RegularExpressions.Regex.Replace(l, "\u001b\\[[0-9;]*[A-Za-z]", ""))
            .Where(l => l.Length > 0);
        return string.Join('\n', lines);
    }

    private static void AddLatency(List<TargetCheck> checks, IReadOnlyList<WorkloadResult> results, List<int> rounds, string workload, long limitMicros, string target)
    {
        var perRound = new List<(int, bool, string)>();
        foreach (var round in rounds)
        {
            var k = Find(results, workload, Driver.Raftkv, round);
            var e = Find(results, workload, Driver.Etcd, round);
            if (k is not null && k.Completed > 0)
            {
                var p50 = k.Latency.Percentile(50);
                perRound.Add((round, p50 <= limitMicros && k.Errors == 0, Inv($"raftkv p50 {Ms(p50)}{(e is { Completed: > 0 } ? $", etcd {Ms(e.Latency.Percentile(50))}" : "")}")));
            }
        }

        if (perRound.Count > 0)
        {
            checks.Add(new TargetCheck(target, workload, perRound));
        }
    }

    private static WorkloadResult? Find(IReadOnlyList<WorkloadResult> results, string workload, string system, int round) =>
        results.FirstOrDefault(r => r.Spec.Name == workload && r.System == system && r.Round == round);

    private static int Order(List<WorkloadResult> results, string name) => results.FindIndex(r => r.Spec.Name == name);

    private static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
