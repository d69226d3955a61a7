using System.Reflection;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Csv;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RaftKv.Benchmarks;

/// <summary>
/// What every benchmark program does before writing its own summary: find the repository, run the benchmarks of
/// one assembly (all of them unless a <c>--filter</c> is given; other BenchmarkDotNet arguments pass through) with
/// full tables under <c>bench/results/NAME/</c>.
/// </summary>
internal static class BenchmarkRun
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string ResultsDirectory => Path.Combine(RepositoryRoot, "bench", "results");

    public static IReadOnlyList<Summary> Run(Assembly assembly, string name, string[] args)
    {
        var config = DefaultConfig.Instance
            .WithArtifactsPath(Path.Combine(ResultsDirectory, name))
            .AddExporter(MarkdownExporter.GitHub)
            .AddExporter(CsvExporter.Default);
        return [.. BenchmarkSwitcher.FromAssembly(assembly).Run(args.Contains("--filter") ? args : [.. args, "--filter", "*"], config)];
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
