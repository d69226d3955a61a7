using System.Diagnostics;

namespace RaftKv.Storage.Benchmarks;

/// <summary>
/// The benchmarks' wall-clock rates fall with whatever else runs on this 2-core machine. This probe runs the same MVCC
/// workloads once more and reports process CPU time per operation as well: what one uncontended core would sustain.
/// </summary>
internal static class CpuProbe
{
    public static (double WallUs, double CpuUs) Measure(Action<int> step, int steps, int operationsPerStep)
    {
        step(0); // warm up (JIT)
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        for (var i = 1; i <= steps; i++)
        {
            step(i);
        }

        wall.Stop();
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var ops = (double)steps * operationsPerStep;
        return (wall.Elapsed.TotalMicroseconds / ops, cpu.TotalMicroseconds / ops);
    }

    public static IEnumerable<(string Label, double WallUs, double CpuUs, double Target)> Run()
    {
        var bench = new MvccBenchmarks();
        bench.Setup();
        try
        {
            var put = Measure(_ => bench.BatchedPut(), 50, MvccBenchmarks.Batch);
            yield return ("MVCC put, batched 1000 per apply", put.WallUs, put.CpuUs, 100_000);
            var range = Measure(_ => bench.PointRange(), 30, MvccBenchmarks.Reads);
            yield return ("MVCC point range", range.WallUs, range.CpuUs, 500_000);
        }
        finally
        {
            bench.Cleanup();
        }
    }
}
