using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>The built raftkv program as a child process: start-up failures and a clean stop on SIGTERM.</summary>
public sealed class ProcessTests
{
    private static string Program => Path.Combine(AppContext.BaseDirectory, "raftkv");

    private static Process Start(string dataDir, int clientPort, int peerPort)
    {
        var psi = new ProcessStartInfo(Program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "--name", "p1", "--data-dir", dataDir,
            "--listen-client-urls", $"http://127.0.0.1:{clientPort}", "--advertise-client-urls", $"http://127.0.0.1:{clientPort}",
            "--listen-peer-urls", $"http://127.0.0.1:{peerPort}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peerPort}",
            "--initial-cluster", $"p1=http://127.0.0.1:{peerPort}",
        })
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    [Fact]
    public async Task A_port_in_use_ends_start_up_with_a_clear_message_and_a_non_zero_exit()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-proc-");
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var busy = ((IPEndPoint)squatter.LocalEndpoint).Port;
        try
        {
            using var process = Start(dir.FullName, busy, FreePorts.Take(1)[0]);
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await process.WaitForExitAsync(timeout.Token);

            Assert.Equal(1, process.ExitCode);
            Assert.Contains("raftkv: cannot listen", await stderr, StringComparison.Ordinal);
            Assert.Contains("another process holds the port", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Sigterm_stops_a_serving_member_cleanly_and_it_restarts_on_its_data()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-proc-");
        var ports = FreePorts.Take(2);
        try
        {
            for (var run = 0; run < 2; run++)
            {
                using var process = Start(dir.FullName, ports[0], ports[1]);
                process.OutputDataReceived += (_, _) => { };
                process.ErrorDataReceived += (_, _) => { };
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                try
                {
                    var endpoint = $"127.0.0.1:{ports[0]}";
                    await Eventually.TrueAsync(() => Etcdctl.RunAsync(endpoint, "put", $"run{run}", "x").GetAwaiter().GetResult().Code == 0,
                        () => $"member (run {run}) never accepted a put", TimeSpan.FromSeconds(30));
                    if (run == 1)
                    {
                        Assert.Equal("run0\nx\n", await Etcdctl.OkAsync(endpoint, "get", "run0"));
                    }
                }
                finally
                {
                    _ = Kill(process.Id, 15);
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    await process.WaitForExitAsync(timeout.Token);
                }

                Assert.Equal(0, process.ExitCode);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
