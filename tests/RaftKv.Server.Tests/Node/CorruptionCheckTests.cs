using System.Diagnostics;
using System.Text;
using RaftKv.Server.Node;
using RaftKv.Server.Tests.Cluster;
using RaftKv.Storage.Mvcc;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Tests.Node;

/// <summary>
/// etcd's initial corruption check (--experimental-initial-corrupt-check, on by default in raftkv): a restarted member whose
/// LMDB store holds a damaged value refuses to start, and an undamaged one passes.
/// </summary>
public sealed class CorruptionCheckTests
{
    private const string Key = "canary";

    /// <summary>Long and unlike anything else in the store, so its bytes are found in the file and nowhere else.</summary>
    private const string Value = "value-to-damage-7f3a9c2e41b8d05e6a";

    private static string Program => Path.Combine(AppContext.BaseDirectory, "raftkv");

    private static readonly HashKvResponse Local = new(Revision: 10, Hash: 111, CompactRevision: 4, HashRevision: 10);

    private static PeerHash Answer(uint hash, long compactRevision) =>
        new(2, ["http://127.0.0.1:1"], new Wire.HashKVResponse { MemberId = 2, Revision = 12, Hash = hash, CompactRevision = compactRevision, HashRevision = 10 },
            PeerHashFailure.None, "");

    [Fact]
    public void Only_a_different_hash_at_the_same_compact_revision_is_a_mismatch()
    {
        Assert.Equal(PeerVerdict.Match, CorruptionCheck.Judge(Local, Answer(111, 4)));
        Assert.Equal(PeerVerdict.Match, CorruptionCheck.Judge(Local, Answer(111, 6)));
        Assert.Equal(PeerVerdict.Mismatch, CorruptionCheck.Judge(Local, Answer(112, 4)));
        Assert.Equal(PeerVerdict.CompactRevisionDiffers, CorruptionCheck.Judge(Local, Answer(112, 6)));
        Assert.Equal(PeerVerdict.LocalBehind, CorruptionCheck.Judge(Local, new PeerHash(2, [], null, PeerHashFailure.Compacted, "compacted")));
        Assert.Equal(PeerVerdict.PeerBehind, CorruptionCheck.Judge(Local, new PeerHash(2, [], null, PeerHashFailure.FutureRevision, "future")));
        Assert.Equal(PeerVerdict.Unreachable, CorruptionCheck.Judge(Local, new PeerHash(2, [], null, PeerHashFailure.Unreachable, "refused")));
    }

    [Fact]
    public async Task A_member_whose_store_holds_a_damaged_value_refuses_to_start_and_serves_it_only_with_the_check_off()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoints, "put", Key, Value);
        var victimId = cluster.Host(2).Member.MemberId;
        var peerIds = new[] { cluster.Host(0).Member.MemberId, cluster.Host(1).Member.MemberId };
        await Eventually.TrueAsync(() => cluster.Host(2).Member.AppliedIndex >= cluster.Host(0).Member.CommitIndex, cluster.Describe);
        await cluster.StopMemberAsync(2);

        var flipped = FlipByteInValue(Path.Combine(cluster.DataDir(2), "member", "snap", "db"));

        var refused = await RunToExitAsync(cluster.Args(2, 100, 1000));
        Assert.True(refused.Code == RaftKvExitCodes.DataInconsistent,
            $"expected exit {RaftKvExitCodes.DataInconsistent} after flipping the value's byte at {flipped}; exited {refused.Code}\nstderr: {refused.Stderr}\nstdout: {refused.Stdout}");
        Assert.Contains($"raftkv: {victimId:x} found data inconsistency with peers: local member {victimId:x} has hash", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains(peerIds, id => refused.Stderr.Contains($"peer {id:x} has hash", StringComparison.Ordinal));
        Assert.Contains($"etcdctl member remove {victimId:x}", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("found different hash values from remote peer", refused.Stdout, StringComparison.Ordinal);

        // The escape hatch, and the proof that the flip hit the value the member would serve: with the check off it starts and
        // answers a local read with the damaged value.
        using var process = Start([.. cluster.Args(2, 100, 1000), "--experimental-initial-corrupt-check=false"], out var output);
        try
        {
            var endpoint = cluster.Endpoint(2);
            var served = await Eventually.ValueAsync(async () =>
            {
                var (code, stdout, _) = await Etcdctl.RunAsync(endpoint, "get", Key, "--consistency=s", "--print-value-only");
                return code == 0 && stdout.Length > 0 ? stdout.TrimEnd('\n') : null;
            }, () => $"no answer from the member started with the check off; its output:\n{Text(output)}");
            Assert.NotEqual(Value, served);
            Assert.Equal(Value.Length, served.Length);
        }
        finally
        {
            await StopAsync(process);
        }
    }

    [Fact]
    public async Task An_undamaged_member_passes_the_check_and_serves()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoints, "put", Key, Value);
        await Etcdctl.OkAsync(cluster.Endpoints, "compact", "2");
        await Eventually.TrueAsync(() => cluster.Host(2).Member.AppliedIndex >= cluster.Host(0).Member.CommitIndex, cluster.Describe);
        await cluster.StopMemberAsync(2);

        using var process = Start(cluster.Args(2, 100, 1000), out var output);
        try
        {
            await Eventually.TrueAsync(() => Text(output).Contains("initial corruption checking passed; no corruption", StringComparison.Ordinal),
                () => $"the member's output:\n{Text(output)}");
            Assert.Contains("2 of 2 peer(s) compared", Text(output), StringComparison.Ordinal);
            var endpoint = cluster.Endpoint(2);
            var served = await Eventually.ValueAsync(async () =>
            {
                var (code, stdout, _) = await Etcdctl.RunAsync(endpoint, "get", Key, "--print-value-only");
                return code == 0 && stdout.Length > 0 ? stdout : null;
            }, () => $"no answer from the restarted member; its output:\n{Text(output)}");
            Assert.Equal(Value + "\n", served);
        }
        finally
        {
            await StopAsync(process);
        }
    }

    [Fact]
    public async Task The_leaders_periodic_check_raises_the_CORRUPT_alarm_and_the_cluster_refuses_writes_as_etcd_does()
    {
        // The damaged member is let in (initial check off) so that only the periodic check can find it.
        await using var cluster = await TestCluster.StartAsync(extraArgs: ["--experimental-corrupt-check-time=200ms", "--experimental-initial-corrupt-check=false"]);
        var first = await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoints, "put", Key, Value);

        // The damaged member is a follower: the leader stays while it restarts. (Damaging the leader let the restarted
        // member win the election its peers had not held yet, and a damaged leader compares the others against itself.)
        var victim = (first + 1) % 3;
        await Eventually.TrueAsync(() => cluster.Host(victim).Member.AppliedIndex >= cluster.Host(first).Member.CommitIndex, cluster.Describe);
        var victimId = cluster.Host(victim).Member.MemberId;
        await cluster.StopMemberAsync(victim);
        FlipByteInValue(Path.Combine(cluster.DataDir(victim), "member", "snap", "db"));
        await cluster.RestartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        Assert.True(leader != victim, $"the damaged member became leader: {cluster.Describe()}");
        var other = 3 - leader - victim;

        var alarms = await Eventually.ValueAsync(async () =>
        {
            var (_, stdout, _) = await Etcdctl.RunAsync(cluster.Endpoint(leader), "alarm", "list");
            return stdout.Contains("alarm:CORRUPT", StringComparison.Ordinal) ? stdout : null;
        }, cluster.Describe);
        Assert.Equal($"memberID:{victimId} alarm:CORRUPT \n", alarms); // etcdctl 3.4 prints a space before the newline

        Assert.Equal("Error: etcdserver: corrupt cluster", await Etcdctl.FailsAsync(cluster.Endpoint(other), "put", "after-alarm", "x"));
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress($"http://{cluster.Endpoint(leader)}");
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => new RaftKv.Protocol.Etcd.KV.KVClient(channel)
            .PutAsync(new RaftKv.Protocol.Etcd.PutRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8("after-alarm"), Value = Google.Protobuf.ByteString.CopyFromUtf8("x") }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.DataLoss, refused.StatusCode);
        Assert.Equal("etcdserver: corrupt cluster", refused.Status.Detail);

        // Reads go on (etcd refuses only what goes through its applier), and Status reports the alarm.
        Assert.Equal(Value + "\n", await Etcdctl.OkAsync(cluster.Endpoint(leader), "get", Key, "--print-value-only"));
        var status = await new RaftKv.Protocol.Etcd.Maintenance.MaintenanceClient(channel).StatusAsync(new RaftKv.Protocol.Etcd.StatusRequest());
        Assert.Contains($"memberID:{victimId} alarm:CORRUPT ", status.Errors);
    }

    /// <summary>Flips one byte in the middle of every copy of <see cref="Value"/> in the file (LMDB may keep stale copies in free pages).</summary>
    private static string FlipByteInValue(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var needle = Encoding.ASCII.GetBytes(Value);
        var offsets = new List<int>();
        for (var at = bytes.AsSpan().IndexOf(needle); at >= 0;)
        {
            var flip = at + (needle.Length / 2);
            bytes[flip] ^= 0x20;
            offsets.Add(flip);
            var next = bytes.AsSpan(at + 1).IndexOf(needle);
            at = next < 0 ? -1 : at + 1 + next;
        }

        Assert.True(offsets.Count > 0, $"the value's bytes are not in {path} ({bytes.Length} bytes)");
        File.WriteAllBytes(path, bytes);
        return string.Join(", ", offsets);
    }

    private static Process Start(IEnumerable<string> args, out StringBuilder output)
    {
        var psi = new ProcessStartInfo(Program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        var sink = new StringBuilder();
        output = sink;
        process.OutputDataReceived += (_, e) =>
        {
            lock (sink)
            {
                sink.AppendLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            lock (sink)
            {
                sink.AppendLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunToExitAsync(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Program);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var (code, stdout, stderr) = await ChildProcess.RunAsync(psi, TimeSpan.FromSeconds(60));
        Assert.True(code is not null, $"the member neither refused nor stopped within 60 s; stdout so far: {stdout}");
        return (code.Value, stdout, stderr);
    }

    private static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
    }
}
