using System.Diagnostics;
using System.Text;

namespace RaftKv.LoadGenerator;

/// <summary>
/// The comparison run: a 3-member etcd cluster and a 3-member raftkv cluster side by side, the standard workloads run
/// against each in alternating order (the machine is shared, so both meet the same noise), member RSS and CPU sampled,
/// etcdctl check perf for both, and the markdown report written.
/// </summary>
internal static class Driver
{
    public const string Etcd = "etcd";
    public const string Raftkv = "raftkv";

    /// <summary>The workloads of a comparison run (the issue's targets are on the first three).</summary>
    public static IReadOnlyList<WorkloadSpec> StandardWorkloads(bool quick)
    {
        int Scale(int full, int small) => quick ? small : full;
        var seconds = TimeSpan.FromSeconds(quick ? 8 : 15);
        return
        [
            new WorkloadSpec(WorkloadKind.Put) { Clients = 1000, Conns = 100, Total = Scale(60_000, 5_000), KeySpace = 100_000, KeySize = 8, Target = Target.All, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Put) { Clients = 1, Conns = 1, Total = Scale(2_000, 300), KeySpace = 100_000, Target = Target.Leader, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 1, Conns = 1, Total = Scale(5_000, 500), KeySpace = 1_000, Linearizable = true, Target = Target.Leader, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 1, Conns = 1, Total = Scale(5_000, 500), KeySpace = 1_000, Linearizable = false, Target = Target.Leader, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 1000, Conns = 100, Total = Scale(60_000, 5_000), KeySpace = 1_000, Linearizable = true, Target = Target.All, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 1000, Conns = 100, Total = Scale(60_000, 5_000), KeySpace = 1_000, Linearizable = false, Target = Target.All, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.TxnPut) { Clients = 100, Conns = 10, Total = Scale(20_000, 2_000), KeySpace = 100_000, Target = Target.All, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Watch) { Clients = 10, Conns = 10, Total = Scale(5_000, 500), Watchers = 100, WatchStreams = 10, Target = Target.All, MaxDuration = seconds },
        ];
    }

    /// <summary>Unmeasured requests of every kind before round 1 (the same for both systems).</summary>
    public static IReadOnlyList<WorkloadSpec> WarmUp(bool quick)
    {
        // Long enough for raftkv's hot paths to reach their final compiled form: a fresh member spends its first ~1,000
        // requests of a kind compiling them (two to three times the CPU per request of a warm one), which a measured
        // run would otherwise count against it. etcd is compiled ahead of time and gets the same requests. The first two
        // have the 1000-client shape so the load generator's own code (the same process for the whole run) is compiled
        // for it too before the first measured row, which it shares the two cores with.
        var total = quick ? 3_000 : 6_000;
        var seconds = TimeSpan.FromSeconds(quick ? 10 : 20);
        return
        [
            new WorkloadSpec(WorkloadKind.Put) { Clients = 1000, Conns = 100, Total = total * 2, KeySpace = 100_000, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 1000, Conns = 100, Total = total * 2, KeySpace = 100, Linearizable = false, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Put) { Clients = 100, Conns = 10, Total = total, KeySpace = 100_000, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Put) { Clients = 1, Conns = 1, Total = total / 3, KeySpace = 100_000, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 100, Conns = 10, Total = total, KeySpace = 100, Linearizable = true, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Range) { Clients = 100, Conns = 10, Total = total, KeySpace = 100, Linearizable = false, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.TxnPut) { Clients = 100, Conns = 10, Total = total, KeySpace = 100_000, MaxDuration = seconds },
            new WorkloadSpec(WorkloadKind.Watch) { Clients = 10, Conns = 10, Total = total / 10, Watchers = 20, WatchStreams = 10, MaxDuration = seconds },
        ];
    }

    public static async Task<int> RunAsync(CompareOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var root = RepositoryRoot();
        var raftkvPath = options.RaftkvPath ?? Path.Combine(root, "bin", "raftkv");
        if (!File.Exists(raftkvPath) && options.RaftkvPath is null)
        {
            Console.WriteLine($"{raftkvPath} is missing: running 'make build' first");
            await RunToConsoleAsync("make", ["-C", root, "build"], cancellationToken);
        }

        if (!File.Exists(raftkvPath))
        {
            Console.Error.WriteLine($"{raftkvPath} not found; build it with 'make build' or pass --raftkv PATH");
            return 2;
        }

        if (!File.Exists(options.EtcdPath))
        {
            Console.Error.WriteLine($"{options.EtcdPath} not found; install Debian's etcd-server ('make deps') or pass --etcd PATH");
            return 2;
        }

        var workloads = StandardWorkloads(options.Quick).Where(w => CommandLine.Matches(options.Filter, w.Name)).ToList();
        if (workloads.Count == 0)
        {
            Console.Error.WriteLine($"--filter '{options.Filter}' matches none of: {string.Join("; ", StandardWorkloads(options.Quick).Select(w => w.Name))}");
            return 2;
        }

        var report = new ReportInput
        {
            Started = DateTime.UtcNow,
            Options = options,
            Environment = DescribeEnvironment(options.EtcdPath, raftkvPath),
        };

        Console.WriteLine("starting a 3-member etcd cluster and a 3-member raftkv cluster on loopback");
        await using var etcd = await MemberCluster.StartAsync(Etcd, options.EtcdPath, cancellationToken);
        await using var raftkv = await MemberCluster.StartAsync(Raftkv, raftkvPath, cancellationToken);
        var clusters = new Dictionary<string, MemberCluster> { [Etcd] = etcd, [Raftkv] = raftkv };
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        report.IdleRss[Etcd] = etcd.ResidentBytes();
        report.IdleRss[Raftkv] = raftkv.ResidentBytes();

        // Unmeasured warm-up of both: raftkv's JIT compiles its hot paths (tiered compilation) and both fill their caches.
        foreach (var system in new[] { Etcd, Raftkv })
        {
            Console.WriteLine($"warming up {system} ...");
            foreach (var spec in WarmUp(options.Quick))
            {
                await LoadRunner.RunAsync(system, spec with { Endpoints = clusters[system].Endpoints }, cancellationToken);
            }
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        for (var round = 1; round <= options.Rounds; round++)
        {
            for (var w = 0; w < workloads.Count; w++)
            {
                string[] order = (round + w) % 2 == 1 ? [Etcd, Raftkv] : [Raftkv, Etcd];
                foreach (var system in order)
                {
                    var cluster = clusters[system];
                    cluster.ThrowIfAnyExited();
                    var spec = workloads[w] with { Endpoints = cluster.Endpoints };
                    Console.WriteLine($"round {round}/{options.Rounds}: {spec.Name} against {system} ...");
                    var result = await MeasureAsync(cluster, spec, http, cancellationToken) with { Round = round };
                    report.Results.Add(result);
                    Console.WriteLine($"  {Report.Line(result)}");
                    Console.WriteLine($"  {result.ClientCost.Describe(result.Completed)}");
                }
            }
        }

        if (options.CheckPerf)
        {
            foreach (var system in new[] { Etcd, Raftkv })
            {
                Console.WriteLine($"etcdctl check perf --load=l against {system} (60 s) ...");
                report.CheckPerf[system] = await CheckPerfAsync(options.EtcdctlPath, clusters[system].Endpoints, cancellationToken);
            }
        }

        report.Finished = DateTime.UtcNow;
        var output = options.Output ?? Path.Combine(root, "bench", "results", "loadgen.md");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        var markdown = Report.Render(report);
        await File.WriteAllTextAsync(output, markdown, cancellationToken);
        Console.WriteLine(markdown);
        Console.WriteLine($"Results written to {output}");
        return report.Results.Any(r => r.Completed == 0) ? 1 : 0;
    }

    private static async Task<WorkloadResult> MeasureAsync(MemberCluster cluster, WorkloadSpec spec, HttpClient http, CancellationToken cancellationToken)
    {
        var leader = await LoadRunner.FindLeaderAsync(cluster.Endpoints, cancellationToken);
        var metricsBefore = await ServerMetrics.ScrapeAsync(http, leader, cancellationToken);
        var cpuBefore = cluster.CpuSeconds();
        long peakRss = cluster.ResidentBytes();
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakRss = Math.Max(peakRss, cluster.ResidentBytes());
                try
                {
                    await Task.Delay(200, sampling.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }, CancellationToken.None);

        WorkloadResult result;
        try
        {
            result = await LoadRunner.RunAsync(cluster.System, spec, cancellationToken);
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or InvalidOperationException or TimeoutException)
        {
            result = new WorkloadResult(cluster.System, spec, 0, 1, TimeSpan.Zero, new LatencyHistogram(), e.Message);
        }
        finally
        {
            await sampling.CancelAsync();
            await sampler;
        }

        var metricsAfter = await ServerMetrics.ScrapeAsync(http, leader, cancellationToken);
        return result with
        {
            PeakRssBytes = Math.Max(peakRss, cluster.ResidentBytes()),
            MemberCpuSeconds = cluster.CpuSeconds() - cpuBefore,
            LeaderMetrics = metricsAfter.Minus(metricsBefore),
        };
    }

    private static async Task<string> CheckPerfAsync(string etcdctl, IReadOnlyList<string> endpoints, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(etcdctl) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ETCDCTL_API"] = "3";
        foreach (var arg in new[] { $"--endpoints={string.Join(',', endpoints)}", "check", "perf", "--load=l" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {etcdctl}");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(150));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }

        return Report.CleanCheckPerf(await stdout + "\n" + await stderr) + $"\n(exit code {process.ExitCode})";
    }

    private static string DescribeEnvironment(string etcdPath, string raftkvPath)
    {
        var text = new StringBuilder();
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        text.Append($"{Environment.ProcessorCount} cores ({cpu ?? "unknown CPU"}), {Environment.OSVersion}, .NET {Environment.Version}");
        if (File.Exists("/proc/loadavg"))
        {
            text.Append($", load average at start {string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3))}");
        }

        text.Append($"; etcd: {FirstLine(etcdPath, "--version")}; raftkv: {FirstLine(raftkvPath, "--version")}");
        return text.ToString();
    }

    private static string FirstLine(string program, string arg)
    {
        try
        {
            var psi = new ProcessStartInfo(program, arg) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(psi)!;
            var line = process.StandardOutput.ReadLine() ?? "";
            process.WaitForExit(10_000);
            return line.Trim();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"({e.Message})";
        }
    }

    private static async Task RunToConsoleAsync(string program, string[] args, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(program) { UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {program}");
        await process.WaitForExitAsync(cancellationToken);
    }

    private static string RepositoryRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
