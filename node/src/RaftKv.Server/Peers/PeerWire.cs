using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using RaftKv.Server.Observability;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>
/// The peer wire: Raft messages on one long-lived connection per sender and receiver, served on the peer port next to
/// the gRPC services (told apart by the first bytes), with nothing between the socket (or TLS) and the member but a
/// length prefix. It replaces the gRPC <c>Peer.Stream</c> call for Raft messages, which paid for HTTP/2 framing, flow
/// control and the client's writer task on every message (see bench/results/loadgen-findings.md).
/// <para>Protocol (version 1), all integers big-endian:</para>
/// <list type="number">
/// <item>The sender connects (TLS first for https:// peer URLs) and writes <see cref="Preface"/>, then frames: a 4-byte
/// length and a <c>MessageBatch</c> of that many bytes. The first batch (the hello) may be empty; every batch carries
/// the cluster, sender and receiver, which the receiver checks.</item>
/// <item>The receiver answers the preface with <see cref="Preface"/> and the hello with a status frame: a 4-byte length,
/// a code (0 accepted, 1 refused) and a UTF-8 reason. It sends a refusal before it closes a connection for bad input
/// (another cluster, another member, an undecodable message, a frame over its limit); nothing else after the answer.</item>
/// <item>A member that answers anything else (an older version's HTTP/2 GOAWAY), or over TLS closes the connection
/// without a byte once the handshake is done, does not speak the wire: the sender falls back to the gRPC stream. A
/// cleartext connection closed without a byte is a failed connection (a relay whose member is not listening yet).</item>
/// </list>
/// </summary>
internal static class PeerWire
{
    /// <summary>First bytes of a wire connection, from both sides. Differs from HTTP/2's "PRI * HTTP/2.0" in the first byte.</summary>
    public static ReadOnlySpan<byte> Preface => "RAFTKV-PEERWIRE/1\n"u8;

    /// <summary>Default limit of one frame a receiver accepts. Senders cut batches far below it (<see cref="BatchBytes"/>).</summary>
    public const int DefaultMaxFrameBytes = 256 << 20;

    /// <summary>A sender closes a batch once it holds this many bytes (a single larger message still goes alone).</summary>
    public const int BatchBytes = 4 << 20;

    public const byte Accepted = 0;

    public const byte Refused = 1;

    private const int MaxStatusBytes = 64 << 10;

    /// <summary>
    /// Takes the next frame off <paramref name="buffer"/>: false when it is not complete yet.
    /// </summary>
    /// <exception cref="PeerWireException">The frame announces more than <paramref name="maxFrameBytes"/>.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameBytes, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> head = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(head);
        var length = BinaryPrimitives.ReadUInt32BigEndian(head);
        if (length > (uint)maxFrameBytes)
        {
            throw new PeerWireException(
                $"frame of {length} bytes is larger than this member's limit of {maxFrameBytes} bytes; the sender must split its batches (is it a newer version with a larger limit?)");
        }

        if (buffer.Length < 4 + length)
        {
            return false;
        }

        payload = buffer.Slice(4, length);
        buffer = buffer.Slice(4 + length);
        return true;
    }

    /// <summary>Writes a length-prefixed <paramref name="batch"/> into <paramref name="buffer"/> (grown as needed); returns the frame's length.</summary>
    public static int Frame(Wire.MessageBatch batch, ref byte[] buffer)
    {
        var size = batch.CalculateSize();
        if (buffer.Length < 4 + size)
        {
            buffer = new byte[Math.Max(4 + size, buffer.Length * 2)];
        }

        BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)size);
        batch.WriteTo(buffer.AsSpan(4, size));
        return 4 + size;
    }

    public static byte[] StatusFrame(byte code, string reason)
    {
        var text = Encoding.UTF8.GetBytes(reason);
        var frame = new byte[5 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(1 + text.Length));
        frame[4] = code;
        text.CopyTo(frame, 5);
        return frame;
    }

    /// <summary>Reads one status frame from the receiver: (code, reason), or null when the connection ended first.</summary>
    /// <exception cref="PeerWireException">The frame is malformed.</exception>
    public static async Task<(byte Code, string Reason)?> ReadStatusAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new byte[4];
        if (await stream.ReadAtLeastAsync(head, 4, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < 4)
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(head);
        if (length is 0 or > MaxStatusBytes)
        {
            throw new PeerWireException($"the peer sent a status frame of {length} bytes (expected 1 to {MaxStatusBytes})");
        }

        var body = new byte[length];
        if (await stream.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < body.Length)
        {
            return null;
        }

        return (body[0], Encoding.UTF8.GetString(body, 1, body.Length - 1));
    }

    /// <summary>
    /// Opens a wire connection to <paramref name="url"/> (TLS for https://, never cleartext then) and says hello with
    /// <paramref name="hello"/>. Returns the stream once the receiver accepted, or null when it does not speak the wire.
    /// </summary>
    /// <exception cref="PeerWireException">The receiver refused (its reason in the message).</exception>
    /// <exception cref="IOException">The connection failed or ended during the handshake.</exception>
    /// <exception cref="SocketException">Connecting failed.</exception>
    public static async Task<Stream?> ConnectAsync(Uri url, HostsFileResolver names, MemberTls? tls, Wire.MessageBatch hello, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var ct = deadline.Token;
        Stream? stream = null;
        try
        {
            stream = await names.ConnectAsync(url.IdnHost, url.Port, ct).ConfigureAwait(false);
            if (url.Scheme == Uri.UriSchemeHttps)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                var options = MemberTls.ForUrl(tls, url);
                options.TargetHost = url.IdnHost;
                await ssl.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
            }

            var frame = new byte[64];
            var length = Frame(hello, ref frame);
            var first = new byte[Preface.Length + length];
            Preface.CopyTo(first);
            frame.AsSpan(0, length).CopyTo(first.AsSpan(Preface.Length));
            await stream.WriteAsync(first, ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);

            var answer = new byte[Preface.Length];
            var read = await stream.ReadAtLeastAsync(answer, answer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (read == 0 && stream is not SslStream)
            {
                // Not an older member: on cleartext its HTTP/2 listener answers our preface with a GOAWAY. A proxy or
                // relay in the way (a sidecar, a port forward) accepts and closes like this while the member behind it
                // is not listening yet, so this is a failed connection, retried with backoff.
                throw new IOException("the peer closed the connection without answering the wire preface (is it still starting behind a proxy?)");
            }

            if (read == 0 || !answer.AsSpan(0, read).SequenceEqual(Preface[..read]))
            {
                // An older member: HTTP/2 bytes (a GOAWAY), or, over TLS, a close without a word right after the TLS
                // handshake (its HTTP/2-only listener closes a connection that did not negotiate h2 by ALPN).
                await stream.DisposeAsync().ConfigureAwait(false);
                return null;
            }

            if (read < answer.Length)
            {
                throw new IOException("the peer closed the connection in the middle of its wire preface");
            }

            var status = await ReadStatusAsync(stream, ct).ConfigureAwait(false)
                ?? throw new IOException("the peer closed the connection before answering the hello");
            if (status.Code != Accepted)
            {
                throw new PeerWireException(status.Reason);
            }

            var accepted = stream;
            stream = null;
            return accepted;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"no wire handshake with {url} within {timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}

/// <summary>A wire connection was refused or broke the protocol; the message says why.</summary>
internal sealed class PeerWireException : Exception
{
    public PeerWireException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// The receiving side of <see cref="PeerWire"/>: a Kestrel connection middleware on the peer listeners (after TLS when
/// the peer URLs are https://). Connections that start with the wire preface are served here, every other connection
/// goes on to HTTP/2 (gRPC: snapshots, probes, the older members' streams). Batches are decoded on the connection's
/// reader and handed to the member as they arrive.
/// </summary>
internal sealed partial class PeerWireServer
{
    private readonly IPeerInbox _inbox;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly int _maxFrameBytes;

    public PeerWireServer(IPeerInbox inbox, NodeMetrics metrics, ILogger logger, CancellationToken stopping, int maxFrameBytes = PeerWire.DefaultMaxFrameBytes)
    {
        _inbox = inbox;
        _metrics = metrics;
        _logger = logger;
        _stopping = stopping;
        _maxFrameBytes = maxFrameBytes;
    }

    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        if (await StartsWithPrefaceAsync(connection.Transport.Input, connection.ConnectionClosed).ConfigureAwait(false))
        {
            await ServeAsync(connection).ConfigureAwait(false);
            return;
        }

        await next(connection).ConfigureAwait(false);
    };

    /// <summary>Consumes the preface when the connection starts with it; otherwise consumes nothing.</summary>
    private static async Task<bool> StartsWithPrefaceAsync(PipeReader input, CancellationToken cancellationToken)
    {
        var preface = PeerWire.Preface.Length;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }

            var buffer = result.Buffer;
            var length = (int)Math.Min(buffer.Length, preface);
            var matches = MatchesPreface(buffer.Slice(0, length));
            if (matches && length == preface)
            {
                input.AdvanceTo(buffer.GetPosition(preface));
                return true;
            }

            if (!matches || result.IsCompleted)
            {
                input.AdvanceTo(buffer.Start); // consume nothing: HTTP/2 reads it all again
                return false;
            }

            input.AdvanceTo(buffer.Start, buffer.End); // need more bytes
        }
    }

    private static bool MatchesPreface(ReadOnlySequence<byte> head)
    {
        Span<byte> copy = stackalloc byte[PeerWire.Preface.Length];
        head.CopyTo(copy);
        return copy[..(int)head.Length].SequenceEqual(PeerWire.Preface[..(int)head.Length]);
    }

    private async Task ServeAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        var closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closeRequested, _stopping);
        var ct = linked.Token;
        Prometheus.Counter.Child? received = null;
        ulong from = 0;
        try
        {
            await output.WriteAsync(PeerWire.Preface.ToArray(), ct).ConfigureAwait(false);
            var greeted = false;
            while (true)
            {
                var result = await input.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (PeerWire.TryReadFrame(ref buffer, _maxFrameBytes, out var payload))
                    {
                        var batch = Parse(payload, from);
                        Check(batch);
                        if (received is null || batch.From != from)
                        {
                            from = batch.From;
                            received = _metrics.PeerReceivedBytes.WithLabels(NodeMetrics.IdLabel(from));
                        }

                        received.Inc(payload.Length + 4);
                        if (!greeted)
                        {
                            greeted = true;
                            await output.WriteAsync(PeerWire.StatusFrame(PeerWire.Accepted, ""), ct).ConfigureAwait(false);
                            LogAccepted(_logger, from, connection.RemoteEndPoint);
                        }

                        foreach (var m in batch.Messages)
                        {
                            _inbox.Deliver(PeerCodec.Decode(m));
                        }
                    }
                }
                finally
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted)
                {
                    return; // the sender hung up
                }
            }
        }
        catch (Exception e) when (e is PeerWireException or InvalidDataException)
        {
            if (from != 0)
            {
                _metrics.PeerReceivedFailures.WithLabels(NodeMetrics.IdLabel(from)).Inc();
            }

            LogRefused(_logger, connection.RemoteEndPoint, e.Message);
            try
            {
                await output.WriteAsync(PeerWire.StatusFrame(PeerWire.Refused, e.Message), ct).ConfigureAwait(false);
            }
            catch (Exception w) when (w is OperationCanceledException or IOException or ConnectionResetException)
            {
                // the sender is gone already
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
        {
            // closed by either side, or the member is stopping
        }
        finally
        {
            await input.CompleteAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static Wire.MessageBatch Parse(ReadOnlySequence<byte> payload, ulong from)
    {
        try
        {
            return Wire.MessageBatch.Parser.ParseFrom(payload);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new PeerWireException($"undecodable message batch from member {from:x}: {e.Message}");
        }
    }

    private void Check(Wire.MessageBatch batch)
    {
        if (batch.ClusterId != _inbox.ClusterId)
        {
            throw new PeerWireException(
                $"request cluster ID mismatch: member {batch.From:x} belongs to cluster {batch.ClusterId:x}, this member to cluster {_inbox.ClusterId:x}");
        }

        if (batch.To != _inbox.MemberId)
        {
            throw new PeerWireException(
                $"member {batch.From:x} sent to member {batch.To:x}, but this is member {_inbox.MemberId:x}; check --initial-cluster on both members");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "peer {Peer:x} connected over the peer wire from {Remote}")]
    private static partial void LogAccepted(ILogger logger, ulong peer, System.Net.EndPoint? remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused peer wire connection from {Remote}: {Reason}")]
    private static partial void LogRefused(ILogger logger, System.Net.EndPoint? remote, string reason);
}
