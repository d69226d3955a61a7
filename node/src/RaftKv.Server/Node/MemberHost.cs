using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Api;
using RaftKv.Server.Cluster;
using RaftKv.Server.Configuration;
using RaftKv.Server.Kv;
using RaftKv.Server.Leases;
using RaftKv.Server.Observability;
using RaftKv.Server.Peers;
using RaftKv.Storage;
using RaftKv.Storage.Mvcc;
using RaftKv.Storage.Wal;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Node;

/// <summary>Failure to start a member, with a message for the operator.</summary>
internal sealed class MemberStartException(string message, Exception? inner = null, int exitCode = Cli.RuntimeError) : Exception(message, inner)
{
    /// <summary>The process exit code for this failure (<see cref="RaftKvExitCodes"/> for the ones other programs act on).</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>Start-up choices that are not etcd flags.</summary>
internal sealed record MemberHostOptions
{
    public ILoggerFactory? Loggers { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>
    /// WAL fsyncs older than this leave the p50/p99 reported to the operator (at most the last 1024 count in any case).
    /// In a cluster that stopped writing, a busy hour's slow fsyncs no longer hold up SlowDisk and long timeouts: with no
    /// recent fsync the member reports none, and the operator tunes by round trips (lowering only after its quiet period).
    /// </summary>
    public TimeSpan WalFsyncWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>FOR TESTS: allow the Admin.SetPeerFault hook (see <see cref="PeerFaults"/>).</summary>
    public bool EnableTestHooks { get; init; }

    /// <summary>FOR TESTS: WAL segment size (default 64 MiB), so tests see segments cut and released with little data.</summary>
    public long? WalSegmentBytes { get; init; }
}

/// <summary>
/// One running member: decides its identity (new cluster, joining one, or restart), opens its log, and serves the peer
/// API on the peer URLs and etcd's API (gRPC and HTTP) on the client URLs, all on one Kestrel server.
/// </summary>
internal sealed partial class MemberHost : IAsyncDisposable
{
    private const string RebuildAdvice = "The member's store cannot be trusted: remove the member from the cluster (etcdctl member remove ID), " +
        "move its data dir away, and add it back with an empty data dir (etcdctl member add, --initial-cluster-state=existing); it gets the data " +
        "from the leader. The raftkv operator does this for a member whose volume was lost.";

    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping;
    private readonly ILogger _logger;

    private readonly KvStateMachine _kv;
    private readonly LeaseKeeper _leases;

    private MemberHost(WebApplication app, RaftMember member, KvStateMachine kv, LeaseKeeper leases, CancellationTokenSource stopping, ILogger logger)
    {
        _app = app;
        Member = member;
        _kv = kv;
        _leases = leases;
        _stopping = stopping;
        _logger = logger;
    }

    public RaftMember Member { get; }

    public static async Task<MemberHost> StartAsync(MemberConfig config, MemberHostOptions options, CancellationToken cancellationToken)
    {
        var loggers = options.Loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        var logger = loggers.CreateLogger("raftkv");
        var memberDir = Path.Combine(config.DataDir, "member");
        var clientTls = LoadTls(config.ClientTls, "", config.DataDir, [.. config.ListenClientUrls, .. config.AdvertiseClientUrls, .. config.ListenMetricsUrls], logger);
        var peerTls = LoadTls(config.PeerTls, "peer-", config.DataDir, [.. config.ListenPeerUrls, .. config.InitialAdvertisePeerUrls], logger);
        WalMetadata? identity;
        try
        {
            identity = DurableMemberLog.ReadIdentity(config.EffectiveWalDir);
            if (identity is null && config.WalDir is not null && DurableMemberLog.ReadIdentity(DurableRaftLog.WalDirectory(config.DataDir)) is not null)
            {
                // Before --wal-dir was honoured the WAL stayed in the data dir: starting on the empty --wal-dir would found a new member.
                throw new MemberStartException(
                    $"--wal-dir '{config.WalDir}' holds no WAL but '{DurableRaftLog.WalDirectory(config.DataDir)}' does (earlier raftkv versions kept the WAL " +
                    $"in the data dir whatever --wal-dir said): move it there (mv {DurableRaftLog.WalDirectory(config.DataDir)}/* {config.WalDir}/) or drop --wal-dir");
            }
        }
        catch (Exception e) when (e is IOException or WalCorruptException)
        {
            throw new MemberStartException($"cannot open the WAL in '{config.EffectiveWalDir}': {e.Message}", e);
        }

        if (identity is null && config.RestoreSnapshot is { } restoreFrom && config.InitialClusterState == InitialClusterState.New)
        {
            try
            {
                var restored = SnapshotRestore.Restore(restoreFrom, config, skipHashCheck: false, onVolume: true);
                LogRestored(logger, restoreFrom, restored.Revision, config.Name, restored.MemberId, restored.ClusterId);
                identity = DurableMemberLog.ReadIdentity(config.EffectiveWalDir);
            }
            catch (Exception e) when (e is SnapshotRestoreException or IOException or UnauthorizedAccessException)
            {
                throw new MemberStartException($"cannot restore --restore-snapshot {restoreFrom}: {e.Message}", e);
            }
        }

        var initialMembers = InitialMembersOf(config);
        ulong memberId, clusterId;
        IReadOnlyList<ulong>? bootstrapVoters = null;
        Membership membership;
        if (identity is { } known)
        {
            // Restart: the WAL says who we are; --initial-cluster* flags are ignored, as etcd does.
            memberId = known.MemberId;
            clusterId = known.ClusterId;
            membership = Membership.Load(memberDir) ?? new Membership(clusterId);
            if (MemberIds.ComputeClusterId(initialMembers.Select(m => m.Id)) != clusterId)
            {
                // The flags describe another cluster (defaults, or a data dir made by snapshot restore with its own token): the
                // members come from the log and the saved membership only, never from flags that name members it does not have.
                initialMembers = [];
            }

            LogRestart(logger, config.Name, memberId, clusterId);
        }
        else if (config.InitialClusterState == InitialClusterState.New)
        {
            memberId = initialMembers.Single(m => m.Name == config.Name).Id;
            clusterId = MemberIds.ComputeClusterId(initialMembers.Select(m => m.Id));
            bootstrapVoters = [.. initialMembers.Select(m => m.Id).Order()];
            membership = new Membership(clusterId);
        }
        else
        {
            var advertised = config.InitialAdvertisePeerUrls.Select(MemberIds.UrlText).ToHashSet(StringComparer.Ordinal);
            var remote = await FetchMembersAsync(initialMembers.Where(m => !m.PeerUrls.Any(advertised.Contains)), peerTls, cancellationToken).ConfigureAwait(false);
            var self = remote.Members.FirstOrDefault(m => m.PeerUrls.Any(advertised.Contains))
                ?? throw new MemberStartException(
                    $"member \"{config.Name}\" with peer URLs {string.Join(',', advertised)} is not in the running cluster's member list; " +
                    $"add it first: etcdctl member add {config.Name} --peer-urls={string.Join(',', advertised)}");
            if (self.Name.Length > 0 || self.ClientUrls.Count > 0)
            {
                // etcd's "already bootstrapped" check: a member that has served before and comes back without its WAL lost its
                // term, vote and log; rejoining under its old ID could make it vote twice in one term.
                throw new MemberStartException(
                    $"member {config.Name} ({self.Id:x}) has already been bootstrapped: the cluster lists it as started, but its data dir " +
                    $"'{config.DataDir}' has no WAL (lost or emptied). Remove it and add it again: etcdctl member remove {self.Id:x}; " +
                    $"etcdctl member add {config.Name} --peer-urls={string.Join(',', advertised)}; then start it again with an empty data dir",
                    exitCode: RaftKvExitCodes.DataDirLost);
            }

            memberId = self.Id;
            clusterId = remote.ClusterId;
            membership = new Membership(clusterId);
            initialMembers = [.. remote.Members];
        }

        Directory.CreateDirectory(memberDir);
        var timing = TimingStore.Load(memberDir) ?? new TimingSettings(config.HeartbeatIntervalMs, config.ElectionTimeoutMs);
        var metrics = new NodeMetrics();
        metrics.ServerVersion.WithLabels(EtcdVersion.Server).Set(1);
        var walFsync = new LatencyWindow(options.WalFsyncWindow, options.Time);
        var diskFaults = new DiskFaults();
        DurableMemberLog log;
        KvStateMachine kv;
        try
        {
            log = DurableMemberLog.Open(config.DataDir, clusterId, memberId, elapsed =>
            {
                walFsync.Record(elapsed);
                metrics.WalFsync.Observe(elapsed.TotalSeconds);
            }, diskFaults, loggers.CreateLogger("raftkv.wal"), options.WalSegmentBytes, (int)config.MaxSnapshots, config.EffectiveWalDir);
        }
        catch (Exception e) when (e is IOException or WalCorruptException or WalIdentityMismatchException)
        {
            throw new MemberStartException($"cannot open the WAL in '{config.EffectiveWalDir}': {e.Message}", e);
        }

        var snapshot = log.Log.Snapshot();
        if (StoreFileCheck.Problem(Path.Combine(config.SnapDir, "db")) is { } damage)
        {
            // Checked before LMDB maps the file: a file cut short would kill the process with SIGBUS on the first read past its end.
            log.Dispose();
            throw new MemberStartException($"{damage}. {RebuildAdvice}");
        }

        try
        {
            SnapshotCoordinator.RecoverStore(config.SnapDir, Path.Combine(config.SnapDir, "db"), snapshot.Metadata.Index, logger);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            log.Dispose();
            throw new MemberStartException($"cannot recover the store in '{config.SnapDir}' from snapshot {snapshot.Metadata.Index}: {e.Message}", e);
        }

        if (snapshot.Data.Length > 0 && StateSnapshot.Parser.ParseFrom(snapshot.Data.Span).Membership is { } snapMembers
            && snapMembers.AppliedIndex > membership.AppliedIndex)
        {
            membership = Membership.FromState(snapMembers); // stopped after installing a snapshot, before its membership was saved
        }

        try
        {
            var store = MvccStore.Open(Path.Combine(config.SnapDir, "db"),
                new MvccOptions { QuotaBackendBytes = config.EffectiveQuotaBackendBytes, MaxTxnOps = config.MaxTxnOps, DeferSync = true },
                loggers.CreateLogger("raftkv.mvcc"));
            kv = new KvStateMachine(store, metrics, options.Time, loggers.CreateLogger("raftkv.mvcc"));
        }
        catch (Exception e) when (e is IOException or LightningDB.LightningException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            // FormatException and the range exceptions: a stored record that does not decode (damaged file).
            log.Dispose();
            throw new MemberStartException($"cannot open the store in '{config.SnapDir}': {e.Message}. {RebuildAdvice}", e);
        }

        if (identity is not null && config.InitialCorruptCheck)
        {
            // Before anything is served, and before the WAL is replayed: the store as the disk holds it against the peers' at its revision.
            try
            {
                await CorruptionCheck.CheckInitialAsync(clusterId, memberId, kv.Store.HashKv(0), [.. membership.List().Where(m => m.Id != memberId)], peerTls,
                    CorruptionCheck.RequestTimeout(timing.ElectionMs), loggers.CreateLogger("raftkv.corrupt"), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MemberStartException or OperationCanceledException)
            {
                kv.Dispose();
                log.Dispose();
                throw;
            }
            catch (Exception e) when (e is StoreException or LightningDB.LightningException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
            {
                kv.Dispose();
                log.Dispose();
                throw new MemberStartException($"cannot hash the store in '{config.SnapDir}': {e.Message}. {RebuildAdvice}", e);
            }
        }

        var faults = new PeerFaults(new Random());
        var member = new RaftMember(
            new MemberSettings
            {
                MemberId = memberId,
                ClusterId = clusterId,
                Name = config.Name,
                HeartbeatMs = timing.HeartbeatMs,
                ElectionMs = timing.ElectionMs,
                MemberDir = memberDir,
                InitialMembers = initialMembers,
                BootstrapVoters = bootstrapVoters,
                Transport = new PeerTransportOptions { ClusterId = clusterId, MemberId = memberId, Tls = peerTls, Wire = config.PeerWire },
            },
            log, membership, metrics, faults, options.Time, loggers);
        member.SetApplier(kv);
        kv.LeaseMetrics = new LeaseMetrics(metrics.Registry);
        var leases = new LeaseKeeper(member, kv.Store, new Lessor(options.Time), options.Time, loggers.CreateLogger("raftkv.lease"));
        member.SetSnapshots(new SnapshotCoordinator(
            new SnapshotSettings { Directory = config.SnapDir, SnapshotCount = config.SnapshotCount, CatchUpEntries = config.SnapshotCatchUpEntries },
            log, kv, metrics, options.Time, loggers.CreateLogger("raftkv.snap")));

        var stopping = new CancellationTokenSource();
        WebApplication? app = null;
        try
        {
            app = BuildApp(config, member, kv, leases.Lessor, metrics, walFsync, diskFaults, memberDir, options, loggers, clientTls, peerTls, stopping.Token);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing may outlive a failed start: the store's environment must be closed, not left to a finalizer.
            await leases.DisposeAsync().ConfigureAwait(false);
            await member.DisposeAsync().ConfigureAwait(false);
            kv.Dispose();
            if (app is not null)
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }

            stopping.Dispose();
            throw e switch
            {
                MemberStartException => e,
                IOException => new MemberStartException($"cannot listen: {e.Message} (another process holds the port; stop it or choose other URLs)", e),
                _ => new MemberStartException($"cannot start serving: {e.Message}", e),
            };
        }

        kv.StartFlushing();
        member.Start();
        leases.Start();
        var host = new MemberHost(app, member, kv, leases, stopping, logger);
        _ = host.PublishAttributesAsync(config);
        if (config.CorruptCheckTime > TimeSpan.Zero)
        {
            _ = host.MonitorKvHashAsync(config.CorruptCheckTime, peerTls, options.Time, loggers.CreateLogger("raftkv.corrupt"));
        }
        LogServing(logger, config.Name, memberId, clusterId, config.ListenClientUrls);
        return host;
    }

    private static async Task<Wire.MembersResponse> FetchMembersAsync(IEnumerable<Member> peers, MemberTls? peerTls, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        foreach (var url in peers.SelectMany(p => p.PeerUrls))
        {
            try
            {
                using var channel = HostsFileResolver.Process.Channel(url, peerTls);
                return await new Wire.Peer.PeerClient(channel)
                    .MembersAsync(new Wire.MembersRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                errors.Add($"{url}: {e.Status.Detail}");
            }
        }

        throw new MemberStartException(
            "could not fetch the cluster's members from any peer in --initial-cluster" + (errors.Count > 0 ? $" ({string.Join("; ", errors)})" : "") +
            "; start with --initial-cluster-state=existing only when the other members are running");
    }

    private static WebApplication BuildApp(MemberConfig config, RaftMember member, KvStateMachine kv, Lessor lessor, NodeMetrics metrics, LatencyWindow walFsync,
        DiskFaults diskFaults, string memberDir, MemberHostOptions options, ILoggerFactory loggers, MemberTls? clientTls, MemberTls? peerTls,
        CancellationToken stopping)
    {
        // No appsettings files to reload: the default would watch the working directory and everything under it with
        // inotify, and when a data dir lies there (as in `make run` and the benchmarks) every WAL write woke the watcher
        // thread (a tenth of the member's CPU in a profile of single-client puts).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(3));
        var peerPorts = config.ListenPeerUrls.Select(u => u.Port).ToHashSet();
        var metricsPorts = config.ListenMetricsUrls.Select(u => u.Port).ToHashSet();
        var wire = new PeerWireServer(member, metrics, loggers.CreateLogger("raftkv.peerwire"), stopping);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.Http2.MaxStreamsPerConnection = int.MaxValue;
            k.AllowAlternateSchemes = true; // h2c connections look like TLS to Kestrel (see CleartextHttp2Detection); clients send :scheme http
            k.Limits.MaxRequestBodySize = null;
            foreach (var url in config.ListenPeerUrls)
            {
                Listen(k, url, HttpProtocols.Http2, peerTls, middleware: wire.Middleware); // Raft messages on the wire, the rest on gRPC
            }

            foreach (var url in config.ListenClientUrls)
            {
                Listen(k, url, HttpProtocols.Http1AndHttp2, clientTls, CleartextHttp2Detection.Middleware);
            }

            foreach (var url in config.ListenMetricsUrls)
            {
                Listen(k, url, HttpProtocols.Http1AndHttp2, clientTls, CleartextHttp2Detection.Middleware);
            }
        });
        builder.Services.AddGrpc(o =>
        {
            // etcd accepts requests up to --max-request-bytes plus gRPC framing overhead; larger ones are refused by size checks in the services.
            o.MaxReceiveMessageSize = config.MaxRequestBytes + (512 * 1024);
            o.MaxSendMessageSize = null;
        }).AddServiceOptions<PeerService>(o =>
        {
            // Not the client limit: a batch of Raft messages to a member that fell behind can be far larger, and a batch
            // refused for its size is resent as it was, forever (found by the fault suite: a restarted follower never
            // caught up). The peer port serves only cluster members.
            o.MaxReceiveMessageSize = null;
        });
        builder.Services.AddEtcdUnmarshalErrors(); // a body that does not parse: INTERNAL, as etcd answers, not UNKNOWN
        var headers = new Headers(member, () => kv.Store.CurrentRevision);
        var tokens = new Auth.SimpleTokens(TimeSpan.FromSeconds(config.AuthTokenTtlSeconds), options.Time);
        kv.Tokens = tokens;
        var gate = new Auth.AuthGate(member, kv, tokens, config.ClientTls.ClientCertAuth);
        builder.Services.AddSingleton(new KvService(member, kv, headers, config.MaxRequestBytes, gate));
        builder.Services.AddSingleton(new AuthService(member, gate, headers, config.BcryptCost));
        var watchHub = new WatchHub();
        kv.Applied += _ => watchHub.Notify();
        builder.Services.AddSingleton(new WatchService(kv, watchHub, headers, options.Time, gate));
        builder.Services.AddSingleton(_ => new LeaseService(member, kv, lessor, headers, kv.LeaseMetrics!, options.Time, clientTls, peerTls) { Gate = gate }); // disposed with the app (its channels to the leader)
        var cluster = new ClusterService(member, headers, options.Time, clientTls, peerTls, gate);
        builder.Services.AddSingleton(new PeerService(member, metrics, stopping, kv.Store.HashKv, cluster.PromoteForwardedAsync));
        builder.Services.AddSingleton(cluster);
        builder.Services.AddSingleton(new MaintenanceService(member, kv, headers, config.EffectiveQuotaBackendBytes, gate));
        builder.Services.AddSingleton(new AdminService(member, walFsync, diskFaults, memberDir,
            options.EnableTestHooks || Environment.GetEnvironmentVariable(PeerFaults.EnableVariable) == "1", gate));
        var app = builder.Build();

        // Peer traffic only on peer ports, client traffic only on client ports; metrics ports (--listen-metrics-urls) serve
        // /metrics and the health checks only, as etcd's do. A lease keep-alive or time-to-live that a follower forwards to the
        // leader (marked as forwarded) is peer traffic too, as etcd's /leases on the peer URLs.
        app.Use(async (context, next) =>
        {
            var onPeerPort = peerPorts.Contains(context.Connection.LocalPort);
            var isPeerCall = context.Request.Path.StartsWithSegments("/raftkv.peer.Peer", StringComparison.Ordinal)
                || (onPeerPort && context.Request.Headers.ContainsKey(LeaseService.ForwardedHeader)
                    && context.Request.Path.Value is "/etcdserverpb.Lease/LeaseKeepAlive" or "/etcdserverpb.Lease/LeaseTimeToLive");
            var onMetricsPort = metricsPorts.Contains(context.Connection.LocalPort);
            var isMetricsCall = context.Request.Path.Value is "/metrics" or "/health" or "/livez" or "/readyz";
            if (onPeerPort != isPeerCall || (onMetricsPort && !isMetricsCall))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            await next(context).ConfigureAwait(false);
        });
        app.MapGrpcService<PeerService>();
        app.MapGrpcService<KvService>();
        app.MapGrpcService<WatchService>();
        app.MapGrpcService<LeaseService>();
        app.MapGrpcService<ClusterService>();
        app.MapGrpcService<MaintenanceService>();
        app.MapGrpcService<AuthService>();
        app.MapGrpcService<AdminService>();
        HttpEndpoints.Map(app, member, metrics);
        return app;
    }

    /// <summary>
    /// One listener: https:// with <paramref name="tls"/> (HTTP/2 chosen by ALPN), http:// in cleartext (with
    /// <paramref name="cleartextMiddleware"/>, which lets HTTP/2 clients in without ALPN); <paramref name="middleware"/>
    /// sees every connection in both cases (after TLS).
    /// </summary>
    private static void Listen(KestrelServerOptions k, Uri url, HttpProtocols protocols, MemberTls? tls,
        Func<Microsoft.AspNetCore.Connections.ConnectionDelegate, Microsoft.AspNetCore.Connections.ConnectionDelegate>? cleartextMiddleware = null,
        Func<Microsoft.AspNetCore.Connections.ConnectionDelegate, Microsoft.AspNetCore.Connections.ConnectionDelegate>? middleware = null)
    {
        void Configure(ListenOptions o)
        {
            o.Protocols = protocols;
            if (url.Scheme == "https")
            {
                o.UseHttps(tls!.ServerOptions());
            }
            else if (cleartextMiddleware is not null)
            {
                o.Use(cleartextMiddleware);
            }

            if (middleware is not null)
            {
                o.Use(middleware);
            }
        }

        if (url.Host == "localhost")
        {
            k.ListenLocalhost(url.Port, Configure);
        }
        else if (IPAddress.TryParse(url.Host.Trim('[', ']'), out var ip))
        {
            k.Listen(ip, url.Port, Configure);
        }
        else
        {
            throw new MemberStartException($"expected IP in URL for binding ({url.OriginalString})");
        }
    }

    /// <summary>Tells the cluster this member's name and client URLs through Raft, as etcd's publish does; retried until it succeeds.</summary>
    private async Task PublishAttributesAsync(MemberConfig config)
    {
        var attributes = new MemberAttributes { Id = Member.MemberId, Name = config.Name };
        attributes.ClientUrls.AddRange(config.AdvertiseClientUrls.Select(MemberIds.UrlText));
        var ct = _stopping.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Member.ProposeAsync(new InternalRequest { MemberAttributes = attributes }, ct).ConfigureAwait(false);
                LogPublished(_logger, config.Name);
                return;
            }
            catch (RpcException)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Member.Timing.HeartbeatMs), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// etcd's <c>monitorKVHash</c> (<c>--experimental-corrupt-check-time</c>): every <paramref name="every"/>, while this member leads,
    /// compare every member's HashKV and raise the CORRUPT alarm on a mismatch. A failed pass is logged and tried again next time.
    /// </summary>
    private async Task MonitorKvHashAsync(TimeSpan every, MemberTls? peerTls, TimeProvider time, ILogger logger)
    {
        var ct = _stopping.Token;
        LogCorruptCheckEnabled(logger, Member.MemberId, every);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(every, time, ct).ConfigureAwait(false);
                if (Member.Leader != Member.MemberId)
                {
                    continue;
                }

                await CorruptionCheck.CheckClusterAsync(Member, _kv.Store, peerTls, logger, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or StoreException or OperationCanceledException or ObjectDisposedException)
            {
                LogCorruptCheckFailed(logger, e.Message);
            }
        }
    }

    /// <summary>Completes when the member stops on its own (removed from the cluster, fatal error).</summary>
    public Task Stopped => Member.Stopped;

    /// <summary>
    /// A graceful stop (SIGTERM, SIGINT): a leader first hands leadership to the most caught-up connected voter, waiting at
    /// most an election timeout (the core abandons a transfer after that anyway), then the member stops. Without the handover
    /// the others would wait an election timeout before electing a new leader; a failed handover only costs that wait.
    /// </summary>
    public async Task StopGracefullyAsync()
    {
        try
        {
            var status = await Member.StatusAsync().ConfigureAwait(false);
            var connected = Member.Transport.Describe().Where(p => p.Connected).Select(p => p.Id).ToHashSet();
            var target = LeadershipHandover.ChooseTransferee(status, Member.MemberId, connected);
            if (target != 0)
            {
                using var bound = new CancellationTokenSource(TimeSpan.FromMilliseconds(Member.Timing.ElectionMs));
                await Member.TransferLeadershipAsync(target, bound.Token).ConfigureAwait(false);
                LogHandedOver(_logger, Member.MemberId, target);
            }
            else if (status.SoftState.Role == RaftKv.Raft.StateRole.Leader && status.Progress.Count > 1)
            {
                // Said out loud: a leader that cannot reach any voter (its network already gone) leaves the others
                // without a leader for an election timeout.
                LogHandoverFailed(_logger, Member.MemberId, "no voter it heard from recently is connected");
            }
        }
        catch (Exception e) when (e is OperationCanceledException or RpcException or ObjectDisposedException or InvalidOperationException)
        {
            LogHandoverFailed(_logger, Member.MemberId, e.Message);
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _leases.DisposeAsync().ConfigureAwait(false);
        await Member.DisposeAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _kv.Dispose();
        _stopping.Dispose();
    }

    /// <summary>One side's TLS (<see cref="MemberTls.Load"/>), saying in the log what auto TLS did, as etcd does.</summary>
    private static MemberTls? LoadTls(TlsFiles files, string flagPrefix, string dataDir, IReadOnlyList<Uri> urls, ILogger logger)
    {
        if (files.AutoTls && !files.SelfSigned)
        {
            LogAutoTlsIgnored(logger, flagPrefix);
        }

        var tls = MemberTls.Load(files, flagPrefix, dataDir, urls.Select(u => u.Host), logger);
        if (tls is { SelfSigned: true } own)
        {
            var certificate = own.Certificate;
            var thumbprint = certificate.Thumbprint;
            var notAfter = certificate.NotAfter.ToUniversalTime();
            LogAutoTls(logger, flagPrefix, thumbprint, notAfter);
        }

        return tls;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ignoring --{Prefix}auto-tls since --{Prefix}cert-file is given")]
    private static partial void LogAutoTlsIgnored(ILogger logger, string prefix);

    [LoggerMessage(Level = LogLevel.Information, Message = "--{Prefix}auto-tls: serving with the self-signed certificate {Thumbprint} (valid until {NotAfter:u}); other members' certificates are not verified")]
    private static partial void LogAutoTls(ILogger logger, string prefix, string thumbprint, DateTime notAfter);

    /// <summary>The members <c>--initial-cluster</c> names, with the IDs etcd gives them (from their peer URLs and the cluster token).</summary>
    internal static List<Member> InitialMembersOf(MemberConfig config) =>
        [.. config.InitialCluster.Select(m =>
        {
            var member = new Member { Id = MemberIds.ComputeMemberId(m.PeerUrls.Select(MemberIds.UrlText), config.InitialClusterToken), Name = m.Name };
            member.PeerUrls.AddRange(m.PeerUrls.Select(MemberIds.UrlText));
            return member;
        })];

    [LoggerMessage(Level = LogLevel.Information, Message = "restored snapshot {File} (revision {Revision}) into the data dir of member {Name} ({MemberId:x}) of the new cluster {ClusterId:x}")]
    private static partial void LogRestored(ILogger logger, string file, long revision, string name, ulong memberId, ulong clusterId);

    [LoggerMessage(Level = LogLevel.Information, Message = "member {Name} restarts as {MemberId:x} of cluster {ClusterId:x} from its WAL (--initial-cluster flags are ignored)")]
    private static partial void LogRestart(ILogger logger, string name, ulong memberId, ulong clusterId);

    [LoggerMessage(Level = LogLevel.Information, Message = "member {Name} ({MemberId:x}) of cluster {ClusterId:x} serving clients on {Urls}")]
    private static partial void LogServing(ILogger logger, string name, ulong memberId, ulong clusterId, IReadOnlyList<Uri> urls);

    [LoggerMessage(Level = LogLevel.Information, Message = "leader {MemberId:x} handed leadership to {Target:x} before stopping")]
    private static partial void LogHandedOver(ILogger logger, ulong memberId, ulong target);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leader {MemberId:x} stops without handing over leadership ({Reason}); the others elect a leader after an election timeout")]
    private static partial void LogHandoverFailed(ILogger logger, ulong memberId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "enabled corruption checking (local-member-id {MemberId:x}, interval {Interval})")]
    private static partial void LogCorruptCheckEnabled(ILogger logger, ulong memberId, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Warning, Message = "failed to check hash KV: {Reason}")]
    private static partial void LogCorruptCheckFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "published member {Name} attributes to the cluster")]
    private static partial void LogPublished(ILogger logger, string name);
}
