using System.Diagnostics;
using System.Text;

namespace RaftKv.Packaging.Tests;

/// <summary>The repository under test, its pinned tools (kubectl, helm in .tools/bin) and a process runner.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string ChartDir => PathOf("charts/raftkv-operator");

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    public static string Helm => Tool("helm");

    public static string Kubectl => Tool("kubectl");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Operator.sln above {AppContext.BaseDirectory}: the tests must run inside the repository");
    }

    private static string Tool(string name)
    {
        var path = Path.Combine(Root, ".tools", "bin", name);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{name} not found at {path}: run `make deps` (bash scripts/install-test-deps.sh) to install the pinned kubectl and helm.");
        }

        return path;
    }

    /// <summary>Runs a program to completion (killed after <paramref name="timeout"/>) and returns what it printed.</summary>
    public static async Task<ToolResult> Run(string program, IEnumerable<string> args, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Root,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // helm and kubectl keep caches and configuration under HOME: keep them out of the user's.
        psi.Environment["HOME"] = Path.GetTempPath();
        psi.Environment["HELM_CACHE_HOME"] = Path.Combine(Path.GetTempPath(), "raftkv-packaging-helm", "cache");
        psi.Environment["HELM_CONFIG_HOME"] = Path.Combine(Path.GetTempPath(), "raftkv-packaging-helm", "config");
        psi.Environment["HELM_DATA_HOME"] = Path.Combine(Path.GetTempPath(), "raftkv-packaging-helm", "data");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromSeconds(90);
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in {limit}; output so far:\n{await stdout}\n{await stderr}");
        }

        return new ToolResult($"{Path.GetFileName(program)} {string.Join(' ', args)}", process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a program and fails the test, printing what it saw, unless it exits 0; returns its stdout.</summary>
    public static async Task<string> RunOk(string program, params string[] args)
    {
        var r = await Run(program, args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="describe"/>'s account of the last state.</summary>
    public static async Task WaitUntil(Func<Task<bool>> condition, Func<Task<string>> describe, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"condition not reached in {timeout}; last seen:\n{await describe()}");
            }

            await Task.Delay(100);
        }
    }
}

internal sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() =>
        new StringBuilder().Append(Command).Append(" exited ").Append(ExitCode).Append("\nstdout:\n").Append(Stdout).Append("\nstderr:\n").Append(Stderr).ToString();
}
