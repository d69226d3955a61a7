using System.Diagnostics;

namespace RaftKv.Simulator.Tests;

public sealed class DeterminismTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(3, 5)]
    public void The_same_seed_gives_the_same_trace_byte_for_byte(int seed, int nodes)
    {
        var options = new SimulationOptions { Seed = seed, Nodes = nodes };

        var (first, firstTrace) = Runs.Traced(options);
        var (second, secondTrace) = Runs.Traced(options);

        Assert.True(first.Passed, Runs.Report(first));
        Assert.True(firstTrace.Length > 10_000, $"trace is suspiciously short ({firstTrace.Length} chars)");
        if (firstTrace != secondTrace)
        {
            var a = firstTrace.Split('\n');
            var b = secondTrace.Split('\n');
            var line = Enumerable.Range(0, Math.Min(a.Length, b.Length)).FirstOrDefault(i => a[i] != b[i]);
            Assert.Fail($"traces differ first at line {line + 1}:\n  run 1: {a.ElementAtOrDefault(line)}\n  run 2: {b.ElementAtOrDefault(line)}");
        }

        Assert.Equal(first.Stats.ToString(), second.Stats.ToString());
    }

    [Fact]
    public void Different_seeds_give_different_runs()
    {
        var (_, one) = Runs.Traced(new SimulationOptions { Seed = 11, Nodes = 3 });
        var (_, other) = Runs.Traced(new SimulationOptions { Seed = 12, Nodes = 3 });

        Assert.NotEqual(one, other);
    }

    [Fact]
    public void Tracing_does_not_change_the_run()
    {
        var options = new SimulationOptions { Seed = 5, Nodes = 5 };

        var untraced = Simulation.Run(options);
        var (traced, _) = Runs.Traced(options);

        Assert.Equal(untraced.Stats.ToString(), traced.Stats.ToString());
        Assert.Equal(untraced.Violation, traced.Violation);
    }

    [Fact]
    public void Two_processes_replaying_a_seed_print_the_same_trace()
    {
        // String hashing is randomized per process, so this catches iteration over hash-ordered collections.
        var first = RunSimulatorProcess("--seed", "5", "--trace");
        var second = RunSimulatorProcess("--seed", "5", "--trace");

        Assert.True(first.Length > 10_000, $"trace is suspiciously short:\n{first}");
        Assert.True(first == second, "the two processes printed different traces");
    }

    private static string RunSimulatorProcess(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(Simulation).Assembly.Location);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the simulator process did not finish within 2 minutes");
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}
