using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Raft;
using RaftKv.Server.Cluster;
using RaftKv.Server.Node;
using RaftKv.Server.Peers;
using Internal = RaftKv.Protocol.Internal;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Api;

/// <summary>etcd's Cluster service: membership through Raft with etcd's checks (strict reconfiguration, one learner, promotion when caught up).</summary>
internal sealed class ClusterService : RaftKv.Protocol.Etcd.Cluster.ClusterBase
{
    /// <summary>etcd allows this many learners at a time.</summary>
    public const int MaxLearners = 1;

    /// <summary>A learner is ready for promotion when its log matches at least this share of the leader's.</summary>
    public const double LearnerReadyPercent = 0.9;

    private readonly RaftMember _member;
    private readonly Headers _headers;
    private readonly TimeProvider _time;
    private readonly MemberTls? _clientTls;
    private readonly MemberTls? _peerTls;
    private readonly Auth.AuthGate? _gate;

    /// <param name="member">The member whose membership this serves.</param>
    /// <param name="headers">Response headers.</param>
    /// <param name="time">Clock for waits within a request's timeout.</param>
    /// <param name="clientTls">TLS of the client URLs (a promotion forwarded to a leader of an older version goes there).</param>
    /// <param name="peerTls">TLS of the peer URLs (where a follower forwards a promotion to the leader).</param>
    /// <param name="gate">With auth enabled, member add, remove, update and promote need the root role (etcd's checkMembershipOperationPermission).</param>
    public ClusterService(RaftMember member, Headers headers, TimeProvider time, MemberTls? clientTls = null, MemberTls? peerTls = null, Auth.AuthGate? gate = null)
    {
        _gate = gate;
        _clientTls = clientTls;
        _peerTls = peerTls;
        _member = member;
        _headers = headers;
        _time = time;
    }

    public override async Task<MemberListResponse> MemberList(MemberListRequest request, ServerCallContext context)
    {
        if (request.Linearizable)
        {
            await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
        }

        var response = new MemberListResponse { Header = _headers.Make() };
        response.Members.AddRange(Members());
        return response;
    }

    public override async Task<MemberAddResponse> MemberAdd(MemberAddRequest request, ServerCallContext context)
    {
        await RequireRootAsync(context).ConfigureAwait(false);
        var urls = ValidateUrls(request.PeerURLs);
        var members = _member.Membership.List();
        if (members.Any(m => m.PeerUrls.Intersect(urls, StringComparer.Ordinal).Any()))
        {
            throw EtcdErrors.PeerUrlExists;
        }

        if (request.IsLearner)
        {
            if (members.Sum(m => m.IsLearner ? 1 : 0) >= MaxLearners)
            {
                throw EtcdErrors.TooManyLearners;
            }
        }
        else
        {
            var voters = members.Count(m => !m.IsLearner) + 1;
            if (StartedVoters(members) < (voters / 2) + 1)
            {
                throw EtcdErrors.MemberNotEnoughStarted;
            }
        }

        var id = MemberIds.ComputeMemberId(urls, "", _time.GetUtcNow());
        if (members.Any(m => m.Id == id) || _member.Membership.IsRemoved(id))
        {
            throw EtcdErrors.MemberExists;
        }

        var added = new Internal.Member { Id = id, IsLearner = request.IsLearner };
        added.PeerUrls.AddRange(urls);
        await _member.ProposeConfChangeAsync(request.IsLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, added, context.CancellationToken)
            .ConfigureAwait(false);
        var response = new MemberAddResponse { Header = _headers.Make(), Member = ToEtcd(added) };
        response.Members.AddRange(Members());
        return response;
    }

    public override async Task<MemberRemoveResponse> MemberRemove(MemberRemoveRequest request, ServerCallContext context)
    {
        await RequireRootAsync(context).ConfigureAwait(false);
        var target = await FindMemberAsync(request.ID, context.CancellationToken).ConfigureAwait(false);
        if (!target.IsLearner)
        {
            var members = _member.Membership.List();
            var remainingVoters = members.Count(m => !m.IsLearner) - 1;
            var startedAfter = StartedVoters(members) - (IsStarted(target) ? 1 : 0);
            if (remainingVoters > 0 && startedAfter < (remainingVoters / 2) + 1)
            {
                throw EtcdErrors.MemberNotEnoughStarted;
            }
        }

        await _member.ProposeConfChangeAsync(ConfChangeType.RemoveNode, target, context.CancellationToken).ConfigureAwait(false);
        var response = new MemberRemoveResponse { Header = _headers.Make() };
        response.Members.AddRange(Members());
        return response;
    }

    public override async Task<MemberUpdateResponse> MemberUpdate(MemberUpdateRequest request, ServerCallContext context)
    {
        await RequireRootAsync(context).ConfigureAwait(false);
        var urls = ValidateUrls(request.PeerURLs);
        _ = await FindMemberAsync(request.ID, context.CancellationToken).ConfigureAwait(false);
        if (_member.Membership.List().Any(m => m.Id != request.ID && m.PeerUrls.Intersect(urls, StringComparer.Ordinal).Any()))
        {
            throw EtcdErrors.PeerUrlExists;
        }

        var update = new Internal.MemberUpdate { Id = request.ID };
        update.PeerUrls.AddRange(urls);
        await _member.ProposeAsync(new Internal.InternalRequest { MemberUpdate = update }, context.CancellationToken).ConfigureAwait(false);
        var response = new MemberUpdateResponse { Header = _headers.Make() };
        response.Members.AddRange(Members());
        return response;
    }

    private Task RequireRootAsync(ServerCallContext context) => _gate?.RequireRootAsync(context) ?? Task.CompletedTask;

    public override async Task<MemberPromoteResponse> MemberPromote(MemberPromoteRequest request, ServerCallContext context)
    {
        await RequireRootAsync(context).ConfigureAwait(false);
        // Only the leader knows whether a learner caught up, so a follower forwards to it, before looking the member up: it
        // may not have applied the member's addition yet (the leader answered that add). As etcd does, a member that knows no
        // leader (an election, a hand-over, or its own slow disk holding back what it heard) waits for one, and a forward that
        // reached no leader is tried again, both within one request timeout; only then is the answer "no leader".
        var ct = context.CancellationToken;
        var deadline = _time.GetUtcNow() + _member.RequestTimeout;
        while (true)
        {
            var leader = await WaitForLeaderAsync(deadline, ct).ConfigureAwait(false) ?? throw EtcdErrors.NoLeader;
            if (leader.Id == _member.MemberId)
            {
                // Null: stepped down between the two looks; ask whoever leads now.
                if (await PromoteAsLeaderAsync(request, ct).ConfigureAwait(false) is { } promoted)
                {
                    return promoted;
                }
            }
            else
            {
                try
                {
                    return await ForwardPromoteAsync(leader, request, deadline, ct).ConfigureAwait(false);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded && !ct.IsCancellationRequested)
                {
                    throw EtcdErrors.Timeout;
                }
                catch (RpcException e) when (ReachedNoLeader(e) && !ct.IsCancellationRequested)
                {
                    // Nothing changed; try again.
                }
            }

            // Let the cluster move on (an election, a hand-over) before asking again.
            if (!await PauseAsync(deadline, ct).ConfigureAwait(false))
            {
                throw EtcdErrors.Timeout;
            }
        }
    }

    /// <summary>The leader's part of a promotion; null when this member turned out not to be the leader any more.</summary>
    private async Task<MemberPromoteResponse?> PromoteAsLeaderAsync(MemberPromoteRequest request, CancellationToken cancellationToken)
    {
        var status = await _member.StatusAsync().ConfigureAwait(false);
        if (status.SoftState.Role != StateRole.Leader)
        {
            return null;
        }

        var target = _member.Membership.Get(request.ID) ?? throw EtcdErrors.MemberNotFound;
        if (!target.IsLearner)
        {
            throw EtcdErrors.MemberNotLearner;
        }

        var leaderMatch = status.Progress.TryGetValue(_member.MemberId, out var own) ? own.Match : status.LastIndex;
        if (!status.Progress.TryGetValue(request.ID, out var progress) || progress.Match < leaderMatch * LearnerReadyPercent)
        {
            throw EtcdErrors.LearnerNotReady;
        }

        var promoted = target.Clone();
        promoted.IsLearner = false;
        await _member.ProposeConfChangeAsync(ConfChangeType.AddNode, promoted, cancellationToken).ConfigureAwait(false);
        var response = new MemberPromoteResponse { Header = _headers.Make() };
        response.Members.AddRange(Members());
        return response;
    }

    /// <summary>
    /// A promotion forwarded by a follower over the peer URLs (<see cref="PeerService"/>): the leader's part only. A member that
    /// is not the leader (any more) says so with etcd's text, and the follower asks again once it knows the new leader.
    /// </summary>
    public async Task<MemberPromoteResponse> PromoteForwardedAsync(MemberPromoteRequest request, CancellationToken cancellationToken) =>
        await PromoteAsLeaderAsync(request, cancellationToken).ConfigureAwait(false) ?? throw EtcdErrors.NotLeader;

    /// <summary>
    /// Hands the request to the leader where <see cref="LeaderForwarding"/> says (its peer URL: the Peer.Promote call; an older
    /// leader's client URL: etcd's MemberPromote); the leader's answer, success or refusal, is the answer.
    /// </summary>
    private Task<MemberPromoteResponse> ForwardPromoteAsync(Internal.Member leader, MemberPromoteRequest request, DateTimeOffset deadline,
        CancellationToken cancellationToken) =>
        LeaderForwarding.CallAsync(
            leader,
            async peerUrl =>
            {
                using var channel = HostsFileResolver.Process.Channel(peerUrl, _peerTls);
                return await new Wire.Peer.PeerClient(channel).PromoteAsync(
                    new Wire.PromoteRequest { ClusterId = _member.ClusterId, From = _member.MemberId, Request = request },
                    deadline: deadline.UtcDateTime, cancellationToken: cancellationToken).ConfigureAwait(false);
            },
            async clientUrl =>
            {
                using var channel = HostsFileResolver.Process.Channel(clientUrl, _clientTls);
                return await new RaftKv.Protocol.Etcd.Cluster.ClusterClient(channel).MemberPromoteAsync(
                    request, deadline: deadline.UtcDateTime, cancellationToken: cancellationToken).ConfigureAwait(false);
            });

    /// <summary>
    /// A forwarded promotion that certainly changed nothing because it met no leader: the member was unreachable (stopped,
    /// restarting), or answered that it knows no leader, is not the leader, or is handing over (its proposal was dropped
    /// before it was appended). Anything else (a timeout: the change may still commit) is the answer.
    /// </summary>
    private static bool ReachedNoLeader(RpcException e) =>
        (e.StatusCode == StatusCode.Unavailable && !e.Status.Detail.StartsWith("etcdserver: ", StringComparison.Ordinal))
        || e.Status.Detail == EtcdErrors.NoLeader.Status.Detail
        || e.Status.Detail == EtcdErrors.NotLeader.Status.Detail
        || e.Status.Detail == EtcdErrors.LeaderChanged.Status.Detail;

    /// <summary>
    /// The leader this member knows (with a URL to forward to), waiting for one up to <paramref name="deadline"/>;
    /// null when none appeared in time.
    /// </summary>
    private async Task<Internal.Member?> WaitForLeaderAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        while (true)
        {
            var leader = _member.Leader;
            if (leader != 0 && _member.Membership.Get(leader) is { } known && (leader == _member.MemberId || known.PeerUrls.Count > 0 || known.ClientUrls.Count > 0))
            {
                return known;
            }

            if (!await PauseAsync(deadline, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }
        }
    }

    /// <summary>Waits half a heartbeat (at least 10 ms); false when <paramref name="deadline"/> has passed.</summary>
    private async Task<bool> PauseAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var left = deadline - _time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            return false;
        }

        var pause = TimeSpan.FromMilliseconds(Math.Max(10, _member.Timing.HeartbeatMs / 2));
        await Task.Delay(pause < left ? pause : left, _time, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The member with <paramref name="id"/>, or etcd's "member not found". A member this one does not know yet may have been
    /// added by a change it has not applied (a client that added it through the leader and now asks a lagging follower): before
    /// answering "not found" it waits until everything committed so far is applied (a read barrier) and looks again.
    /// </summary>
    private async Task<Internal.Member> FindMemberAsync(ulong id, CancellationToken cancellationToken)
    {
        if (_member.Membership.Get(id) is { } known)
        {
            return known;
        }

        await _member.ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
        return _member.Membership.Get(id) ?? throw EtcdErrors.MemberNotFound;
    }

    private List<RaftKv.Protocol.Etcd.Member> Members() => [.. _member.Membership.List().Select(ToEtcd)];

    private int StartedVoters(IReadOnlyList<Internal.Member> members) => members.Count(m => !m.IsLearner && IsStarted(m));

    /// <summary>etcd's "started": this member, or a peer we currently hold a connection to.</summary>
    private bool IsStarted(Internal.Member m) =>
        m.Id == _member.MemberId || _member.Transport.Describe().Any(p => p.Id == m.Id && p.Connected);

    private static List<string> ValidateUrls(IEnumerable<string> urls)
    {
        var list = urls.ToList();
        if (list.Count == 0)
        {
            throw EtcdErrors.MemberBadUrls;
        }

        foreach (var u in list)
        {
            if (!Uri.TryCreate(u, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port <= 0
                || (uri.AbsolutePath.Length > 1) || uri.Query.Length > 0)
            {
                throw EtcdErrors.MemberBadUrls;
            }
        }

        return list;
    }

    public static RaftKv.Protocol.Etcd.Member ToEtcd(Internal.Member m)
    {
        var e = new RaftKv.Protocol.Etcd.Member { ID = m.Id, Name = m.Name, IsLearner = m.IsLearner };
        e.PeerURLs.AddRange(m.PeerUrls);
        e.ClientURLs.AddRange(m.ClientUrls);
        return e;
    }
}
