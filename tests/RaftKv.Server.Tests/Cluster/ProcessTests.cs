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

    /// <summary>
    /// The store commits without syncing (the WAL is the source of truth): a member killed with SIGKILL, whose store file then
    /// lost every page written after an earlier moment (what a machine crash may do to pages that were never synced), restarts
    /// with every acknowledged write, replayed from the WAL, each applied once.
    /// </summary>
    [Fact]
    public async Task Acked_writes_survive_SIGKILL_and_a_store_that_lost_its_unsynced_commits()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-proc-");
        var ports = FreePorts.Take(2);
        var endpoint = $"127.0.0.1:{ports[0]}";
        var db = Path.Combine(dir.FullName, "member", "snap", "db");
        var older = Path.Combine(dir.FullName, "db.older");
        try
        {
            string revisionBefore;
            using (var process = Start(dir.FullName, ports[0], ports[1]))
            {
                process.OutputDataReceived += (_, _) => { };
                process.ErrorDataReceived += (_, _) => { };
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                try
                {
                    await Eventually.TrueAsync(() => Etcdctl.RunAsync(endpoint, "put", "a0", "x").GetAwaiter().GetResult().Code == 0,
                        () => "member never accepted a put", TimeSpan.FromSeconds(30));
                    await Etcdctl.OkAsync(endpoint, "put", "a1", "first");

                    // The store as a crash could leave it: taken while the member is stopped, so no commit is half-written.
                    Assert.Equal(0, Kill(process.Id, 19)); // SIGSTOP
                    try
                    {
                        File.Copy(db, older);
                    }
                    finally
                    {
                        Assert.Equal(0, Kill(process.Id, 18)); // SIGCONT
                    }

                    for (var i = 0; i < 8; i++)
                    {
                        await Etcdctl.OkAsync(endpoint, "put", $"b{i}", $"v{i}");
                    }

                    await Etcdctl.OkAsync(endpoint, "put", "a1", "second");
                    revisionBefore = RevisionOf(await Etcdctl.OkAsync(endpoint, "get", "a1", "-w", "json"));
                }
                finally
                {
                    process.Kill(); // SIGKILL
                    await process.WaitForExitAsync();
                }
            }

            var (killedAt, _) = RaftKv.Storage.Mvcc.MvccStore.ReadPosition(db);
            var (olderAt, _) = RaftKv.Storage.Mvcc.MvccStore.ReadPosition(older);
            Assert.True(olderAt < killedAt, $"the older store copy (index {olderAt}) should lack entries the killed member had applied (index {killedAt})");
            File.Move(older, db, overwrite: true);

            using (var process = Start(dir.FullName, ports[0], ports[1]))
            {
                var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
                process.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
                process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                try
                {
                    await Eventually.TrueAsync(() => Etcdctl.RunAsync(endpoint, "get", "a0").GetAwaiter().GetResult().Code == 0,
                        () => "restarted member never answered: " + string.Join('\n', output), TimeSpan.FromSeconds(30));
                    var all = await Etcdctl.OkAsync(endpoint, "get", "", "--prefix");
                    var expected = "a0\nx\na1\nsecond\n" + string.Concat(Enumerable.Range(0, 8).Select(i => $"b{i}\nv{i}\n"));
                    Assert.Equal(expected, all);

                    // Each replayed write applied once: the same revision as before the kill, and a1 at its second version.
                    var json = await Etcdctl.OkAsync(endpoint, "get", "a1", "-w", "json");
                    Assert.Equal(revisionBefore, RevisionOf(json));
                    Assert.Contains("\"version\":2", json, StringComparison.Ordinal);
                }
                finally
                {
                    _ = Kill(process.Id, 15);
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    await process.WaitForExitAsync(timeout.Token);
                }
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }

        static string RevisionOf(string json) =>
            System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("header").GetProperty("revision").GetRawText();
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
