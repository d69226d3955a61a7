using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using RaftKv.Raft;
using RaftKv.Server.Configuration;
using RaftKv.Server.Peers;
using RaftKv.Server.Tests.Cluster;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Tests.Peers;

/// <summary>The peer wire: framing as a raw client sees it, fault hooks on it, and members of an older version (gRPC only).</summary>
public sealed class PeerWireTests
{
    private static Message Heartbeat(ulong from, ulong to, ulong commit) =>
        new() { Type = MessageType.MsgHeartbeat, From = from, To = to, Term = 1, Commit = commit };

    private static byte[] Frame(Wire.MessageBatch batch)
    {
        var body = batch.ToByteArray();
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame, 4);
        return frame;
    }

    private static Wire.MessageBatch Batch(ulong clusterId, ulong from, ulong to, params ulong[] commits)
    {
        var batch = new Wire.MessageBatch { ClusterId = clusterId, From = from, To = to };
        batch.Messages.AddRange(commits.Select(c => PeerCodec.Encode(Heartbeat(from, to, c))));
        return batch;
    }

    /// <summary>A hand-made sender: connects, writes what the test says, reads the receiver's preface and status frames.</summary>
    private sealed class RawSender : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;

        private RawSender(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static async Task<RawSender> ConnectAsync(TestPeer peer)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, peer.Port));
            return new RawSender(socket);
        }

        /// <summary>Writes <paramref name="bytes"/> in pieces of <paramref name="piece"/> bytes, each a send of its own.</summary>
        public async Task WriteAsync(byte[] bytes, int piece = int.MaxValue)
        {
            for (var at = 0; at < bytes.Length; at += piece)
            {
                await _stream.WriteAsync(bytes.AsMemory(at, Math.Min(piece, bytes.Length - at)));
                await _stream.FlushAsync();
            }
        }

        public async Task<string> ReadPrefaceAsync()
        {
            var buffer = new byte[PeerWire.Preface.Length];
            await _stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            return Encoding.ASCII.GetString(buffer);
        }

        public async Task<(byte Code, string Reason)?> ReadStatusAsync() =>
            await PeerWire.ReadStatusAsync(_stream, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        /// <summary>Writes the preface and <paramref name="afterPreface"/>, then reads the receiver's preface.</summary>
        public async Task StartAsync(byte[] afterPreface)
        {
            await WriteAsync([.. PeerWire.Preface, .. afterPreface]);
            await ReadPrefaceAsync();
        }

        /// <summary>Reads a status frame that must be a refusal whose reason contains <paramref name="reason"/>.</summary>
        public async Task ExpectRefusalAsync(string reason)
        {
            var status = await ReadStatusAsync();
            Assert.NotNull(status);
            Assert.Equal(PeerWire.Refused, status.Value.Code);
            Assert.Contains(reason, status.Value.Reason, StringComparison.Ordinal);
        }

        public async ValueTask DisposeAsync()
        {
            await _stream.DisposeAsync();
            _socket.Dispose();
        }
    }

    [Fact]
    public async Task Frames_cut_into_pieces_or_sent_together_arrive_whole_and_in_order()
    {
        await using var b = await TestPeer.StartAsync(2);
        await using var raw = await RawSender.ConnectAsync(b);

        // The preface and the hello a byte at a time, then two batches in one write cut at odd places.
        byte[] hello = [.. PeerWire.Preface, .. Frame(Batch(0xc1, 1, 2))];
        await raw.WriteAsync(hello, piece: 1);
        Assert.Equal(Encoding.ASCII.GetString(PeerWire.Preface), await raw.ReadPrefaceAsync());
        Assert.Equal((PeerWire.Accepted, ""), await raw.ReadStatusAsync());

        byte[] two = [.. Frame(Batch(0xc1, 1, 2, 1, 2, 3)), .. Frame(Batch(0xc1, 1, 2, 4))];
        await raw.WriteAsync(two, piece: 7);
        await raw.WriteAsync(Frame(Batch(0xc1, 1, 2, 5, 6)));

        await Eventually.TrueAsync(() => b.Received.Count == 6, b.Describe);
        Assert.Equal([1UL, 2, 3, 4, 5, 6], b.Received.Select(m => m.Commit));
    }

    [Fact]
    public async Task A_frame_over_the_limit_is_refused_with_a_reason_and_the_connection_closed()
    {
        await using var b = await TestPeer.StartAsync(2, maxFrameBytes: 1024);
        await using var raw = await RawSender.ConnectAsync(b);
        await raw.StartAsync(Frame(Batch(0xc1, 1, 2)));
        Assert.Equal((PeerWire.Accepted, ""), await raw.ReadStatusAsync());

        var head = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(head, 5000);
        await raw.WriteAsync(head);

        await raw.ExpectRefusalAsync("frame of 5000 bytes is larger than this member's limit of 1024 bytes");
        Assert.Null(await raw.ReadStatusAsync()); // closed after the refusal
        Assert.Empty(b.Received);
    }

    [Fact]
    public async Task A_hello_from_another_cluster_or_for_another_member_is_refused_with_the_reason()
    {
        await using var b = await TestPeer.StartAsync(2);
        await using (var other = await RawSender.ConnectAsync(b))
        {
            await other.StartAsync(Frame(Batch(0xbad, 1, 2, 1)));
            await other.ExpectRefusalAsync("request cluster ID mismatch: member 1 belongs to cluster bad, this member to cluster c1");
        }

        await using (var misrouted = await RawSender.ConnectAsync(b))
        {
            await misrouted.StartAsync(Frame(Batch(0xc1, 1, 3, 1)));
            await misrouted.ExpectRefusalAsync("sent to member 3, but this is member 2");
        }

        Assert.Empty(b.Received);
    }

    [Fact]
    public async Task Gibberish_after_the_preface_is_refused_and_nothing_delivered()
    {
        await using var b = await TestPeer.StartAsync(2);
        await using var raw = await RawSender.ConnectAsync(b);
        byte[] junk = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        await raw.StartAsync(junk);

        await raw.ExpectRefusalAsync("undecodable message batch");
        Assert.Empty(b.Received);
    }

    [Fact]
    public async Task Transport_uses_the_wire_and_reconnects_on_it_after_the_peer_restarts()
    {
        await using var a = await TestPeer.StartAsync(1);
        await using var b = await TestPeer.StartAsync(2);
        a.Transport.AddOrUpdatePeer(2, [b.Url]);
        a.Transport.Send([Heartbeat(1, 2, 1)]);
        await Eventually.TrueAsync(() => b.Received.Count == 1 && a.LinkTo(2) == PeerLink.Wire, () => a.Describe() + "; " + b.Describe());

        await b.StopServingAsync();
        await Eventually.TrueAsync(() => !a.Transport.Describe().Single().Connected, a.Describe);
        Assert.Contains(2UL, a.Unreachable);
        await b.RestartServingAsync();

        await Eventually.TrueAsync(() =>
        {
            a.Transport.Send([Heartbeat(1, 2, 2)]);
            return b.Received.Any(m => m.Commit == 2);
        }, b.Describe);
        Assert.Equal(PeerLink.Wire, a.LinkTo(2));
    }

    [Fact]
    public async Task The_delay_hook_holds_messages_back_on_the_wire()
    {
        await using var a = await TestPeer.StartAsync(1);
        await using var b = await TestPeer.StartAsync(2);
        a.Transport.AddOrUpdatePeer(2, [b.Url]);
        a.Transport.Send([Heartbeat(1, 2, 1)]);
        await Eventually.TrueAsync(() => b.Received.Count == 1 && a.LinkTo(2) == PeerLink.Wire, b.Describe);

        var delay = TimeSpan.FromMilliseconds(300);
        a.Faults.Set(2, new PeerFault(delay, 0, false));
        var sent = Stopwatch.GetTimestamp();
        a.Transport.Send([Heartbeat(1, 2, 2)]);
        await Eventually.TrueAsync(() => b.Received.Count == 2, b.Describe);
        var took = Stopwatch.GetElapsedTime(sent);

        Assert.True(took >= delay, $"the delayed message arrived after {took.TotalMilliseconds:0} ms, before the {delay.TotalMilliseconds} ms delay");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_member_of_an_older_version_gets_its_messages_on_the_gRPC_stream_and_the_wire_is_used_once_it_upgrades(bool tls)
    {
        // Over cleartext an older member answers the wire preface with HTTP/2 bytes; over TLS it closes without a word.
        using var certificates = tls ? new TestCertificates() : null;
        var memberTls = certificates is null ? null : MemberTls.Load(
            new TlsFiles { CertFile = certificates.ServerCert, KeyFile = certificates.ServerKey, TrustedCaFile = certificates.CaCert, ClientCertAuth = true }, "peer-", dataDir: "", hosts: []);
        await using var upgraded = await TestPeer.StartAsync(1, tls: memberTls);
        await using var old = await TestPeer.StartAsync(2, wire: false, tls: memberTls);
        upgraded.Transport.AddOrUpdatePeer(2, [old.Url]);
        old.Transport.AddOrUpdatePeer(1, [upgraded.Url]);

        // Both ways: the new member falls back to the old one's gRPC stream; the old member's stream is served as before.
        upgraded.Transport.Send([.. Enumerable.Range(1, 100).Select(i => Heartbeat(1, 2, (ulong)i))]);
        old.Transport.Send([Heartbeat(2, 1, 7)]);
        await Eventually.TrueAsync(() => old.Received.Count == 100 && upgraded.Received.Count == 1, () => upgraded.Describe() + "; " + old.Describe());
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (ulong)i), old.Received.Select(m => m.Commit));
        Assert.Equal(PeerLink.Grpc, upgraded.LinkTo(2));
        Assert.Equal(PeerLink.Grpc, old.LinkTo(1));

        // The old member is upgraded in place (same port): the new one moves to the wire after its retry interval.
        await old.StopServingAsync();
        await old.UpgradeAndRestartServingAsync();
        await Eventually.TrueAsync(() =>
        {
            upgraded.Transport.Send([Heartbeat(1, 2, 1000)]);
            return upgraded.LinkTo(2) == PeerLink.Wire && old.Received.Any(m => m.Commit == 1000);
        }, () => upgraded.Describe() + "; " + old.Describe());
    }

    [Fact]
    public async Task A_relay_that_closes_connections_until_its_member_listens_delays_the_wire_but_does_not_give_it_up()
    {
        // A proxy in front of a member that is not listening yet (a sidecar, a port forward, LocalKube's pod links: the
        // relay used here) accepts and closes. Taken for an older member, the peer would get the gRPC stream for the whole
        // retry interval.
        await using var a = await TestPeer.StartAsync(1, legacyRetry: TimeSpan.FromHours(1));
        await using var b = await TestPeer.StartAsync(2);
        var listening = false;
        await using var relay = new LocalKube.Runtime.TcpRelay(new IPEndPoint(IPAddress.Loopback, 0),
            () => Volatile.Read(ref listening) ? new IPEndPoint(IPAddress.Loopback, b.Port) : null, () => LocalKube.Runtime.LinkFaults.None, new Random(1));
        a.Transport.AddOrUpdatePeer(2, [new Uri($"http://127.0.0.1:{relay.Endpoint.Port}")]);
        a.Transport.Send([Heartbeat(1, 2, 1)]);
        await Eventually.TrueAsync(() => a.Unreachable.Count >= 3, () => $"{a.Unreachable.Count} failed connections; {a.Describe()}");
        Assert.Empty(b.Received);

        Volatile.Write(ref listening, true);
        await Eventually.TrueAsync(() =>
        {
            a.Transport.Send([Heartbeat(1, 2, 2)]);
            return b.Received.Any(m => m.Commit == 2);
        }, () => a.Describe() + "; " + b.Describe());
        Assert.Equal(PeerLink.Wire, a.LinkTo(2));
    }
}
