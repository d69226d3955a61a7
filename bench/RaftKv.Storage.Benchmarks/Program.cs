using System.Globalization;
using System.Text;
using RaftKv.Benchmarks;
using RaftKv.Storage.Benchmarks;

// Runs every storage benchmark unless a --filter is given; other BenchmarkDotNet arguments pass through.
// Results go to bench/results/RaftKv.Storage.Benchmarks/ plus a one-page summary bench/results/storage.md with the targets.
var root = BenchmarkRun.RepositoryRoot;
var summaries = BenchmarkRun.Run(typeof(WalBenchmarks).Assembly, "RaftKv.Storage.Benchmarks", args);
var reports = summaries.SelectMany(s => s.Reports).Where(r => r.ResultStatistics is not null).ToList();
if (reports.Count == 0)
{
    Console.Error.WriteLine("No benchmark produced results; the summary file was not written.");
    return 1;
}

double? MeanNs(string method) =>
    reports.FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method)?.ResultStatistics!.Mean;
double? MedianNs(string method) =>
    reports.FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method)?.ResultStatistics!.Median;

var text = new StringBuilder();
text.AppendLine("# Storage: WAL group commit and MVCC store");
text.AppendLine();
text.AppendLine(CultureInfo.InvariantCulture, $"Run: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, temp dir on `{Path.GetTempPath()}`, args: `{string.Join(' ', args)}`");
text.AppendLine();
text.AppendLine("Rates from the median iteration (the mean is dragged by other work on this shared machine; both shown).");
text.AppendLine();
text.AppendLine("| Measure | Mean per op | Median per op | Rate (median) | Target | Met |");
text.AppendLine("|---|---:|---:|---:|---:|:---:|");
void Row(string label, string method, double target)
{
    if (MeanNs(method) is not { } ns || MedianNs(method) is not { } median)
    {
        return;
    }

    var rate = 1e9 / median;
    text.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {ns / 1000:F2} µs | {median / 1000:F2} µs | {rate:N0}/s | ≥ {target:N0}/s | {(rate >= target ? "yes" : "no")} |");
}

Row("WAL append of a 256 B entry, 64 concurrent writers", nameof(WalBenchmarks.ConcurrentAppends), 50_000);
Row("MVCC put, batched 1000 per apply", nameof(MvccBenchmarks.BatchedPut), 100_000);
Row("MVCC point range, one reader", nameof(MvccBenchmarks.PointRange), 500_000);
Row($"MVCC point range, {Environment.ProcessorCount} readers (one per core)", nameof(MvccBenchmarks.ParallelPointRange), 500_000);
if (MedianNs(nameof(WalBenchmarks.SingleWriterAppend)) is { } append && MedianNs(nameof(WalBenchmarks.BareWriteAndSync)) is { } bare)
{
    var ratio = append / bare;
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture,
        $"One writer's append+sync: median {append / 1000:F1} µs (mean {MeanNs(nameof(WalBenchmarks.SingleWriterAppend))!.Value / 1000:F1}) against a bare pwrite+fdatasync of the same bytes: median {bare / 1000:F1} µs (mean {MeanNs(nameof(WalBenchmarks.BareWriteAndSync))!.Value / 1000:F1}); ratio of medians {ratio:F2} (target ≤ 1.20: {(ratio <= 1.2 ? "met" : "not met")}), measured side by side in one run.");
}

if (!args.Contains("--filter") || args.Any(a => a.Contains("Wal", StringComparison.Ordinal)))
{
    // Three rounds, each in a fresh directory: one round's median moves with whatever else flushed during it.
    text.AppendLine();
    text.AppendLine("Interleaved, one bare pwrite+fdatasync and one WAL append+sync per pair, which goes first alternating, so both meet the same disk (three rounds):");
    text.AppendLine();
    for (var round = 1; round <= 3; round++)
    {
        var probe = InterleavedSyncProbe.Run();
        var ratio = probe.AppendMedianUs / probe.BareMedianUs;
        text.AppendLine(CultureInfo.InvariantCulture,
            $"- round {round} ({probe.Pairs} pairs): WAL append+sync median {probe.AppendMedianUs:F0} µs (p90 {probe.AppendP90Us:F0}), bare median {probe.BareMedianUs:F0} µs (p90 {probe.BareP90Us:F0}); ratio {ratio:F2} (target ≤ 1.20: {(ratio <= 1.2 ? "met" : "not met")}).");
    }
    var calls = InterleavedSyncProbe.CompareSyncCalls();
    text.AppendLine();
    text.AppendLine(CultureInfo.InvariantCulture,
        $"Sync call, interleaved ({calls.Pairs} pairs of pwrite 304 B + sync): fdatasync (libc) median {calls.FdatasyncMedianUs:F0} µs, RandomAccess.FlushToDisk (fsync) median {calls.FsyncMedianUs:F0} µs. The WAL uses fdatasync.");
}

if (!args.Contains("--filter") || args.Any(a => a.Contains("Mvcc", StringComparison.Ordinal)))
{
    text.AppendLine();
    text.AppendLine("Same MVCC workloads measured once more in-process, with CPU time (load-independent: the rate one free core sustains; puts also wait for the commit's sync, which costs wall time but no CPU):");
    text.AppendLine();
    text.AppendLine("| Measure | Wall per op | CPU per op | Rate on one free core | Target | Met |");
    text.AppendLine("|---|---:|---:|---:|---:|:---:|");
    foreach (var (label, wallUs, cpuUs, target) in CpuProbe.Run())
    {
        var rate = 1e6 / cpuUs;
        text.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {wallUs:F2} µs | {cpuUs:F2} µs | {rate:N0}/s | ≥ {target:N0}/s | {(rate >= target ? "yes" : "no")} |");
    }
}

var syncRows = reports.Where(r => r.BenchmarkCase.Descriptor.Type == typeof(SyncMethodBenchmarks)).ToList();
if (syncRows.Count > 0)
{
    text.AppendLine();
    text.AppendLine("Sync call (pwrite of one framed 256 B entry, then the call), side by side:");
    foreach (var r in syncRows)
    {
        text.AppendLine(CultureInfo.InvariantCulture, $"- {r.BenchmarkCase.Parameters["Method"]}: {r.ResultStatistics!.Mean / 1000:F1} µs mean, {r.ResultStatistics.Median / 1000:F1} µs median");
    }
}

text.AppendLine();
text.AppendLine(CultureInfo.InvariantCulture, $"Machine load average when the run ended: {LoadAverage()} (2 cores shared with other work: rates scale down with load).");
text.AppendLine();
text.AppendLine("Full tables: `bench/results/RaftKv.Storage.Benchmarks/results/`.");
var path = Path.Combine(root, "bench", "results", "storage.md");
File.WriteAllText(path, text.ToString());
Console.WriteLine(text.ToString());
Console.WriteLine($"Summary written to {path}");
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;

static string LoadAverage()
{
    try
    {
        return File.ReadAllText("/proc/loadavg").Trim();
    }
    catch (IOException)
    {
        return "unknown";
    }
}
