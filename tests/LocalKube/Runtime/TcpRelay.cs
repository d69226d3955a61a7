using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace LocalKube.Runtime;

/// <summary>Faults applied to one direction of a relayed connection: a delay added to every chunk, a share of
/// chunks treated as lost (held back as long as a TCP retransmission would take), or a cut.</summary>
internal sealed record LinkFaults(TimeSpan Delay, double Loss, bool Partitioned)
{
    public static LinkFaults None { get; } = new(TimeSpan.Zero, 0, false);

    /// <summary>How long a lost segment costs: TCP's minimum retransmission timeout on Linux.</summary>
    public static TimeSpan RetransmissionPenalty { get; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>A TCP listener that relays each accepted connection to a target chosen per connection, applying the
/// current faults to both directions. Used for Service ClusterIPs and for links between pods.</summary>
internal sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<IPEndPoint?> _target;
    private readonly Func<LinkFaults> _faults;
    private readonly Random _random;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<TcpClient> _open = [];
    private readonly Lock _lock = new();

    /// <summary>Bytes per read, and how many chunks one direction may hold while they wait to be due (then reading
    /// pauses, as a full TCP window would): up to 16 MiB in flight per direction.</summary>
    private const int ChunkSize = 64 * 1024;

    private const int MaxQueuedChunks = 256;

    public TcpRelay(IPEndPoint listen, Func<IPEndPoint?> target, Func<LinkFaults> faults, Random random, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _listener = new TcpListener(listen);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        _target = target;
        _faults = faults;
        _random = random;
        _accepting = AcceptAsync();
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndpoint;

    /// <summary>Closes every relayed connection (used when a partition starts).</summary>
    public void CloseConnections()
    {
        lock (_lock)
        {
            foreach (var c in _open)
            {
                c.Dispose();
            }

            _open.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using var inbound = client;
        var target = _target();
        if (target is null || _faults().Partitioned)
        {
            return;
        }

        using var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(target, _stop.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return;
        }

        lock (_lock)
        {
            _open.Add(inbound);
            _open.Add(outbound);
        }

        try
        {
            using var done = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var up = PumpAsync(inbound.GetStream(), outbound.GetStream(), done.Token);
            var down = PumpAsync(outbound.GetStream(), inbound.GetStream(), done.Token);
            await Task.WhenAny(up, down);
            await done.CancelAsync();
        }
        finally
        {
            lock (_lock)
            {
                _open.Remove(inbound);
                _open.Remove(outbound);
            }
        }
    }

    /// <summary>Copies one direction. Each chunk read is due at its arrival plus the delay (and the retransmission
    /// penalty when "lost") and is written when due, in the order read: the added latency is the delay, however many
    /// chunks are in flight (reading the next chunk does not wait for the previous one's delay).</summary>
    private async Task PumpAsync(NetworkStream from, NetworkStream to, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var queue = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(MaxQueuedChunks) { SingleReader = true, SingleWriter = true });
        var writing = WriteWhenDueAsync(queue.Reader, to, stop);
        var buffer = new byte[ChunkSize];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, stop.Token);
                if (n == 0)
                {
                    break;
                }

                var faults = _faults();
                if (faults.Partitioned)
                {
                    await stop.CancelAsync();
                    break;
                }

                var wait = faults.Delay;
                if (faults.Loss > 0)
                {
                    bool lost;
                    lock (_random)
                    {
                        lost = _random.NextDouble() < faults.Loss;
                    }

                    if (lost)
                    {
                        wait += LinkFaults.RetransmissionPenalty;
                    }
                }

                await queue.Writer.WriteAsync(new Chunk(buffer.AsSpan(0, n).ToArray(), _time.GetTimestamp() + (long)(wait.TotalSeconds * _time.TimestampFrequency)), stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException or ChannelClosedException)
        {
            // Either side closed, or the relay stopped.
        }
        finally
        {
            queue.Writer.TryComplete();
        }

        await writing;
    }

    private async Task WriteWhenDueAsync(ChannelReader<Chunk> queue, NetworkStream to, CancellationTokenSource stop)
    {
        try
        {
            await foreach (var chunk in queue.ReadAllAsync(stop.Token))
            {
                var remaining = _time.GetElapsedTime(_time.GetTimestamp(), chunk.Due);
                if (remaining > TimeSpan.Zero)
                {
                    await Task.Delay(remaining, _time, stop.Token);
                }

                await to.WriteAsync(chunk.Bytes, stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // The receiving side closed, or the relay stopped: the reading side stops too.
            await stop.CancelAsync();
        }
    }

    /// <summary>Bytes read from one side and when they are due at the other (a <see cref="TimeProvider"/> timestamp).</summary>
    private readonly record struct Chunk(byte[] Bytes, long Due);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CloseConnections();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _listener.Dispose();
        _stop.Dispose();
    }
}
