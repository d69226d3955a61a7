using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Tls;
using RaftKv.Operator.Tuning;
using RaftKv.Protocol.Admin;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Operator.Controllers;

/// <summary>
/// <see cref="IRaftMembers"/> over gRPC: etcd's Maintenance.Status (leader, indexes, learner flag) and
/// Cluster API (list, add learner, promote, remove), Maintenance.MoveLeader on the leader, and raftkv's
/// Admin service (RTT, fsync, live timing). Every call has a deadline, so a hung member cannot stall
/// reconciles of the whole operator.
/// </summary>
internal sealed partial class EtcdRaftMembers(ILogger<EtcdRaftMembers> logger, TimeProvider time) : IRaftMembers, IDisposable
{
    /// <summary>How long one call to one member may take.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>A learner is caught up when its log index is at least this fraction of the leader's (etcd's promotion rule).</summary>
    public const double CatchUpFraction = 0.9;

    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public async Task<MemberObservation> ObserveAsync(MemberTarget target, CancellationToken cancellationToken)
    {
        var statuses = await Task.WhenAll(target.Endpoints.Select(async e => (Endpoint: e, Status: await TryAsync(target, e,
            c => new Maintenance.MaintenanceClient(c).StatusAsync(new StatusRequest(), deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync))));
        var answered = statuses.Where(s => s.Status is not null).ToList();
        if (answered.Count == 0)
        {
            return MemberObservation.Unreachable;
        }

        var leaderId = answered.Select(s => s.Status!.Leader).FirstOrDefault(l => l != 0);
        var leaderEndpoint = answered.FirstOrDefault(s => s.Status!.Header.MemberId == leaderId && leaderId != 0);
        var ask = leaderEndpoint.Status is not null ? leaderEndpoint.Endpoint : answered[0].Endpoint;
        var list = await TryAsync(target, ask, c => new Cluster.ClusterClient(c).MemberListAsync(new MemberListRequest { Linearizable = leaderId != 0 },
            deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync);
        if (list is null)
        {
            return MemberObservation.Unreachable with { LeaderId = leaderId == 0 ? null : leaderId };
        }

        var byId = answered.ToDictionary(s => s.Status!.Header.MemberId, s => s.Status!);
        var leaderIndex = leaderEndpoint.Status?.RaftIndex ?? answered.Max(s => s.Status!.RaftIndex);
        var lost = new HashSet<int>();
        var members = new List<ObservedMember>();
        foreach (var member in list.Members)
        {
            var ordinal = OrdinalOf(target.Names, member);
            var status = byId.GetValueOrDefault(member.ID);
            var caughtUp = status is not null && status.RaftIndex >= CatchUpFraction * leaderIndex;
            members.Add(new ObservedMember(ordinal, member.ID, member.IsLearner, Healthy: status is not null && status.Errors.Count == 0, caughtUp));
        }

        // A pod that answers under another ID than the member listed under its name started with an empty
        // data dir: the member it was is gone with its volume.
        foreach (var (endpoint, status) in answered)
        {
            var listed = members.FirstOrDefault(m => m.Ordinal == endpoint.Ordinal);
            if (listed is not null && listed.Id != status!.Header.MemberId)
            {
                lost.Add(endpoint.Ordinal);
            }
        }

        var measurements = await Task.WhenAll(answered.Select(s => TryAsync(target, s.Endpoint,
            c => new Admin.AdminClient(c).MeasurementsAsync(new MeasurementsRequest(), deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync)));
        var reported = measurements.Where(m => m is not null).Select(m => m!).ToList();
        var rttByPeer = reported.SelectMany(m => m.Peers).Where(p => p.Rtt is { Count: > 0 }).ToList();
        var combined = TuningMeasurements.Combine(
            rttByPeer.Select(p => (Seconds(p.Rtt.P50Seconds), Seconds(p.Rtt.P99Seconds))),
            reported.Where(m => m.WalFsync is { Count: > 0 }).Select(m => Seconds(m.WalFsync.P99Seconds)));
        members = [.. members.Select(m => m with { Rtt = RttFromLeader(reported, leaderId, m.Id) })];
        var timingSource = reported.FirstOrDefault(m => m.MemberId == leaderId) ?? reported.FirstOrDefault();
        var timing = timingSource?.Timing is { HeartbeatIntervalMs: > 0, ElectionTimeoutMs: > 0 } t
            ? new RaftTiming(TimeSpan.FromMilliseconds(t.HeartbeatIntervalMs), TimeSpan.FromMilliseconds(t.ElectionTimeoutMs))
            : null;
        return new MemberObservation(members, leaderId == 0 ? null : leaderId, combined, timing, lost);
    }

    public async Task<ulong> AddLearnerAsync(MemberTarget target, string peerUrl, CancellationToken cancellationToken)
    {
        var response = await OnLeaderAsync(target, c => new Cluster.ClusterClient(c).MemberAddAsync(
            new MemberAddRequest { IsLearner = true, PeerURLs = { peerUrl } }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        return response.Member.ID;
    }

    public Task PromoteAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) =>
        OnLeaderAsync(target, c => new Cluster.ClusterClient(c).MemberPromoteAsync(new MemberPromoteRequest { ID = id }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);

    public Task RemoveAsync(MemberTarget target, ulong id, CancellationToken cancellationToken) =>
        OnLeaderAsync(target, c => new Cluster.ClusterClient(c).MemberRemoveAsync(new MemberRemoveRequest { ID = id }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);

    public Task MoveLeaderAsync(MemberTarget target, ulong toId, CancellationToken cancellationToken) =>
        OnLeaderAsync(target, c => new Maintenance.MaintenanceClient(c).MoveLeaderAsync(new MoveLeaderRequest { TargetID = toId }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);

    public async Task<int> SetTimingAsync(MemberTarget target, RaftTiming timing, CancellationToken cancellationToken)
    {
        var wire = new Timing
        {
            HeartbeatIntervalMs = (uint)RaftTiming.FlagMilliseconds(timing.HeartbeatInterval),
            ElectionTimeoutMs = (uint)RaftTiming.FlagMilliseconds(timing.ElectionTimeout),
        };
        var results = await Task.WhenAll(target.Endpoints.Select(e => TryAsync(target, e,
            c => new Admin.AdminClient(c).SetTimingAsync(new SetTimingRequest { Timing = wire }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync)));
        return results.Count(r => r is not null);
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }

        _channels.Clear();
    }

    /// <summary>The member's ordinal: from its name (the pod name), else from its first peer URL's host (POD.NAME-peers...).</summary>
    internal static int? OrdinalOf(ClusterNames names, Member member)
    {
        if (!string.IsNullOrEmpty(member.Name) && names.OrdinalOf(member.Name) is { } byName)
        {
            return byName;
        }

        foreach (var url in member.PeerURLs)
        {
            if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && names.OrdinalOf(uri.Host.Split('.')[0]) is { } byHost)
            {
                return byHost;
            }
        }

        return null;
    }

    private static TimeSpan? RttFromLeader(List<MeasurementsResponse> reported, ulong leaderId, ulong memberId)
    {
        var leader = reported.FirstOrDefault(m => m.MemberId == leaderId);
        var peer = leader?.Peers.FirstOrDefault(p => p.MemberId == memberId && p.Rtt is { Count: > 0 });
        return peer is null ? null : Seconds(peer.Rtt.P50Seconds);
    }

    private static TimeSpan Seconds(double seconds) => TimeSpan.FromSeconds(Math.Max(0, seconds));

    private DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    /// <summary>Run a cluster change on the leader (any member forwards, but the leader answers first-hand); falls back to each member in turn.</summary>
    private async Task<T> OnLeaderAsync<T>(MemberTarget target, Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken)
    {
        var observation = await Task.WhenAll(target.Endpoints.Select(async e => (Endpoint: e, Status: await TryAsync(target, e,
            c => new Maintenance.MaintenanceClient(c).StatusAsync(new StatusRequest(), deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync))));
        var ordered = observation
            .OrderByDescending(o => o.Status is { } s && s.Leader != 0 && s.Leader == s.Header.MemberId)
            .ThenByDescending(o => o.Status is not null)
            .Select(o => o.Endpoint)
            .ToList();
        RpcException? last = null;
        foreach (var endpoint in ordered)
        {
            try
            {
                return await call(Channel(target, endpoint));
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                last = e;
            }
        }

        throw new InvalidOperationException(
            $"no member of {target.Names.Name} could be reached ({target.Endpoints.Count} pod address(es) tried): {last?.Status.Detail ?? "no address"}", last);
    }

    private async Task<T?> TryAsync<T>(MemberTarget target, MemberEndpoint endpoint, Func<GrpcChannel, Task<T>> call)
        where T : class
    {
        try
        {
            return await call(Channel(target, endpoint));
        }
        catch (RpcException e)
        {
            LogCallFailed(endpoint.Address, e.StatusCode, e.Status.Detail);
            return null;
        }
        catch (HttpRequestException e)
        {
            LogCallFailed(endpoint.Address, StatusCode.Unavailable, e.Message);
            return null;
        }
    }

    /// <summary>
    /// The channel to one member, kept per address and credentials version: a rotated Secret gets new connections and
    /// the old channel to that address is disposed.
    /// </summary>
    private GrpcChannel Channel(MemberTarget target, MemberEndpoint endpoint)
    {
        var credentials = target.Credentials;
        var key = credentials is null ? endpoint.Address : $"{endpoint.Address} {credentials.Version}";
        if (_channels.TryGetValue(key, out var channel))
        {
            return channel;
        }

        var created = _channels.GetOrAdd(key, _ => credentials is null
            ? GrpcChannel.ForAddress(endpoint.Address)
            : GrpcChannel.ForAddress(endpoint.Address, new GrpcChannelOptions { HttpHandler = TlsHandler(credentials, target.Names.Host(endpoint.Ordinal)) }));
        foreach (var stale in _channels.Keys.Where(k => k != key && k.StartsWith(endpoint.Address + " ", StringComparison.Ordinal)).ToList())
        {
            if (_channels.TryRemove(stale, out var old))
            {
                old.Dispose();
            }
        }

        return created;
    }

    /// <summary>
    /// TLS to a member by its pod IP: its certificate must chain to the cluster's CA and name the member's stable DNS name
    /// (the IP is not in it); the operator's client certificate is presented when the members require one.
    /// </summary>
    private SocketsHttpHandler TlsHandler(MemberClientCredentials credentials, string host) => new()
    {
        EnableMultipleHttp2Connections = true,
        SslOptions = new SslClientAuthenticationOptions
        {
            ClientCertificates = credentials.ClientCertificate is { } client ? [client] : null,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
                certificate is X509Certificate2 presented && credentials.Accepts(presented, chain, host, time.GetUtcNow()),
        },
    };

    [LoggerMessage(Level = LogLevel.Debug, Message = "Call to member {Address} failed: {Code} {Detail}")]
    private partial void LogCallFailed(string address, StatusCode code, string detail);
}
