using System.Text;

namespace RaftKv.Simulator.Tests;

/// <summary>Helpers shared by the simulator tests.</summary>
internal static class Runs
{
    /// <summary>Runs seeds in order and returns the first failing result, or null if all pass.</summary>
    public static SimulationResult? FirstFailure(IEnumerable<int> seeds, Func<int, SimulationOptions> options)
    {
        foreach (var seed in seeds)
        {
            var result = Simulation.Run(options(seed));
            if (!result.Passed)
            {
                return result;
            }
        }

        return null;
    }

    /// <summary>The report the CLI prints for a result (violation, last events, replay command).</summary>
    public static string Report(SimulationResult result)
    {
        using var text = new StringWriter();
        SimulatorCli.Report(result, text, printTail: true);
        return text.ToString();
    }

    /// <summary>The full trace of a run.</summary>
    public static (SimulationResult Result, string Trace) Traced(SimulationOptions options)
    {
        var text = new StringBuilder();
        using var writer = new StringWriter(text);
        var result = Simulation.Run(options, writer);
        return (result, text.ToString());
    }

    /// <summary>Runs the CLI in-process.</summary>
    public static (int Code, string Stdout, string Stderr) Cli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = SimulatorCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
