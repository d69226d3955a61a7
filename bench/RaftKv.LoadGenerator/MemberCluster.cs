using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using RaftKv.Protocol.Etcd;

namespace RaftKv.LoadGenerator;

/// <summary>
/// Three member processes of one program (etcd or raftkv) on loopback free ports, started with the same etcd command
/// lines, data and logs in a temp dir. Disposing kills every member (also on Ctrl-C or a failed run) and deletes the dir.
/// </summary>
internal sealed class MemberCluster : IAsyncDisposable
{
    private readonly List<Process> _processes = [];
    private readonly DirectoryInfo _root;

    private MemberCluster(string system, DirectoryInfo root, string[] clientUrls)
    {
        System = system;
        _root = root;
        Endpoints = clientUrls;
    }

    public string System { get; }

    public IReadOnlyList<string> Endpoints { get; }

    public IReadOnlyList<int> Pids => [.. _processes.Select(p => p.Id)];

    public static async Task<MemberCluster> StartAsync(string system, string program, CancellationToken cancellationToken)
    {
        var root = Directory.CreateTempSubdirectory($"loadgen-{system}-");
        var ports = FreePorts(6);
        var names = new[] { "m1", "m2", "m3" };
        var initialCluster = string.Join(',', names.Select((n, i) => $"{n}=http://127.0.0.1:{ports[3 + i]}"));
        var cluster = new MemberCluster(system, root, [.. ports[..3].Select(p => $"127.0.0.1:{p}")]);
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var psi = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var arg in new[]
                {
                    "--name", names[i], "--data-dir", Path.Combine(root.FullName, names[i]),
                    "--listen-client-urls", $"http://127.0.0.1:{ports[i]}", "--advertise-client-urls", $"http://127.0.0.1:{ports[i]}",
                    "--listen-peer-urls", $"http://127.0.0.1:{ports[3 + i]}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{ports[3 + i]}",
                    "--initial-cluster", initialCluster, "--initial-cluster-token", $"loadgen-{system}", "--initial-cluster-state", "new",
                })
                {
                    psi.ArgumentList.Add(arg);
                }

                var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {program}");
                cluster._processes.Add(process);
                var log = new StreamWriter(Path.Combine(root.FullName, names[i] + ".log")) { AutoFlush = true };
                process.OutputDataReceived += (_, e) => Write(log, e.Data);
                process.ErrorDataReceived += (_, e) => Write(log, e.Data);
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
            }

            await cluster.WaitReadyAsync(TimeSpan.FromSeconds(60), cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Summed VmRSS of the members (bytes), read from /proc; members that exited count 0.</summary>
    public long ResidentBytes()
    {
        long total = 0;
        foreach (var process in _processes)
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{process.Id}/status"))
                {
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    {
                        total += long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                        break;
                    }
                }
            }
            catch (IOException)
            {
            }
        }

        return total;
    }

    /// <summary>User plus system CPU time the members have used so far, in seconds (/proc/PID/stat, clock ticks of 1/100 s).</summary>
    public double CpuSeconds()
    {
        double total = 0;
        foreach (var process in _processes)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{process.Id}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // After "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based over the whole line).
                total += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
            }
            catch (IOException)
            {
            }
        }

        return total;
    }

    /// <summary>The last lines of every member's log (for a failed run).</summary>
    public string LogTail(int lines = 15) => string.Join('\n', _processes.Select((p, i) =>
    {
        var path = Path.Combine(_root.FullName, $"m{i + 1}.log");
        var tail = File.Exists(path) ? ReadShared(path).Split('\n').TakeLast(lines) : [];
        return $"--- {System} m{i + 1} (pid {p.Id}{(p.HasExited ? $", exited {p.ExitCode}" : "")})\n" + string.Join('\n', tail);
    }));

    public void ThrowIfAnyExited()
    {
        if (_processes.Any(p => p.HasExited))
        {
            throw new InvalidOperationException($"a {System} member exited during the run:\n{LogTail()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
            }
        }

        foreach (var process in _processes)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
            }

            process.Dispose();
        }

        _processes.Clear();
        try
        {
            _root.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.WriteLine(line);
        }
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }

    /// <summary>Ready when every member answers Status naming the same leader and a put through each member succeeds.</summary>
    private async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        string last = "no answer yet";
        while (DateTime.UtcNow < deadline)
        {
            ThrowIfAnyExited();
            try
            {
                var leaders = new HashSet<ulong>();
                foreach (var endpoint in Endpoints)
                {
                    using var channel = LoadRunner.Open(endpoint);
                    var status = await new Maintenance.MaintenanceClient(channel).StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken);
                    leaders.Add(status.Leader);
                    await new KV.KVClient(channel).PutAsync(new PutRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8("loadgen-ready"), Value = Google.Protobuf.ByteString.CopyFromUtf8(endpoint) }, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
                }

                if (leaders.Count == 1 && !leaders.Contains(0))
                {
                    return;
                }

                last = $"leaders seen: {string.Join(", ", leaders.Select(l => l.ToString("x", CultureInfo.InvariantCulture)))}";
            }
            catch (Grpc.Core.RpcException e)
            {
                last = $"{e.StatusCode}: {e.Status.Detail}";
            }

            await Task.Delay(200, cancellationToken);
        }

        throw new TimeoutException($"{System} cluster not ready within {timeout.TotalSeconds:F0} s ({last}):\n{LogTail()}");
    }
}
