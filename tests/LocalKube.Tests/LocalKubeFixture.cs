using System.Diagnostics;
using System.Text;

namespace LocalKube.Tests;

/// <summary>One local control plane (in-process, free loopback port) shared by a test class, with a kubeconfig
/// in a temp directory and helpers that run the real kubectl against it.</summary>
public class LocalKubeFixture : IAsyncLifetime
{
    private LocalKubeServer? _server;

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "localkube-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public string KubeconfigPath => Path.Combine(Directory, "kubeconfig");

    internal LocalKubeServer Server => _server ?? throw new InvalidOperationException("the fixture has not started");

    public Uri Url => Server.Url;

    public async Task InitializeAsync()
    {
        System.IO.Directory.CreateDirectory(Directory);
        _server = await LocalKubeServer.StartAsync(CreateOptions());
    }

    /// <summary>The server's settings; the runtime fixture adds the pod runtime.</summary>
    protected virtual LocalKubeOptions CreateOptions() =>
        new() { KubeconfigPath = KubeconfigPath, BookmarkInterval = TimeSpan.FromMilliseconds(300) };

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
    }

    /// <summary>The repository's kubectl (v1.33, installed by scripts/install-test-deps.sh).</summary>
    public static string KubectlPath => Tool("kubectl");

    public static string HelmPath => Tool("helm");

    private static string Tool(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
        {
            dir = dir.Parent;
        }

        var path = dir is null ? null : Path.Combine(dir.FullName, ".tools", "bin", name);
        if (path is null || !File.Exists(path))
        {
            throw new InvalidOperationException($"{name} not found at {path ?? ".tools/bin/" + name}: run `bash scripts/install-test-deps.sh` from the repository root to install the pinned kubectl and helm.");
        }

        return path;
    }

    /// <summary>Runs kubectl with this cluster's kubeconfig; returns exit code and output.</summary>
    public Task<ToolResult> Kubectl(params string[] args) => KubectlIn(null, args);

    public async Task<ToolResult> KubectlIn(string? stdin, params string[] args)
    {
        var all = new List<string> { "--kubeconfig", KubeconfigPath, "--cache-dir", Path.Combine(Directory, "cache"), "--request-timeout", "20s" };
        all.AddRange(args);
        return await Run(KubectlPath, all, stdin, TimeSpan.FromSeconds(60));
    }

    /// <summary>Runs kubectl and fails the test, printing what it saw, unless it exits 0.</summary>
    public async Task<string> KubectlOk(params string[] args) => await KubectlOkIn(null, args);

    public async Task<string> KubectlOkIn(string? stdin, params string[] args)
    {
        var r = await KubectlIn(stdin, args);
        Assert.True(r.ExitCode == 0, $"kubectl {string.Join(' ', args)} exited {r.ExitCode}\nstdout:\n{r.Stdout}\nstderr:\n{r.Stderr}");
        return r.Stdout;
    }

    public static async Task<ToolResult> Run(string program, IEnumerable<string> args, string? stdin, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HOME"] = Path.GetTempPath();
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in {timeout}; output so far:\n{await stdout}\n{await stderr}");
        }

        return new ToolResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling; fails with <paramref name="describe"/>'s
    /// account of the last state seen.</summary>
    public static async Task WaitUntil(Func<Task<bool>> condition, Func<Task<string>> describe, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (deadline.Elapsed > limit)
            {
                Assert.Fail($"condition not reached in {limit}; last seen:\n{await describe()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>A fresh namespace for one test (created with kubectl create -f).</summary>
    public async Task<string> NewNamespace(string prefix)
    {
        var name = $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";
        await KubectlOkIn($"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n", "create", "-f", "-");
        return name;
    }
}

/// <summary>A control plane with the pod runtime: 3 nodes in zones a, b, c, pods as local processes.</summary>
public sealed class LocalKubeRuntimeFixture : LocalKubeFixture
{
    public string Root => Path.Combine(Directory, "root");

    protected override LocalKubeOptions CreateOptions() => base.CreateOptions() with
    {
        Runtime = new LocalKube.Runtime.RuntimeOptions { Root = Root, MaxRestartBackoff = TimeSpan.FromSeconds(1) },
    };
}

public sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => new StringBuilder().Append("exit ").Append(ExitCode).Append("\nstdout:\n").Append(Stdout).Append("\nstderr:\n").Append(Stderr).ToString();
}
