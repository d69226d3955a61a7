using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Raft;
using RaftKv.Server.Observability;
using RaftKv.Server.Peers;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Tests.Peers;

/// <summary>A peer endpoint on a loopback port that records what it receives, plus a transport sending from it.</summary>
internal sealed class TestPeer : IPeerInbox, IPeerTransportEvents, IAsyncDisposable
{
    private WebApplication? _app;
    private IPAddress _address = IPAddress.Loopback;
    private int _maxFrameBytes = PeerWire.DefaultMaxFrameBytes;
    private MemberTls? _tls;

    private TestPeer(ulong id, ulong clusterId, HostsFileResolver? names, TimeSpan probeWarmUp, bool wire, MemberTls? tls, TimeSpan legacyRetry)
    {
        MemberId = id;
        ClusterId = clusterId;
        Metrics = new NodeMetrics();
        Faults = new PeerFaults(new Random(1));
        Transport = new PeerTransport(
            new PeerTransportOptions { ClusterId = clusterId, MemberId = id, ProbeInterval = TimeSpan.FromMilliseconds(50), ProbeWarmUp = probeWarmUp, MaxBackoff = TimeSpan.FromMilliseconds(200), Names = names ?? new HostsFileResolver(null), Wire = wire, LegacyRetry = legacyRetry, Tls = tls },
            this, Metrics, Faults, TimeProvider.System, NullLogger.Instance);
    }

    public ulong ClusterId { get; }

    public ulong MemberId { get; }

    public NodeMetrics Metrics { get; }

    public PeerFaults Faults { get; }

    public PeerTransport Transport { get; }

    public int Port { get; private set; }

    /// <summary>Serves the peer wire next to gRPC (false: gRPC only, as older members).</summary>
    public bool ServesWire { get; private set; }

    /// <summary>How the transport reaches <paramref name="peer"/> now.</summary>
    public PeerLink LinkTo(ulong peer) => Transport.Describe().SingleOrDefault(p => p.Id == peer)?.Link ?? PeerLink.None;

    public Uri Url => new($"{(_tls is null ? "http" : "https")}://{_address}:{Port}");

    public ConcurrentQueue<Message> Received { get; } = new();

    public ConcurrentQueue<ulong> Unreachable { get; } = new();

    public ConcurrentQueue<(ulong Peer, SnapshotStatus Status)> SnapshotReports { get; } = new();

    /// <summary>Starts serving on <paramref name="address"/> (default 127.0.0.1) and <paramref name="port"/> (default: a free one);
    /// the transport resolves peer names with <paramref name="names"/> (default: DNS only) and records round trips
    /// from <paramref name="probeWarmUp"/> after it started (default: at once). <paramref name="wire"/> false: as a member
    /// of an older version, it neither serves nor uses the peer wire (gRPC streams only); the wire's frame limit is
    /// <paramref name="maxFrameBytes"/>. With <paramref name="tls"/> it serves and calls https:// only. After a peer turned
    /// out not to speak the wire, the transport tries the wire again <paramref name="legacyRetry"/> later (default 300 ms).</summary>
    public static async Task<TestPeer> StartAsync(ulong id, ulong clusterId = 0xc1, HostsFileResolver? names = null, IPAddress? address = null, int port = 0,
        TimeSpan? probeWarmUp = null, bool wire = true, int maxFrameBytes = PeerWire.DefaultMaxFrameBytes, MemberTls? tls = null, TimeSpan? legacyRetry = null)
    {
        var peer = new TestPeer(id, clusterId, names, probeWarmUp ?? TimeSpan.Zero, wire, tls, legacyRetry ?? TimeSpan.FromMilliseconds(300))
        {
            _address = address ?? IPAddress.Loopback,
            ServesWire = wire,
            _maxFrameBytes = maxFrameBytes,
            _tls = tls,
        };
        await peer.ListenAsync(port);
        return peer;
    }

    /// <summary>Starts serving again on the same port (after <see cref="StopServingAsync"/>).</summary>
    public Task RestartServingAsync() => ListenAsync(Port);

    /// <summary>As <see cref="RestartServingAsync"/>, now serving the peer wire too (an older member upgraded in place).</summary>
    public Task UpgradeAndRestartServingAsync()
    {
        ServesWire = true;
        return ListenAsync(Port);
    }

    public async Task StopServingAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private async Task ListenAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var stopping = new CancellationTokenSource();
        var wire = new PeerWireServer(this, Metrics, NullLogger.Instance, stopping.Token, _maxFrameBytes);
        builder.WebHost.ConfigureKestrel(k => k.Listen(_address, port, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            if (_tls is not null)
            {
                o.UseHttps(_tls.ServerOptions());
            }

            if (ServesWire)
            {
                o.Use(wire.Middleware);
            }
        }));
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = null;
            o.Interceptors.Add<SlowEchoes>();
        });
        builder.Services.AddSingleton(_slowEchoes);
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.Services.AddSingleton(new PeerService(this, Metrics, stopping.Token));
        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(stopping.Cancel);
        app.MapGrpcService<PeerService>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        Port = new Uri(address).Port;
        _app = app;
    }

    private readonly SlowEchoes _slowEchoes = new();

    /// <summary>The next <paramref name="count"/> probes this peer answers take <paramref name="delay"/> longer (as a
    /// fresh process's first answers do).</summary>
    public void SlowDownNextEchoes(int count, TimeSpan delay) => _slowEchoes.Set(count, delay);

    /// <summary>Delays answers to probes (<c>Echo</c>) while a count set by the test lasts; other calls pass through.</summary>
    private sealed class SlowEchoes : Interceptor
    {
        private int _remaining;
        private TimeSpan _delay;

        public void Set(int count, TimeSpan delay)
        {
            _delay = delay;
            Volatile.Write(ref _remaining, count);
        }

        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            if (request is Wire.Probe && Interlocked.Decrement(ref _remaining) >= 0)
            {
                await Task.Delay(_delay, context.CancellationToken);
            }

            return await continuation(request, context);
        }
    }

    public void Deliver(Message message) => Received.Enqueue(message);

    /// <summary>Where received snapshot images land (a temp dir deleted on dispose).</summary>
    public string SnapshotDirectory { get; } = Directory.CreateTempSubdirectory("raftkv-peer-snap-").FullName;

    public Wire.MembersResponse Members() => new() { ClusterId = ClusterId };

    public void ReportUnreachable(ulong peer) => Unreachable.Enqueue(peer);

    public void ReportSnapshot(ulong peer, SnapshotStatus status) => SnapshotReports.Enqueue((peer, status));

    public string Describe() =>
        $"member {MemberId}: received [{string.Join("; ", Received.Select(m => m.ToString()))}], unreachable reports {Unreachable.Count}, " +
        $"peers [{string.Join(", ", Transport.Describe())}], serves the wire: {ServesWire}";

    public async ValueTask DisposeAsync()
    {
        await Transport.DisposeAsync();
        await StopServingAsync();
        Directory.Delete(SnapshotDirectory, recursive: true);
    }
}
