using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Api;
using RaftKv.Server.Cluster;
using RaftKv.Server.Kv;
using RaftKv.Server.Node;
using RaftKv.Server.Peers;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Leases;

/// <summary>
/// etcd's Lease service. Grant and revoke go through Raft; leases are listed from the local store. Keep-alives and time-to-live
/// need the leader (only it knows expiry times): a follower forwards them to the leader's peer URL as etcd does (client URLs may
/// be out of peers' reach), marked as forwarded so the leader never forwards them again; the peer port takes these two calls only
/// when so marked. A leader of an older version, which answers them on its client URL only, gets them there.
/// </summary>
internal sealed class LeaseService : Lease.LeaseBase, IDisposable
{
    /// <summary>Metadata on a call a member forwarded to the leader.</summary>
    public const string ForwardedHeader = "raftkv-lease-forwarded";

    private readonly RaftMember _member;

    /// <summary>Stamps grants and revokes with the caller (a revoke needs WRITE on every attached key when auth is enabled).</summary>
    public required Auth.AuthGate Gate { get; init; }
    private readonly KvStateMachine _kv;
    private readonly Lessor _lessor;
    private readonly Headers _headers;
    private readonly LeaseMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly MemberTls? _clientTls;
    private readonly MemberTls? _peerTls;
    private readonly LeaseIdGenerator _ids;
    private readonly Lock _channelsLock = new();
    private readonly Dictionary<string, GrpcChannel> _channels = [];

    public LeaseService(RaftMember member, KvStateMachine kv, Lessor lessor, Headers headers, LeaseMetrics metrics, TimeProvider time, MemberTls? clientTls = null,
        MemberTls? peerTls = null)
    {
        _peerTls = peerTls;
        _member = member;
        _kv = kv;
        _lessor = lessor;
        _headers = headers;
        _metrics = metrics;
        _time = time;
        _clientTls = clientTls;
        _ids = new LeaseIdGenerator(member.MemberId, time);
    }

    /// <summary>
    /// etcd's minimum lease TTL: long enough to survive a leader election, ceil((3 × election ticks / 2) × heartbeat) seconds.
    /// A grant asking for less gets this.
    /// </summary>
    public static long MinTtlSeconds(int heartbeatMs, int electionMs)
    {
        var ticks = RaftMember.ElectionTicks(heartbeatMs, electionMs);
        return (long)Math.Ceiling(3 * ticks / 2 * heartbeatMs / 1000.0);
    }

    public override async Task<LeaseGrantResponse> LeaseGrant(LeaseGrantRequest request, ServerCallContext context)
    {
        if (request.TTL > S.MvccStore.MaxLeaseTtl)
        {
            throw EtcdErrors.LeaseTtlTooLarge;
        }

        if (_kv.Store.NoSpaceAlarm)
        {
            throw EtcdErrors.NoSpace;
        }

        var (heartbeatMs, electionMs) = _member.Timing;
        var grant = new LeaseGrantRequest { ID = request.ID, TTL = Math.Max(request.TTL, MinTtlSeconds(heartbeatMs, electionMs)) };
        while (grant.ID == 0 || (request.ID == 0 && _kv.Store.GetLease(grant.ID) is not null))
        {
            grant.ID = _ids.Next();
        }

        var proposal = await Gate.StampAsync(new InternalRequest { LeaseGrant = grant }, context).ConfigureAwait(false);
        var result = (S.LeaseGrantResponse)(await _member.ProposeAsync(proposal, context.CancellationToken).ConfigureAwait(false))!;
        return new LeaseGrantResponse { Header = _headers.Make(result.Revision), ID = result.Id, TTL = result.Ttl };
    }

    public override async Task<LeaseRevokeResponse> LeaseRevoke(LeaseRevokeRequest request, ServerCallContext context)
    {
        // Checked when applied: the caller must be allowed to write every key attached to the lease (etcd's checkLeasePuts).
        var proposal = await Gate.StampAsync(new InternalRequest { LeaseRevoke = request.Clone() }, context).ConfigureAwait(false);
        var result = (S.LeaseRevokeResponse)(await _member.ProposeAsync(proposal, context.CancellationToken).ConfigureAwait(false))!;
        return new LeaseRevokeResponse { Header = _headers.Make(result.Revision) };
    }

    public override async Task LeaseKeepAlive(IAsyncStreamReader<LeaseKeepAliveRequest> requestStream, IServerStreamWriter<LeaseKeepAliveResponse> responseStream,
        ServerCallContext context)
    {
        var forwarded = IsForwarded(context);
        var ct = context.CancellationToken;
        while (await requestStream.MoveNext(ct).ConfigureAwait(false))
        {
            var id = requestStream.Current.ID;
            var ttl = await OnLeaderAsync(() => RenewHereAsync(id, ct), leader => RenewOnLeaderAsync(leader, id, ct), forwarded, ct).ConfigureAwait(false);
            await responseStream.WriteAsync(new LeaseKeepAliveResponse { Header = _headers.Make(), ID = id, TTL = ttl }, ct).ConfigureAwait(false);
        }
    }

    public override async Task<LeaseTimeToLiveResponse> LeaseTimeToLive(LeaseTimeToLiveRequest request, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var response = await OnLeaderAsync(() => TimeToLiveHereAsync(request, ct), leader => TimeToLiveOnLeaderAsync(leader, request, ct), IsForwarded(context), ct)
            .ConfigureAwait(false);
        response.Header = _headers.Make();
        return response;
    }

    public override Task<LeaseLeasesResponse> LeaseLeases(LeaseLeasesRequest request, ServerCallContext context)
    {
        var response = new LeaseLeasesResponse { Header = _headers.Make() };
        response.Leases.AddRange(_kv.Store.Leases().Select(l => new LeaseStatus { ID = l.Id }));
        return Task.FromResult(response);
    }

    private static bool IsForwarded(ServerCallContext context) => context.RequestHeaders.Get(ForwardedHeader) is not null;

    private bool IsLeader => _lessor.IsPrimary && _member.Leader == _member.MemberId;

    /// <summary>
    /// Runs <paramref name="local"/> when this member leads, else <paramref name="remote"/> against the leader, retrying across
    /// leader changes until etcd's request timeout. A forwarded call that finds no leader here fails (its sender retries).
    /// </summary>
    private async Task<T> OnLeaderAsync<T>(Func<Task<T>> local, Func<ulong, Task<T>> remote, bool forwarded, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        while (true)
        {
            if (IsLeader)
            {
                return await local().ConfigureAwait(false);
            }

            if (forwarded)
            {
                throw EtcdErrors.NotLeader;
            }

            var leader = _member.Leader;
            if (leader != 0 && leader != _member.MemberId)
            {
                try
                {
                    return await remote(leader).ConfigureAwait(false);
                }
                catch (RpcException) when (!ct.IsCancellationRequested && _time.GetElapsedTime(started) < _member.RequestTimeout)
                {
                    // leader changed, not reachable, or not serving yet: look again
                }
            }

            if (_time.GetElapsedTime(started) >= _member.RequestTimeout)
            {
                throw leader == 0 ? EtcdErrors.NoLeader : EtcdErrors.Timeout;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(_member.Timing.HeartbeatMs), _time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The lease as the store has it; if missing, after this member applied everything committed (it may be a new leader behind).</summary>
    private async Task<S.LeaseInfo?> FindAppliedAsync(long id, CancellationToken ct)
    {
        if (_kv.Store.GetLease(id) is { } lease)
        {
            return lease;
        }

        await _member.ReadBarrierAsync(ct).ConfigureAwait(false);
        return _kv.Store.GetLease(id);
    }

    private async Task<long> RenewHereAsync(long id, CancellationToken ct)
    {
        if (await FindAppliedAsync(id, ct).ConfigureAwait(false) is not { } lease)
        {
            return 0; // etcd answers a keep-alive for an unknown lease with TTL 0
        }

        var ttl = _lessor.Renew(id, lease.Ttl) ?? throw EtcdErrors.NotLeader;
        if (ttl > 0)
        {
            _metrics.Renewed.Inc();
        }

        return ttl;
    }

    private async Task<LeaseTimeToLiveResponse> TimeToLiveHereAsync(LeaseTimeToLiveRequest request, CancellationToken ct)
    {
        if (await FindAppliedAsync(request.ID, ct).ConfigureAwait(false) is not { } lease)
        {
            return new LeaseTimeToLiveResponse { ID = request.ID, TTL = -1 }; // etcd: not found is TTL -1, not an error
        }

        var response = new LeaseTimeToLiveResponse
        {
            ID = request.ID,
            TTL = _lessor.RemainingSeconds(request.ID, lease.Ttl) ?? throw EtcdErrors.NotLeader,
            GrantedTTL = lease.Ttl,
        };
        if (request.Keys)
        {
            response.Keys.AddRange(lease.Keys.Select(Google.Protobuf.ByteString.CopyFrom));
        }

        return response;
    }

    private Task<long> RenewOnLeaderAsync(ulong leader, long id, CancellationToken ct) =>
        OnLeaderUrlAsync(leader, channel => RenewAsync(channel, id, ct));

    private async Task<long> RenewAsync(GrpcChannel channel, long id, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_member.RequestTimeout);
        using var call = new Lease.LeaseClient(channel).LeaseKeepAlive(Forwarded, cancellationToken: timeout.Token);
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = id }, timeout.Token).ConfigureAwait(false);
        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
        if (!await call.ResponseStream.MoveNext(timeout.Token).ConfigureAwait(false))
        {
            throw EtcdErrors.LeaderChanged;
        }

        return call.ResponseStream.Current.TTL;
    }

    private Task<LeaseTimeToLiveResponse> TimeToLiveOnLeaderAsync(ulong leader, LeaseTimeToLiveRequest request, CancellationToken ct) =>
        OnLeaderUrlAsync(leader, async channel => await new Lease.LeaseClient(channel)
            .LeaseTimeToLiveAsync(request, Forwarded, _time.GetUtcNow().UtcDateTime + _member.RequestTimeout, ct).ConfigureAwait(false));

    private static Metadata Forwarded => new() { { ForwardedHeader, "1" } };

    /// <summary><paramref name="call"/> on the leader, where <see cref="LeaderForwarding"/> says (an older leader's peer port serves no lease calls).</summary>
    private Task<T> OnLeaderUrlAsync<T>(ulong leader, Func<GrpcChannel, Task<T>> call) =>
        LeaderForwarding.CallAsync(_member.Membership.Get(leader) ?? throw EtcdErrors.NoLeader,
            peerUrl => call(ChannelTo(peerUrl, _peerTls)), clientUrl => call(ChannelTo(clientUrl, _clientTls)));

    private GrpcChannel ChannelTo(string url, MemberTls? tls)
    {
        lock (_channelsLock)
        {
            if (!_channels.TryGetValue(url, out var channel))
            {
                _channels[url] = channel = HostsFileResolver.Process.Channel(url, tls);
            }

            return channel;
        }
    }

    public void Dispose()
    {
        lock (_channelsLock)
        {
            foreach (var channel in _channels.Values)
            {
                channel.Dispose();
            }

            _channels.Clear();
        }
    }
}

/// <summary>etcd's request id generator, used for lease ids: member id bits, milliseconds at start, then a counter; never negative or 0.</summary>
internal sealed class LeaseIdGenerator
{
    private long _next;

    public LeaseIdGenerator(ulong memberId, TimeProvider time)
    {
        var prefix = (memberId & 0xffff) << 48;
        var suffix = ((ulong)time.GetUtcNow().ToUnixTimeMilliseconds() << 8) & 0xffff_ffff_ffff;
        _next = (long)(prefix | suffix);
    }

    public long Next()
    {
        long id;
        do
        {
            id = Interlocked.Increment(ref _next) & long.MaxValue;
        }
        while (id == 0);

        return id;
    }
}
