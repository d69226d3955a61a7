using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Raft;
using RaftKv.Server.Cluster;
using RaftKv.Server.Node;
using RaftKv.Server.Peers;
using Internal = RaftKv.Protocol.Internal;

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

    public ClusterService(RaftMember member, Headers headers, TimeProvider time, MemberTls? clientTls = null)
    {
        _clientTls = clientTls;
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

    public override async Task<MemberPromoteResponse> MemberPromote(MemberPromoteRequest request, ServerCallContext context)
    {
        // A follower forwards before looking the member up: it may not have applied the member's addition yet (the
        // leader answered that add), and would then call a member the cluster has "not found".
        var leader = _member.Leader;
        if (leader == 0)
        {
            throw EtcdErrors.NoLeader;
        }

        if (leader != _member.MemberId)
        {
            return await ForwardPromoteAsync(leader, request, context).ConfigureAwait(false);
        }

        var target = _member.Membership.Get(request.ID) ?? throw EtcdErrors.MemberNotFound;
        if (!target.IsLearner)
        {
            throw EtcdErrors.MemberNotLearner;
        }

        var status = await _member.StatusAsync().ConfigureAwait(false);
        var leaderMatch = status.Progress.TryGetValue(_member.MemberId, out var own) ? own.Match : status.LastIndex;
        if (!status.Progress.TryGetValue(request.ID, out var progress) || progress.Match < leaderMatch * LearnerReadyPercent)
        {
            throw EtcdErrors.LearnerNotReady;
        }

        var promoted = target.Clone();
        promoted.IsLearner = false;
        await _member.ProposeConfChangeAsync(ConfChangeType.AddNode, promoted, context.CancellationToken).ConfigureAwait(false);
        var response = new MemberPromoteResponse { Header = _headers.Make() };
        response.Members.AddRange(Members());
        return response;
    }

    /// <summary>Only the leader knows whether a learner caught up: a follower hands the request to it (as etcd does).</summary>
    private async Task<MemberPromoteResponse> ForwardPromoteAsync(ulong leader, MemberPromoteRequest request, ServerCallContext context)
    {
        var url = _member.Membership.Get(leader)?.ClientUrls.FirstOrDefault() ?? throw EtcdErrors.NoLeader;
        using var channel = HostsFileResolver.Process.Channel(url, _clientTls);
        var client = new RaftKv.Protocol.Etcd.Cluster.ClusterClient(channel);
        return await client.MemberPromoteAsync(request, deadline: DateTime.UtcNow + _member.RequestTimeout, cancellationToken: context.CancellationToken)
            .ConfigureAwait(false);
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
