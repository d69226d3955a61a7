using System.Net;
using System.Net.Sockets;

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
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<TcpClient> _open = [];
    private readonly Lock _lock = new();

    public TcpRelay(IPEndPoint listen, Func<IPEndPoint?> target, Func<LinkFaults> faults, Random random)
    {
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

    private async Task PumpAsync(NetworkStream from, NetworkStream to, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, cancellationToken);
                if (n == 0)
                {
                    return;
                }

                var faults = _faults();
                if (faults.Partitioned)
                {
                    return;
                }

                var wait = faults.Delay;
                if (faults.Loss > 0 && _random.NextDouble() < faults.Loss)
                {
                    wait += LinkFaults.RetransmissionPenalty;
                }

                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }

                await to.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Either side closed, or the relay stopped.
        }
    }

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
