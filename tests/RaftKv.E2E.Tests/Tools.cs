using System.Diagnostics;
using System.Text;

namespace RaftKv.E2E.Tests;

/// <summary>The repository, the programs under test, and the command-line clients (kubectl, etcdctl).</summary>
internal static class Tools
{
    public static string Root { get; } = FindRoot();

    public static string RepositoryPath(string relative) => Path.Combine(Root, relative);

    /// <summary>A program built beside this assembly (raftkv, raftkv-operator come with the project references).</summary>
    public static string Program(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, name);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: build tests/RaftKv.E2E.Tests (it references the program's project)");
    }

    public static string Kubectl
    {
        get
        {
            var path = RepositoryPath(".tools/bin/kubectl");
            return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: run `make deps` (or `bash scripts/install-test-deps.sh`) in the repository root");
        }
    }

    public static string Etcdctl =>
        File.Exists("/usr/bin/etcdctl") ? "/usr/bin/etcdctl" : throw new InvalidOperationException("/usr/bin/etcdctl is missing: run `make deps` (Debian package etcd-client)");

    /// <summary>Runs a program to its end (or <paramref name="timeout"/>, then kills it) and returns its exit code and output.</summary>
    public static async Task<Result> RunAsync(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new Result(-1, await stdout, await stderr + $"\n(killed after {timeout ?? TimeSpan.FromSeconds(30)})", $"{Path.GetFileName(program)} {string.Join(' ', start.ArgumentList)}");
        }

        return new Result(process.ExitCode, await stdout, await stderr, $"{Path.GetFileName(program)} {string.Join(' ', start.ArgumentList)}");
    }

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
}

/// <summary>What a command did.</summary>
internal sealed record Result(int ExitCode, string Stdout, string Stderr, string Command)
{
    public bool Ok => ExitCode == 0;

    public override string ToString() => $"`{Command}` exit {ExitCode}\nstdout: {Stdout.Trim()}\nstderr: {Stderr.Trim()}";
}

/// <summary>Polls an observable condition until a deadline (no fixed sleeps); fails with the last thing seen.</summary>
internal static class Eventually
{
    public static async Task<T> Until<T>(Func<Task<T>> probe, Func<T, bool> done, Func<T, string> describe, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        T last = default!;
        Exception? error = null;
        while (watch.Elapsed < timeout)
        {
            try
            {
                last = await probe();
                error = null;
                if (done(last))
                {
                    return last;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                error = e;
            }

            await Task.Delay(250);
        }

        Assert.Fail($"{what}: not within {timeout.TotalSeconds:0} s; last seen: {(error is not null ? error.Message : describe(last))}");
        return last;
    }
}

/// <summary>Appends lines of a child process's output, thread-safe; keeps the last ones for failure messages.</summary>
internal sealed class OutputLog
{
    private readonly StringBuilder _text = new();

    public void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_text)
        {
            _text.AppendLine(line);
        }
    }

    public string Tail(int lines = 40)
    {
        lock (_text)
        {
            var all = _text.ToString().Split('\n');
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
    }
}
