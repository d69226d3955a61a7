using System.Net;
using System.Runtime.InteropServices;

namespace LocalKube.Runtime;

/// <summary>The program behind the image <c>localkube/testpod</c>: an HTTP server on the pod's address for runtime
/// tests. <c>GET /healthz</c> answers 200; <c>GET /readyz</c> answers 200 unless a file named <c>not-ready</c>
/// exists in the working directory or in the directory given by <c>--ready-dir</c>; <c>GET /env/NAME</c> returns an
/// environment variable; <c>GET /file?path=P</c> returns a file. SIGTERM ends it with exit code 0 after printing
/// "testpod: stopping"; with <c>--hold-after-sigterm</c> it keeps serving after SIGTERM until a file named
/// <c>may-stop</c> exists (working directory or <c>--ready-dir</c>), as a program that hands work over before it
/// exits.</summary>
internal static class TestPod
{
    public static async Task<int> RunAsync(string[] args)
    {
        var port = 8080;
        string? readyDir = null;
        var exitAfter = TimeSpan.Zero;
        var exitCode = 0;
        var holdAfterSigterm = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--port":
                    port = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
                    break;
                case "--ready-dir":
                    readyDir = args[++i];
                    break;
                case "--exit-after":
                    exitAfter = TimeSpan.FromSeconds(double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case "--hold-after-sigterm":
                    holdAfterSigterm = true;
                    break;
                case "--exit-code":
                    exitCode = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
                    break;
                default:
                    await Console.Error.WriteLineAsync($"testpod: unknown option {args[i]} (options: --port N --ready-dir DIR --exit-after SECONDS --exit-code N --hold-after-sigterm)");
                    return 2;
            }
        }

        var address = IPAddress.Parse(Environment.GetEnvironmentVariable("LOCALKUBE_POD_IP") ?? "127.0.0.1");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(address, port));
        var app = builder.Build();
        app.MapGet("/healthz", () => "ok");
        app.MapGet("/readyz", () => File.Exists("not-ready") || (readyDir is not null && File.Exists(Path.Combine(readyDir, "not-ready"))) ? Results.StatusCode(503) : Results.Text("ok"));
        app.MapGet("/env/{name}", (string name) => Environment.GetEnvironmentVariable(name) is { } v ? Results.Text(v) : Results.NotFound());
        app.MapGet("/file", (string path) => File.Exists(path) ? Results.Text(File.ReadAllText(path)) : Results.NotFound());
        var stopping = new TaskCompletionSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stopping.TrySetResult();
        });
        await app.StartAsync();
        Console.WriteLine($"testpod: serving on {address}:{port}");
        if (exitAfter > TimeSpan.Zero)
        {
            await Task.WhenAny(stopping.Task, Task.Delay(exitAfter));
            if (!stopping.Task.IsCompleted)
            {
                Console.WriteLine($"testpod: exiting with {exitCode} as asked");
                await app.StopAsync();
                return exitCode;
            }
        }

        await stopping.Task;
        if (holdAfterSigterm)
        {
            Console.WriteLine("testpod: SIGTERM received; serving until a may-stop file exists");
            using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(50));
            while (!File.Exists("may-stop") && !(readyDir is not null && File.Exists(Path.Combine(readyDir, "may-stop"))))
            {
                await poll.WaitForNextTickAsync();
            }
        }

        Console.WriteLine("testpod: stopping");
        await app.StopAsync();
        return 0;
    }
}
