using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Admin;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>One raftkv process of a <see cref="ChaosCluster"/>: its ports, data dir, log file and (while it runs) process.</summary>
internal sealed class ChaosMember
{
    public required string Name { get; init; }

    public required int ClientPort { get; init; }

    public required int PeerPort { get; init; }

    public required string DataDir { get; init; }

    public required string LogFile { get; init; }

    public required GrpcChannel Channel { get; init; }

    /// <summary>The member id, known once the member answered a Status call (or from MemberAdd).</summary>
    public ulong Id { get; set; }

    public Process? Process { get; set; }

    /// <summary>False once the member was removed from the cluster (its process is stopped and never restarted).</summary>
    public bool InCluster { get; set; } = true;

    public bool IsRunning
    {
        get
        {
            try
            {
                return Process is { HasExited: false };
            }
            catch (InvalidOperationException)
            {
                // Replaced and disposed by a restart at this moment.
                return false;
            }
        }
    }

    /// <summary>True from a kill or stop by the scenario until the next start: a member down without it crashed.</summary>
    public bool ExpectedDown { get; set; }

    public string PeerUrl => $"http://127.0.0.1:{PeerPort}";

    public string ClientUrl => $"http://127.0.0.1:{ClientPort}";

    public override string ToString() => $"{Name} ({Id:x16})";
}

/// <summary>
/// A cluster of real raftkv processes on loopback ports with data dirs under one root. Members run with
/// RAFTKV_ENABLE_TEST_HOOKS=1 so peer and disk faults can be set over the Admin API. Every member writes its output to
/// its own log file. Disposing kills every process it started.
/// </summary>
internal sealed class ChaosCluster : IAsyncDisposable
{
    /// <summary>The key health checks write (under the workload's prefix, so every revision is one the watch sees).</summary>
    public const string HealthKey = Workload.Prefix + "health";

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);

    private readonly string _binary;
    private readonly string _root;
    private readonly EventLog _log;
    private readonly int _snapshotCount;
    private readonly string _token;
    private readonly List<string> _initialCluster = [];

    /// <summary>Every process started and not yet reaped, so even a crash of the suite leaves none behind (see <see cref="KillAllStarted"/>).</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, Process> Started = new();

    /// <summary>SIGKILLs every raftkv process this program started that may still run (on exit and on an unhandled exception).</summary>
    public static void KillAllStarted()
    {
        foreach (var pid in Started.Keys)
        {
            _ = NativeKill(pid, 9);
        }
    }

    private ChaosCluster(string binary, string root, EventLog log, int snapshotCount)
    {
        _binary = binary;
        _root = root;
        _log = log;
        _snapshotCount = snapshotCount;
        _token = "chaos-" + Path.GetFileName(root);
    }

    /// <summary>Every member ever started (removed members stay, with <see cref="ChaosMember.InCluster"/> false).</summary>
    public List<ChaosMember> Members { get; } = [];

    public IEnumerable<ChaosMember> Current => Members.Where(m => m.InCluster);

    public string Root => _root;

    public static async Task<ChaosCluster> StartAsync(string binary, string root, int size, EventLog log, int snapshotCount, CancellationToken cancellationToken)
    {
        var cluster = new ChaosCluster(binary, root, log, snapshotCount);
        try
        {
            var ports = FreePorts(2 * size);
            for (var i = 0; i < size; i++)
            {
                cluster.Members.Add(cluster.NewMember($"m{i + 1}", ports[i], ports[size + i]));
            }

            cluster._initialCluster.AddRange(cluster.Members.Select(m => $"{m.Name}={m.PeerUrl}"));
            foreach (var m in cluster.Members)
            {
                cluster.Launch(m, "new", cluster._initialCluster);
            }

            await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(120), cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private ChaosMember NewMember(string name, int clientPort, int peerPort)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        return new ChaosMember
        {
            Name = name,
            ClientPort = clientPort,
            PeerPort = peerPort,
            DataDir = Path.Combine(dir, "data"),
            LogFile = Path.Combine(dir, "raftkv.log"),
            Channel = GrpcChannel.ForAddress($"http://127.0.0.1:{clientPort}", new GrpcChannelOptions
            {
                MaxReceiveMessageSize = 64 * 1024 * 1024,
                MaxSendMessageSize = 64 * 1024 * 1024,
                HttpHandler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1), EnableMultipleHttp2Connections = true },
            }),
        };
    }

    private void Launch(ChaosMember m, string state, IReadOnlyList<string> initialCluster)
    {
        // sh execs raftkv with its output appended to the member's log file, so the pid is raftkv's own.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardInput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" \"$@\" >>\"$RAFTKV_CHAOS_LOG\" 2>&1");
        psi.ArgumentList.Add(_binary);
        foreach (var a in new[]
        {
            "--name", m.Name, "--data-dir", m.DataDir,
            "--listen-client-urls", m.ClientUrl, "--advertise-client-urls", m.ClientUrl,
            "--listen-peer-urls", m.PeerUrl, "--initial-advertise-peer-urls", m.PeerUrl,
            "--initial-cluster", string.Join(',', initialCluster), "--initial-cluster-state", state,
            "--initial-cluster-token", _token,
            "--heartbeat-interval", "100", "--election-timeout", "1000",
            "--snapshot-count", _snapshotCount.ToString(CultureInfo.InvariantCulture),
        })
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["RAFTKV_ENABLE_TEST_HOOKS"] = "1";
        psi.Environment["RAFTKV_CHAOS_LOG"] = m.LogFile;
        File.AppendAllText(m.LogFile, $"==== chaos: start {m.Name} ({state}) at {DateTime.UtcNow:HH:mm:ss.fff}\n");
        m.ExpectedDown = false;
        m.Process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {_binary}");
        Started[m.Process.Id] = m.Process;
        _log.Add($"start {m.Name} pid {m.Process.Id}");
    }

    /// <summary>Starts a stopped member again on its data dir.</summary>
    public void Restart(ChaosMember m)
    {
        if (!m.IsRunning && m.InCluster)
        {
            var old = m.Process;
            Launch(m, "new", _initialCluster);
            if (old is not null)
            {
                Started.TryRemove(old.Id, out _);
                old.Dispose();
            }
        }
    }

    /// <summary>SIGKILL: the process dies at once, without flushing anything it has not fsynced.</summary>
    public async Task KillAsync(ChaosMember m)
    {
        if (m.Process is { } p && !p.HasExited)
        {
            m.ExpectedDown = true;
            _log.Add($"SIGKILL {m.Name}");
            _ = NativeKill(p.Id, 9);
            await WaitExitAsync(p).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM and wait for a clean exit (SIGKILL after 20 s).</summary>
    public async Task StopAsync(ChaosMember m)
    {
        if (m.Process is { } p && !p.HasExited)
        {
            m.ExpectedDown = true;
            _log.Add($"SIGTERM {m.Name}");
            _ = NativeKill(p.Id, 15);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _log.Add($"{m.Name} ignored SIGTERM for 20 s; SIGKILL");
                await KillAsync(m).ConfigureAwait(false);
            }
        }
    }

    private static async Task WaitExitAsync(Process p)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await p.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
    }

    /// <summary>Adds a new member through the API (as a learner), starts it joining, and returns it.</summary>
    public async Task<ChaosMember> AddMemberAsync(CancellationToken cancellationToken)
    {
        var ports = FreePorts(2);
        var m = NewMember($"m{Members.Count + 1}", ports[0], ports[1]);
        var response = await CallAnyAsync(c => new Cluster.ClusterClient(c).MemberAddAsync(
            new MemberAddRequest { PeerURLs = { m.PeerUrl }, IsLearner = true }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync,
            cancellationToken).ConfigureAwait(false);
        m.Id = response.Member.ID;
        Members.Add(m);
        _log.Add($"member add {m} as learner");
        var initial = response.Members.Select(x => $"{(x.ID == m.Id ? m.Name : x.Name)}={x.PeerURLs[0]}").ToList();
        _initialCluster.Add($"{m.Name}={m.PeerUrl}");
        Launch(m, "existing", initial);
        return m;
    }

    public async Task PromoteAsync(ChaosMember m, CancellationToken cancellationToken)
    {
        await CallAnyAsync(c => new Cluster.ClusterClient(c).MemberPromoteAsync(new MemberPromoteRequest { ID = m.Id }, deadline: Deadline(),
            cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
        _log.Add($"member promote {m}");
    }

    public async Task RemoveAsync(ChaosMember m, CancellationToken cancellationToken)
    {
        await CallAnyAsync(c => new Cluster.ClusterClient(c).MemberRemoveAsync(new MemberRemoveRequest { ID = m.Id }, deadline: Deadline(),
            cancellationToken: cancellationToken).ResponseAsync, cancellationToken).ConfigureAwait(false);
        m.InCluster = false;
        _initialCluster.RemoveAll(e => e.StartsWith(m.Name + "=", StringComparison.Ordinal));
        _log.Add($"member remove {m}");
        await StopAsync(m).ConfigureAwait(false);
    }

    /// <summary>Tries the call on every running member in turn (from a random start) until one answers.</summary>
    public async Task<T> CallAnyAsync<T>(Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            foreach (var m in Current.Where(m => m.IsRunning).OrderBy(_ => Random.Shared.Next()))
            {
                try
                {
                    return await call(m.Channel).ConfigureAwait(false);
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.FailedPrecondition)
                {
                    errors.Add($"{m.Name}: {e.Status.Detail}");
                }
                catch (RpcException e)
                {
                    throw new ChaosFailure($"{m.Name} answered {e.StatusCode} '{e.Status.Detail}'; before that: {string.Join("; ", errors.TakeLast(4))}");
                }
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        throw new ChaosFailure($"no member could do it in 30 s: {string.Join("; ", errors.TakeLast(6))}");
    }

    public static DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    public static async Task<StatusResponse?> StatusAsync(ChaosMember m, CancellationToken cancellationToken)
    {
        try
        {
            var s = await new Maintenance.MaintenanceClient(m.Channel).StatusAsync(new StatusRequest(), deadline: Deadline(), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            m.Id = s.Header.MemberId;
            return s;
        }
        catch (RpcException)
        {
            return null;
        }
    }

    /// <summary>The member every running in-cluster member names as leader, or null.</summary>
    public async Task<ChaosMember?> LeaderAsync(CancellationToken cancellationToken)
    {
        var running = Current.Where(m => m.IsRunning).ToList();
        var statuses = await Task.WhenAll(running.Select(m => StatusAsync(m, cancellationToken))).ConfigureAwait(false);
        if (statuses.Any(s => s is null))
        {
            return null;
        }

        var leaders = statuses.Select(s => s!.Leader).Distinct().ToList();
        return leaders.Count == 1 && leaders[0] != 0 ? running.FirstOrDefault(m => m.Id == leaders[0]) : null;
    }

    /// <summary>Waits until every in-cluster member runs, all agree on a leader, and a write through each member commits.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var seen = "";
        while (true)
        {
            var dead = Current.Where(m => !m.IsRunning).Select(m => $"{m.Name} exited {m.Process?.ExitCode}").ToList();
            if (dead.Count > 0)
            {
                seen = "not running: " + string.Join(", ", dead);
            }
            else if (await LeaderAsync(cancellationToken).ConfigureAwait(false) is { } leader)
            {
                try
                {
                    foreach (var m in Current)
                    {
                        await new KV.KVClient(m.Channel).PutAsync(new PutRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8(HealthKey), Value = Google.Protobuf.ByteString.CopyFromUtf8(m.Name) },
                            deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
                    }

                    return;
                }
                catch (RpcException e)
                {
                    seen = $"leader {leader.Name}, but a put failed: {e.Status.Detail}";
                }
            }
            else
            {
                seen = "no agreed leader";
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"cluster not healthy after {timeout.TotalSeconds:0} s: {seen}");
            }

            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sets the fault on <paramref name="from"/>'s traffic towards <paramref name="to"/>.</summary>
    public async Task SetPeerFaultAsync(ChaosMember from, ChaosMember to, PeerFaultRequest fault, CancellationToken cancellationToken)
    {
        if (!from.IsRunning)
        {
            return;
        }

        fault.PeerId = to.Id;
        try
        {
            await new Admin.AdminClient(from.Channel).SetPeerFaultAsync(fault, deadline: Deadline(), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            _log.Add($"could not set a peer fault on {from.Name}: {e.Status.Detail}");
        }
    }

    public async Task SetDiskFaultAsync(ChaosMember m, int fsyncDelayMs, CancellationToken cancellationToken)
    {
        if (m.IsRunning)
        {
            _log.Add($"disk of {m.Name}: fsync delay {fsyncDelayMs} ms");
            await new Admin.AdminClient(m.Channel).SetDiskFaultAsync(new DiskFaultRequest { FsyncDelayMs = (uint)fsyncDelayMs }, deadline: Deadline(),
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Cuts all traffic between the two groups, both ways.</summary>
    public async Task PartitionAsync(IReadOnlyList<ChaosMember> a, IReadOnlyList<ChaosMember> b, CancellationToken cancellationToken)
    {
        _log.Add($"partition [{string.Join(",", a.Select(m => m.Name))}] | [{string.Join(",", b.Select(m => m.Name))}]");
        foreach (var x in a)
        {
            foreach (var y in b)
            {
                await SetPeerFaultAsync(x, y, new PeerFaultRequest { Cut = true }, cancellationToken).ConfigureAwait(false);
                await SetPeerFaultAsync(y, x, new PeerFaultRequest { Cut = true }, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Clears every peer and disk fault on every running member.</summary>
    public async Task HealAsync(CancellationToken cancellationToken)
    {
        _log.Add("heal: clear all peer and disk faults");
        foreach (var from in Members.Where(m => m.IsRunning))
        {
            foreach (var to in Members.Where(m => m != from && m.Id != 0))
            {
                await SetPeerFaultAsync(from, to, new PeerFaultRequest(), cancellationToken).ConfigureAwait(false);
            }

            try
            {
                await SetDiskFaultAsync(from, 0, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                _log.Add($"could not clear the disk fault on {from.Name}: {e.Status.Detail}");
            }
        }
    }

    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        listeners.ForEach(l => l.Start());
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        listeners.ForEach(l => l.Stop());
        return ports;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var m in Members)
        {
            if (m.Process is { } p)
            {
                if (!p.HasExited)
                {
                    _ = NativeKill(p.Id, 9);
                    try
                    {
                        await WaitExitAsync(p).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }

                Started.TryRemove(p.Id, out _);
                p.Dispose();
            }

            m.Channel.Dispose();
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int NativeKill(int pid, int signal);
}

/// <summary>A check or a step of a scenario failed; the message says what was seen.</summary>
internal sealed class ChaosFailure(string message) : Exception(message);

/// <summary>Time-stamped record of what a scenario did (faults, restarts), kept with a failure's logs.</summary>
internal sealed class EventLog
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public void Add(string line)
    {
        lock (_lock)
        {
            _lines.Add($"{_clock.Elapsed.TotalSeconds,8:0.000}s {line}");
        }
    }

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lock)
            {
                return [.. _lines];
            }
        }
    }
}
