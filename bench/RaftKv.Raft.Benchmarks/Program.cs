using System.Globalization;
using System.Text;
using RaftKv.Benchmarks;
using RaftKv.Raft.Benchmarks;

// Runs every benchmark unless a --filter is given; other BenchmarkDotNet arguments pass through (for example: --job short).
// Results go to bench/results/RaftKv.Raft.Benchmarks/ plus a one-page summary bench/results/raft-commit-throughput.md.
var root = BenchmarkRun.RepositoryRoot;
var summaries = BenchmarkRun.Run(typeof(CommitThroughputBenchmark).Assembly, "RaftKv.Raft.Benchmarks", args);
if (!summaries.Any(s => s.Reports.Any(r => r.ResultStatistics is not null)))
{
    Console.Error.WriteLine("No benchmark produced results; the summary file was not written.");
    return 1;
}

var report = new StringBuilder();
report.AppendLine("# Raft core: committed proposals per second (3-member in-memory cluster)");
report.AppendLine();
report.AppendLine(CultureInfo.InvariantCulture, $"Run: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, args: `{string.Join(' ', args)}`");
report.AppendLine();
report.AppendLine("| Batch size | Mean per proposal | Proposals/s | Allocated per proposal |");
report.AppendLine("|---:|---:|---:|---:|");
foreach (var summary in summaries)
{
    foreach (var r in summary.Reports)
    {
        if (r.ResultStatistics is not { } stats)
        {
            continue;
        }

        var nsPerOp = stats.Mean; // BenchmarkDotNet already divides by OperationsPerInvoke
        var perSecond = 1e9 / nsPerOp;
        var batch = r.BenchmarkCase.Parameters["BatchSize"];
        var alloc = r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase);
        report.AppendLine(CultureInfo.InvariantCulture, $"| {batch} | {nsPerOp:F0} ns | {perSecond:N0} | {alloc} B |");
    }
}

Directory.CreateDirectory(Path.Combine(root, "bench", "results"));
var path = Path.Combine(root, "bench", "results", "raft-commit-throughput.md");
File.WriteAllText(path, report.ToString());
Console.WriteLine(report.ToString());
Console.WriteLine($"Summary written to {path}");
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
