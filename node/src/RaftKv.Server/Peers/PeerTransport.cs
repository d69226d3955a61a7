using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using RaftKv.Raft;
using RaftKv.Server.Observability;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>What the transport reports back to the member that owns it.</summary>
internal interface IPeerTransportEvents
{
    /// <summary>A message to <paramref name="peer"/> could not be delivered (connection down, queue full).</summary>
    void ReportUnreachable(ulong peer);

    /// <summary>The snapshot of a MsgSnap to <paramref name="peer"/> was delivered or failed.</summary>
    void ReportSnapshot(ulong peer, SnapshotStatus status);
}

/// <summary>Tunables of the peer transport.</summary>
internal sealed record PeerTransportOptions
{
    public required ulong ClusterId { get; init; }

    public required ulong MemberId { get; init; }

    /// <summary>Interval between RTT probes to each peer.</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Probes in this long after the transport starts are not recorded: a fresh process is compiling its code paths
    /// and, in a new cluster, competing with its peers doing the same, so its first seconds' round trips measure the
    /// start-up, not the network, and a p99 over the few samples of those seconds is their slowest.
    /// </summary>
    public TimeSpan ProbeWarmUp { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>First wait after a failed connection; doubles up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Messages queued per peer; beyond it messages are dropped and the peer reported unreachable (as etcd does).</summary>
    public int QueueCapacity { get; init; } = 4096;

    public int MaxBatchMessages { get; init; } = 1024;

    public int SnapshotChunkBytes { get; init; } = 1 << 20;

    /// <summary>How peer host names are resolved (an extra hosts file before DNS, see <see cref="HostsFileResolver"/>).</summary>
    public HostsFileResolver Names { get; init; } = HostsFileResolver.Process;

    /// <summary>TLS for https:// peer URLs (--peer-cert-file and friends); null when the peer side has none.</summary>
    public MemberTls? Tls { get; init; }

    /// <summary>Raft messages over the peer wire (<see cref="PeerWire"/>); false: the gRPC stream only (as older versions).</summary>
    public bool Wire { get; init; } = true;

    /// <summary>How long to wait for a peer's answer to the wire hello.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>After a peer turned out not to speak the wire, its gRPC stream is used this long before the wire is tried again.</summary>
    public TimeSpan LegacyRetry { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Outbound half of the peer transport: per peer, one long-lived connection that carries batches of Raft messages
/// (everything queued when the connection is ready to write goes in one batch): the peer wire (<see cref="PeerWire"/>:
/// length-prefixed batches on a plain TCP or TLS connection to the peer port), or with a member that does not speak it
/// (an older version) a client-streaming gRPC call. Snapshots go on a gRPC call of their own, and RTT probes are gRPC
/// calls too. Connections are re-established with exponential backoff. Raft tolerates loss, so a message that cannot be
/// sent is dropped and the peer reported unreachable.
/// </summary>
internal sealed partial class PeerTransport : IAsyncDisposable
{
    private readonly PeerTransportOptions _options;
    private readonly IPeerTransportEvents _events;
    private readonly NodeMetrics _metrics;
    private readonly PeerFaults _faults;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<ulong, PeerSender> _peers = new();
    private readonly CancellationTokenSource _stopping = new();

    public PeerTransport(PeerTransportOptions options, IPeerTransportEvents events, NodeMetrics metrics, PeerFaults faults, TimeProvider time, ILogger logger)
    {
        _options = options;
        _events = events;
        _metrics = metrics;
        _faults = faults;
        _time = time;
        _started = time.GetTimestamp();
        _logger = logger;
    }

    public PeerFaults Faults => _faults;

    /// <summary>Starts talking to <paramref name="id"/> at <paramref name="urls"/>; replaces the URLs if the peer is known.</summary>
    public void AddOrUpdatePeer(ulong id, IReadOnlyList<Uri> urls)
    {
        if (id == _options.MemberId || urls.Count == 0)
        {
            return;
        }

        if (_peers.TryGetValue(id, out var existing))
        {
            existing.SetUrls(urls);
            return;
        }

        var sender = new PeerSender(this, id, urls);
        if (_peers.TryAdd(id, sender))
        {
            sender.Start();
        }
    }

    /// <summary>Stops sending to a member removed from the cluster and drops its series from /metrics (dashboards
    /// would otherwise show a member that is gone, with its last figures, until this process restarts).</summary>
    public async Task RemovePeerAsync(ulong id)
    {
        await StopSenderAsync(id).ConfigureAwait(false);
        _metrics.ForgetPeer(id);
    }

    private async Task StopSenderAsync(ulong id)
    {
        if (_peers.TryRemove(id, out var sender))
        {
            await sender.DisposeAsync().ConfigureAwait(false);
        }
    }

    public IReadOnlyCollection<ulong> PeerIds => [.. _peers.Keys];

    /// <summary>Queues messages for their destinations; never blocks.</summary>
    public void Send(IReadOnlyList<Message> messages)
    {
        foreach (var m in messages)
        {
            if (!_peers.TryGetValue(m.To, out var sender))
            {
                LogUnknownPeer(_logger, m.Type, m.To);
                continue;
            }

            sender.Enqueue(m);
        }
    }

    /// <summary>
    /// Sends a MsgSnap with its store image on a call of its own (never blocks); the outcome goes to
    /// <see cref="IPeerTransportEvents.ReportSnapshot"/> and the image is released either way.
    /// </summary>
    public void SendSnapshot(Message message, SnapshotImage? image)
    {
        if (!_peers.TryGetValue(message.To, out var sender))
        {
            LogUnknownPeer(_logger, message.Type, message.To);
            image?.Release();
            _events.ReportSnapshot(message.To, SnapshotStatus.Failure);
            return;
        }

        sender.SendSnapshot(message, image);
    }

    /// <summary>RTT percentiles and connection state per peer.</summary>
    public IReadOnlyList<PeerState> Describe() =>
        [.. _peers.Values.OrderBy(p => p.Id).Select(p => new PeerState(p.Id, p.Link, p.Rtt.Summarize(), p.FailedProbes))];

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var id in _peers.Keys)
        {
            await StopSenderAsync(id).ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "dropped {Type} to unknown member {To}")]
    private static partial void LogUnknownPeer(ILogger logger, MessageType type, ulong to);

    [LoggerMessage(Level = LogLevel.Information, Message = "peer {Peer:x} connected to {Url} ({How})")]
    private static partial void LogConnected(ILogger logger, ulong peer, Uri url, string how);

    [LoggerMessage(Level = LogLevel.Information, Message = "peer {Peer:x} at {Url} does not speak the peer wire (an older version?); using its gRPC stream, trying the wire again in {RetrySeconds:0.###} s")]
    private static partial void LogLegacyPeer(ILogger logger, ulong peer, Uri url, double retrySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "peer {Peer:x} stream to {Url} failed; retrying in {BackoffSeconds:0.###} s: {Error}")]
    private static partial void LogStreamFailed(ILogger logger, ulong peer, Uri url, double backoffSeconds, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "dropped a batch of {Bytes} bytes to {Peer:x}: larger than the peer wire's frame limit of {Limit} bytes")]
    private static partial void LogBatchTooLarge(ILogger logger, ulong peer, int bytes, int limit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "dropped internal Raft message to {Peer:x} since its sending buffer is full")]
    private static partial void LogQueueFull(ILogger logger, ulong peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "sent snapshot at index {Index} to {Peer:x} ({Bytes} bytes of store image)")]
    private static partial void LogSnapshotSent(ILogger logger, ulong peer, ulong index, ulong bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "sending snapshot at index {Index} to {Peer:x} failed: {Error}")]
    private static partial void LogSnapshotFailed(ILogger logger, ulong peer, ulong index, string error);

    /// <summary>Connection to one peer: its queue, stream loop, probe loop.</summary>
    private sealed class PeerSender : IAsyncDisposable
    {
        private readonly PeerTransport _owner;
        private readonly Channel<(Message Message, long Enqueued)> _queue;
        private readonly CancellationTokenSource _stop;
        private readonly string _label;
        private readonly Prometheus.Counter.Child _sentBytes;
        private readonly Prometheus.Histogram.Child _roundTrips;
        private readonly Lock _channelLock = new();
        private IReadOnlyList<Uri> _urls;
        private int _urlIndex;
        private GrpcChannel? _channel;
        private Uri? _channelUrl;
        private Task _streamLoop = Task.CompletedTask;
        private Task _probeLoop = Task.CompletedTask;
        private ulong _probeSequence;
        private volatile PeerLink _link; // None while not connected
        private long _failedProbes;
        private TimeSpan _backoff;
        private long _legacyUntil;

        // A batch whose write failed: it goes out first on the next connection (the peer may get it twice, which Raft
        // tolerates), so a broken connection does not silently lose, say, a proposal forwarded to the leader.
        private Wire.MessageBatch? _unsent;

        public PeerSender(PeerTransport owner, ulong id, IReadOnlyList<Uri> urls)
        {
            _owner = owner;
            Id = id;
            _urls = urls;
            Rtt = new LatencyWindow(TimeSpan.FromMinutes(1), owner._time);
            _label = NodeMetrics.IdLabel(id);
            _sentBytes = owner._metrics.PeerSentBytes.WithLabels(_label); // looked up once, not per batch
            _roundTrips = owner._metrics.PeerRoundTrip.WithLabels(_label); // published (empty) from now, filled after the warm-up
            _stop = CancellationTokenSource.CreateLinkedTokenSource(owner._stopping.Token);
            _queue = Channel.CreateBounded<(Message, long)>(new BoundedChannelOptions(owner._options.QueueCapacity)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
        }

        public ulong Id { get; }

        public long FailedProbes => Interlocked.Read(ref _failedProbes);

        public PeerLink Link => _link;

        /// <summary>Round trips of the last minute (at most 1024): tuning follows a network that got faster within a minute.</summary>
        public LatencyWindow Rtt { get; }

        public void Start()
        {
            _streamLoop = Task.Run(StreamLoopAsync);
            _probeLoop = Task.Run(ProbeLoopAsync);
        }

        public void SetUrls(IReadOnlyList<Uri> urls) => Volatile.Write(ref _urls, urls);

        public void Enqueue(Message m)
        {
            if (m.Type == MessageType.MsgSnap)
            {
                SendSnapshot(m, null);
                return;
            }

            if (_owner._faults.ShouldDrop(Id))
            {
                return; // test hook: lost or cut
            }

            if (!_queue.Writer.TryWrite((m, _owner._time.GetTimestamp())))
            {
                LogQueueFull(_owner._logger, Id);
                _owner._metrics.PeerSentFailures.WithLabels(_label).Inc();
                _owner._events.ReportUnreachable(Id);
            }
        }

        public void SendSnapshot(Message m, SnapshotImage? image) => _ = Task.Run(() => SendSnapshotAsync(m, image));

        private Wire.Peer.PeerClient Client(out Uri url)
        {
            lock (_channelLock)
            {
                return ClientLocked(out url);
            }
        }

        private Wire.Peer.PeerClient ClientLocked(out Uri url)
        {
            var urls = Volatile.Read(ref _urls);
            url = urls[_urlIndex % urls.Count];
            if (_channel is null || _channelUrl != url)
            {
                _channel?.Dispose();
                _channel = GrpcChannel.ForAddress(url, new GrpcChannelOptions
                {
                    HttpHandler = new SocketsHttpHandler
                    {
                        EnableMultipleHttp2Connections = true,
                        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                        KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                        KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                        ConnectTimeout = TimeSpan.FromSeconds(3),
                        ConnectCallback = _owner._options.Names.ConnectAsync,
                        SslOptions = MemberTls.ForUrl(_owner._options.Tls, url),
                    },
                    MaxSendMessageSize = null,
                    MaxReceiveMessageSize = null,
                });
                _channelUrl = url;
            }

            return new Wire.Peer.PeerClient(_channel);
        }

        private async Task StreamLoopAsync()
        {
            var ct = _stop.Token;
            var options = _owner._options;
            _backoff = options.MinBackoff;
            while (!ct.IsCancellationRequested)
            {
                var client = Client(out var url);
                try
                {
                    if (WireDue())
                    {
                        var wire = await PeerWire.ConnectAsync(url, options.Names, options.Tls, Batch(), options.HandshakeTimeout, ct).ConfigureAwait(false);
                        if (wire is not null)
                        {
                            await RunWireAsync(wire, url, ct).ConfigureAwait(false);
                            continue;
                        }

                        // An older member (gRPC streams only), say during a rolling upgrade: its stream for a while, then the wire again.
                        _legacyUntil = _owner._time.GetTimestamp() + (long)(options.LegacyRetry.TotalSeconds * _owner._time.TimestampFrequency);
                        LogLegacyPeer(_owner._logger, Id, url, options.LegacyRetry.TotalSeconds);
                    }

                    await RunGrpcAsync(client, url, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    _link = PeerLink.None;
                    Interlocked.Increment(ref _urlIndex);
                    _owner._metrics.PeerSentFailures.WithLabels(_label).Inc();
                    _owner._events.ReportUnreachable(Id);
                    LogStreamFailed(_owner._logger, Id, url, _backoff.TotalSeconds, e.Message);
                    try
                    {
                        await Task.Delay(_backoff, _owner._time, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, options.MaxBackoff.Ticks));
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    return; // stopping
                }
            }
        }

        /// <summary>The wire is on and the peer was not found to be an older member lately.</summary>
        private bool WireDue() => _owner._options.Wire && _owner._time.GetTimestamp() >= _legacyUntil;

        private void MarkConnected(Uri url, PeerLink link)
        {
            _link = link;
            LogConnected(_owner._logger, Id, url, link == PeerLink.Wire ? "peer wire" : "gRPC stream");
            _backoff = _owner._options.MinBackoff;
        }

        /// <summary>Sends batches on an accepted wire connection until it fails (never returns otherwise, except when stopping).</summary>
        private async Task RunWireAsync(Stream stream, Uri url, CancellationToken ct)
        {
            await using var owned = stream.ConfigureAwait(false);
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var watch = WatchWireAsync(stream, connection);
            MarkConnected(url, PeerLink.Wire);
            var reader = _queue.Reader;
            var buffer = new byte[16 << 10];
            try
            {
                if (_unsent is { } unsent)
                {
                    var n = PeerWire.Frame(unsent, ref buffer);
                    await stream.WriteAsync(buffer.AsMemory(0, n), connection.Token).ConfigureAwait(false);
                    _unsent = null;
                }

                while (true)
                {
                    if (!reader.TryPeek(out _))
                    {
                        if (!await reader.WaitToReadAsync(connection.Token).ConfigureAwait(false))
                        {
                            return; // the transport is being disposed
                        }

                        continue;
                    }

                    var batch = Batch();
                    await FillBatchAsync(batch, connection.Token).ConfigureAwait(false);
                    if (batch.Messages.Count == 0)
                    {
                        continue;
                    }

                    var length = PeerWire.Frame(batch, ref buffer);
                    if (length - 4 > PeerWire.DefaultMaxFrameBytes)
                    {
                        // Only a single message this large (Raft cuts appends at 1 MiB); resending it would be refused forever.
                        LogBatchTooLarge(_owner._logger, Id, length - 4, PeerWire.DefaultMaxFrameBytes);
                        _owner._metrics.PeerSentFailures.WithLabels(_label).Inc();
                        _owner._events.ReportUnreachable(Id);
                        continue;
                    }

                    _unsent = batch;
                    await stream.WriteAsync(buffer.AsMemory(0, length), connection.Token).ConfigureAwait(false);
                    _unsent = null;
                    _sentBytes.Inc(length);
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is OperationCanceledException or IOException or ObjectDisposedException)
            {
                await connection.CancelAsync().ConfigureAwait(false);
                var reason = await watch.ConfigureAwait(false);
                throw new IOException(e is OperationCanceledException ? reason : $"{e.Message} ({reason})", e);
            }
            finally
            {
                await connection.CancelAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Reads what the receiver says after the hello (only a refusal before it closes); cancels <paramref name="connection"/> then.</summary>
        private static async Task<string> WatchWireAsync(Stream stream, CancellationTokenSource connection)
        {
            try
            {
                var status = await PeerWire.ReadStatusAsync(stream, connection.Token).ConfigureAwait(false);
                return status is { } s ? "the peer refused the wire connection: " + s.Reason : "the peer closed the wire connection";
            }
            catch (Exception e) when (e is IOException or PeerWireException or ObjectDisposedException)
            {
                return "wire connection failed: " + e.Message;
            }
            catch (OperationCanceledException)
            {
                return "wire connection closed";
            }
            finally
            {
                await connection.CancelAsync().ConfigureAwait(false);
            }
        }

        /// <summary>
        /// Moves what is queued (up to <see cref="PeerTransportOptions.MaxBatchMessages"/> messages or about
        /// <see cref="PeerWire.BatchBytes"/>) into <paramref name="batch"/>, holding messages back as the delay test hook asks.
        /// </summary>
        private async Task FillBatchAsync(Wire.MessageBatch batch, CancellationToken ct)
        {
            var reader = _queue.Reader;
            var bytes = 0;
            while (batch.Messages.Count < _owner._options.MaxBatchMessages && bytes < PeerWire.BatchBytes && reader.TryPeek(out var item))
            {
                var fault = _owner._faults.Get(Id);
                if (fault.Delay > TimeSpan.Zero)
                {
                    var due = item.Enqueued + (long)(fault.Delay.TotalSeconds * _owner._time.TimestampFrequency);
                    var wait = _owner._time.GetElapsedTime(_owner._time.GetTimestamp(), due);
                    if (wait > TimeSpan.Zero)
                    {
                        if (batch.Messages.Count > 0)
                        {
                            break; // send what is due now
                        }

                        await Task.Delay(wait, _owner._time, ct).ConfigureAwait(false);
                        continue; // look again: a timer may end a millisecond early (and the hook may have changed)
                    }
                }

                reader.TryRead(out item);
                var encoded = PeerCodec.Encode(item.Message);
                bytes += encoded.CalculateSize();
                batch.Messages.Add(encoded);
            }
        }

        /// <summary>The gRPC stream (peers without the wire, or the wire switched off); returns when it is time to try the wire again.</summary>
        private async Task RunGrpcAsync(Wire.Peer.PeerClient client, Uri url, CancellationToken ct)
        {
            var reader = _queue.Reader;
            using var call = client.Stream(cancellationToken: ct);
            var announced = false;
            if (_unsent is { } unsent)
            {
                await call.RequestStream.WriteAsync(unsent, ct).ConfigureAwait(false);
                _unsent = null;
            }

            while (true)
            {
                // A short wait keeps the loop noticing a stream the server ended (cluster mismatch, restart).
                if (!reader.TryPeek(out _))
                {
                    if (announced && WireDue())
                    {
                        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                        return;
                    }

                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    idle.CancelAfter(TimeSpan.FromSeconds(1));
                    try
                    {
                        await reader.WaitToReadAsync(idle.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                    }

                    if (call.ResponseAsync.IsCompleted)
                    {
                        await call.ResponseAsync.ConfigureAwait(false); // throws the server's status
                        throw new RpcException(new Status(StatusCode.Unavailable, "peer ended the stream"));
                    }

                    if (!announced)
                    {
                        // Say hello with an empty batch so the receiver checks the cluster id early.
                        await call.RequestStream.WriteAsync(Batch(), ct).ConfigureAwait(false);
                        announced = true;
                        MarkConnected(url, PeerLink.Grpc);
                    }

                    continue;
                }

                var batch = Batch();
                await FillBatchAsync(batch, ct).ConfigureAwait(false);
                if (batch.Messages.Count == 0)
                {
                    continue;
                }

                _unsent = batch;
                await call.RequestStream.WriteAsync(batch, ct).ConfigureAwait(false);
                _unsent = null;
                _sentBytes.Inc(batch.CalculateSize());
                if (!announced)
                {
                    announced = true;
                    MarkConnected(url, PeerLink.Grpc);
                }
            }
        }

        private Wire.MessageBatch Batch() => new() { ClusterId = _owner._options.ClusterId, From = _owner._options.MemberId, To = Id };

        /// <summary>
        /// Probes the peer every <see cref="PeerTransportOptions.ProbeInterval"/> and records the round trips once the
        /// transport has been up for <see cref="PeerTransportOptions.ProbeWarmUp"/>.
        /// The first probe that succeeds after the loop starts, after a failed probe or over another URL is a
        /// warm-up and is not recorded: it pays for setting up the connection (TCP, HTTP/2, TLS) and for the
        /// first call's code paths on both ends, 0.1–0.8 s in a fresh process, which the Raft messages on the
        /// established stream never see. Recorded, that one sample was the window's p99 for a minute and made
        /// Auto tuning raise a new cluster's election timeout to 5 s and more.
        /// </summary>
        private async Task ProbeLoopAsync()
        {
            var ct = _stop.Token;
            var time = _owner._time;
            Uri? warmedUrl = null;
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(_owner._options.ProbeInterval, time, ct).ConfigureAwait(false);
                    var fault = _owner._faults.Get(Id);
                    if (fault.Cut)
                    {
                        continue;
                    }

                    var client = Client(out var url);
                    var started = time.GetTimestamp();
                    if (fault.Delay > TimeSpan.Zero)
                    {
                        await Task.Delay(fault.Delay, time, ct).ConfigureAwait(false);
                    }

                    var sequence = ++_probeSequence;
                    var reply = await client.EchoAsync(
                        new Wire.Probe { ClusterId = _owner._options.ClusterId, From = _owner._options.MemberId, Sequence = sequence },
                        deadline: DateTime.UtcNow + _owner._options.ProbeTimeout,
                        cancellationToken: ct).ConfigureAwait(false);
                    var rtt = time.GetElapsedTime(started);
                    if (reply.Sequence != sequence || reply.MemberId != Id)
                    {
                        warmedUrl = null;
                        continue;
                    }

                    if (warmedUrl != url)
                    {
                        warmedUrl = url;
                        continue;
                    }

                    if (time.GetElapsedTime(_owner._started) < _owner._options.ProbeWarmUp)
                    {
                        continue;
                    }

                    Rtt.Record(rtt);
                    _roundTrips.Observe(rtt.TotalSeconds);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (RpcException)
                {
                    // Unreachable right now; the stream loop reports it, probes simply retry (the next success warms up again).
                    warmedUrl = null;
                    Interlocked.Increment(ref _failedProbes);
                }
            }
        }

        private async Task SendSnapshotAsync(Message m, SnapshotImage? image)
        {
            var ct = _stop.Token;
            var snapshot = m.Snapshot ?? Snapshot.Empty;
            var started = _owner._time.GetTimestamp();
            try
            {
                if (_owner._faults.ShouldDrop(Id))
                {
                    throw new RpcException(new Status(StatusCode.Unavailable, "test hook dropped the snapshot"));
                }

                var bytes = await SnapshotSender.SendAsync(Client(out _), _owner._options, Id, m, image?.Path, ct).ConfigureAwait(false);
                _owner._metrics.SnapshotSendSuccess.WithLabels(_label).Inc();
                _owner._metrics.SnapshotSendDuration.WithLabels(_label).Observe(_owner._time.GetElapsedTime(started).TotalSeconds);
                LogSnapshotSent(_owner._logger, Id, snapshot.Metadata.Index, bytes);
                _owner._events.ReportSnapshot(Id, SnapshotStatus.Finish);
            }
            catch (Exception e) when (e is RpcException or IOException or InvalidOperationException or HttpRequestException or UnauthorizedAccessException)
            {
                LogSnapshotFailed(_owner._logger, Id, snapshot.Metadata.Index, e.Message);
                _owner._metrics.SnapshotSendFailures.WithLabels(_label).Inc();
                _owner._events.ReportSnapshot(Id, SnapshotStatus.Failure);
            }
            catch (OperationCanceledException)
            {
                _owner._events.ReportSnapshot(Id, SnapshotStatus.Failure);
            }
            finally
            {
                image?.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            _queue.Writer.TryComplete();
            try
            {
                await Task.WhenAll(_streamLoop, _probeLoop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException)
            {
                // the loops end by cancellation
            }

            _channel?.Dispose();
            _stop.Dispose();
        }
    }
}

/// <summary>One peer as the transport sees it.</summary>
/// <param name="Id">The peer's member id.</param>
/// <param name="Link">What carries Raft messages to it now (None when not connected).</param>
/// <param name="Rtt">Round trips of the last minute's probes (warm-up probes not included).</param>
/// <param name="FailedProbes">Round-trip probes that failed since the peer was added (unreachable, refused, timed out).</param>
internal sealed record PeerState(ulong Id, PeerLink Link, LatencySummary Rtt, long FailedProbes)
{
    /// <summary>Whether the message stream to it is up.</summary>
    public bool Connected => Link != PeerLink.None;
}

/// <summary>What carries Raft messages to a peer right now.</summary>
internal enum PeerLink
{
    /// <summary>Not connected.</summary>
    None,

    /// <summary>The peer wire (<see cref="PeerWire"/>).</summary>
    Wire,

    /// <summary>The gRPC stream (a peer without the wire, or the wire switched off).</summary>
    Grpc,
}
