using Grpc.Core;
using Microsoft.Extensions.Logging;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Api;
using RaftKv.Server.Peers;
using RaftKv.Storage.Mvcc;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Node;

/// <summary>Why a peer gave no hash.</summary>
internal enum PeerHashFailure
{
    None,

    /// <summary>The peer compacted beyond the revision asked for (the asking member is behind).</summary>
    Compacted,

    /// <summary>The peer has not reached the revision asked for yet (it is behind).</summary>
    FutureRevision,

    /// <summary>No answer from any of its peer URLs (down, starting, or cut off).</summary>
    Unreachable,
}

/// <summary>One peer's HashKV at the revision asked for, or why there is none.</summary>
internal sealed record PeerHash(ulong PeerId, IReadOnlyList<string> Urls, Wire.HashKVResponse? Response, PeerHashFailure Failure, string Error);

/// <summary>What one peer's hash says about the local store.</summary>
internal enum PeerVerdict
{
    /// <summary>Same hash.</summary>
    Match,

    /// <summary>Same revision and compact revision, different hash: the two stores hold different data.</summary>
    Mismatch,

    /// <summary>Different hash, but the peer compacted at another revision, so the hashes are not comparable.</summary>
    CompactRevisionDiffers,

    /// <summary>The peer has not reached the local revision.</summary>
    PeerBehind,

    /// <summary>The peer compacted beyond the local revision.</summary>
    LocalBehind,

    Unreachable,
}

/// <summary>
/// etcd's initial corruption check (<c>--experimental-initial-corrupt-check</c>, etcd's <c>CheckInitialHashKV</c>): before a
/// restarting member serves anyone, it asks every peer for HashKV at its own store's revision. A peer that answers with the same
/// compact revision and another hash means the local store differs from the cluster's (LMDB keeps no checksums, so a damaged
/// value is found here or not at all): the member refuses to start. Peers that are down, behind, or compacted beyond the local
/// revision are logged and skipped, as etcd does.
/// </summary>
internal static partial class CorruptionCheck
{
    /// <summary>etcd's request timeout: 5 s plus two election timeouts.</summary>
    public static TimeSpan RequestTimeout(int electionMs) => TimeSpan.FromSeconds(5) + TimeSpan.FromMilliseconds(2L * electionMs);

    /// <summary>Compares the local hash with one peer's answer (etcd's rule: only a different hash at the same compact revision is a mismatch).</summary>
    public static PeerVerdict Judge(HashKvResponse local, PeerHash peer)
    {
        if (peer.Response is not { } r)
        {
            return peer.Failure switch
            {
                PeerHashFailure.Compacted => PeerVerdict.LocalBehind,
                PeerHashFailure.FutureRevision => PeerVerdict.PeerBehind,
                _ => PeerVerdict.Unreachable,
            };
        }

        if (r.Hash == local.Hash)
        {
            return PeerVerdict.Match;
        }

        return r.CompactRevision == local.CompactRevision ? PeerVerdict.Mismatch : PeerVerdict.CompactRevisionDiffers;
    }

    /// <summary>
    /// Runs the check for a restarting member; returns when the store agrees with every peer that could answer, throws
    /// <see cref="MemberStartException"/> with <see cref="RaftKvExitCodes.DataInconsistent"/> when one disagrees.
    /// </summary>
    public static async Task CheckInitialAsync(ulong clusterId, ulong memberId, HashKvResponse local, IReadOnlyList<Member> peers, MemberTls? peerTls,
        TimeSpan timeout, ILogger logger, CancellationToken cancellationToken)
    {
        LogStarting(logger, memberId, timeout);
        if (peers.Count == 0)
        {
            LogNoPeers(logger, memberId);
            return;
        }

        var answers = await FetchAsync(clusterId, memberId, local.HashRevision, peers, peerTls, timeout, cancellationToken).ConfigureAwait(false);
        var mismatches = new List<PeerHash>();
        foreach (var peer in answers)
        {
            var urls = string.Join(',', peer.Urls);
            switch (Judge(local, peer))
            {
                case PeerVerdict.Mismatch:
                    LogDifferentHash(logger, memberId, local.HashRevision, local.CompactRevision, local.Hash, peer.PeerId, urls, peer.Response!.HashRevision, peer.Response.CompactRevision, peer.Response.Hash);
                    mismatches.Add(peer);
                    break;
                case PeerVerdict.CompactRevisionDiffers:
                    LogDifferentCompactRevision(logger, memberId, local.HashRevision, local.CompactRevision, local.Hash, peer.PeerId, urls, peer.Response!.HashRevision, peer.Response.CompactRevision, peer.Response.Hash);
                    break;
                case PeerVerdict.PeerBehind:
                    LogPeerBehind(logger, memberId, local.HashRevision, local.CompactRevision, local.Hash, peer.PeerId, urls, peer.Error);
                    break;
                case PeerVerdict.LocalBehind:
                    LogLocalBehind(logger, memberId, local.HashRevision, local.CompactRevision, local.Hash, peer.PeerId, urls, peer.Error);
                    break;
                case PeerVerdict.Unreachable:
                    LogUnreachable(logger, memberId, local.HashRevision, peer.PeerId, urls, peer.Error);
                    break;
                case PeerVerdict.Match:
                    break;
            }
        }

        if (mismatches.Count > 0)
        {
            var peersSaid = string.Join("; ", mismatches.Select(p => $"peer {p.PeerId:x} has hash {p.Response!.Hash}"));
            throw new MemberStartException(
                $"{memberId:x} found data inconsistency with peers: local member {memberId:x} has hash {local.Hash} at revision {local.HashRevision} " +
                $"(compact revision {local.CompactRevision}), {peersSaid} at the same revision and compact revision. The member's store differs from " +
                $"the cluster's (a damaged file: LMDB keeps no checksums) and was not served. Remove the member (etcdctl member remove {memberId:x}), " +
                "move its data dir away, and add it back with an empty data dir (etcdctl member add, --initial-cluster-state=existing); it gets the " +
                "data from the leader. --experimental-initial-corrupt-check=false skips this check (the member would then serve what its store holds)",
                exitCode: RaftKvExitCodes.DataInconsistent);
        }

        var answered = answers.Count(a => a.Response is not null);
        LogPassed(logger, memberId, answered, peers.Count);
    }

    /// <summary>
    /// etcd's periodic check (<c>checkHashKV</c>) as the leader judges it: <paramref name="before"/> is the leader's hash when it asked
    /// the peers, <paramref name="after"/> its hash once it applied everything committed by then (a read barrier). Returns the members
    /// to raise the CORRUPT alarm for, with why: the leader itself if its own hash changed at the same revision, a peer that is ahead
    /// of the leader in revision or compaction, or a peer with the leader's old compact revision and another hash.
    /// </summary>
    public static IReadOnlyList<(ulong MemberId, string Why)> JudgeCluster(ulong leaderId, HashKvResponse before, HashKvResponse after, IReadOnlyList<PeerHash> peers)
    {
        var found = new List<(ulong, string)>();
        if (after.Hash != before.Hash && after.Revision == before.Revision && after.CompactRevision == before.CompactRevision)
        {
            found.Add((leaderId, $"found hash mismatch: hash {before.Hash} then {after.Hash} at revision {before.Revision}, compact revision {before.CompactRevision}"));
        }

        foreach (var peer in peers)
        {
            if (peer.Response is not { } r)
            {
                continue;
            }

            if (r.Revision > after.Revision)
            {
                found.Add((peer.PeerId, $"revision from follower must be less than or equal to leader's (leader-revision {after.Revision}, follower-revision {r.Revision})"));
            }

            if (r.CompactRevision > after.CompactRevision)
            {
                found.Add((peer.PeerId, $"compact revision from follower must be less than or equal to leader's (leader-compact-revision {after.CompactRevision}, follower-compact-revision {r.CompactRevision})"));
            }

            if (r.CompactRevision == before.CompactRevision && r.Hash != before.Hash)
            {
                found.Add((peer.PeerId, $"same compact revision then hashes must match (revision {before.HashRevision}, compact revision {r.CompactRevision}, leader-hash {before.Hash}, follower-hash {r.Hash})"));
            }
        }

        return found;
    }

    /// <summary>
    /// One pass of the leader's periodic check: hashes every member at the leader's revision and, on a mismatch, raises etcd's
    /// CORRUPT alarm through Raft (once per pass) for the first member found; from then on the cluster refuses writes with
    /// <c>etcdserver: corrupt cluster</c> until the alarm is disarmed. Returns the members found, with why.
    /// </summary>
    public static async Task<IReadOnlyList<(ulong MemberId, string Why)>> CheckClusterAsync(RaftMember member, MvccStore store, MemberTls? peerTls, ILogger logger,
        CancellationToken cancellationToken)
    {
        var before = store.HashKv(0);
        var peers = member.Membership.List().Where(m => m.Id != member.MemberId).ToList();
        var answers = await FetchAsync(member.ClusterId, member.MemberId, before.HashRevision, peers, peerTls, RequestTimeout(member.Timing.ElectionMs), cancellationToken)
            .ConfigureAwait(false);
        await member.ReadBarrierAsync(cancellationToken).ConfigureAwait(false);
        var after = store.HashKv(0);
        var found = JudgeCluster(member.MemberId, before, after, answers);
        foreach (var (id, why) in found)
        {
            LogClusterMismatch(logger, id, why);
        }

        if (found.Count > 0)
        {
            var alarm = new RaftKv.Protocol.Etcd.AlarmRequest
            {
                Action = RaftKv.Protocol.Etcd.AlarmRequest.Types.AlarmAction.Activate,
                MemberID = found[0].MemberId,
                Alarm = RaftKv.Protocol.Etcd.AlarmType.Corrupt,
            };
            await member.ProposeAsync(new InternalRequest { Alarm = alarm }, cancellationToken).ConfigureAwait(false);
        }

        var answered = answers.Count(a => a.Response is not null);
        LogClusterChecked(logger, answered);
        return found;
    }

    /// <summary>HashKV at <paramref name="revision"/> from every peer in parallel, each through its peer URLs in turn until one answers.</summary>
    public static async Task<IReadOnlyList<PeerHash>> FetchAsync(ulong clusterId, ulong memberId, long revision, IReadOnlyList<Member> peers, MemberTls? peerTls,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var answers = await Task.WhenAll(peers.Select(async peer =>
        {
            var error = "no peer URL";
            var failure = PeerHashFailure.Unreachable;
            foreach (var url in peer.PeerUrls)
            {
                try
                {
                    using var channel = HostsFileResolver.Process.Channel(url, peerTls);
                    var response = await new Wire.Peer.PeerClient(channel)
                        .HashKVAsync(new Wire.HashKVRequest { ClusterId = clusterId, From = memberId, Revision = revision }, deadline: deadline, cancellationToken: cancellationToken)
                        .ConfigureAwait(false);
                    return new PeerHash(peer.Id, [.. peer.PeerUrls], response, PeerHashFailure.None, "");
                }
                catch (RpcException e)
                {
                    error = $"{url}: {e.Status.StatusCode}: {e.Status.Detail}";
                    failure = e.Status.Detail == EtcdErrors.Compacted.Status.Detail ? PeerHashFailure.Compacted
                        : e.Status.Detail == EtcdErrors.FutureRevision.Status.Detail ? PeerHashFailure.FutureRevision
                        : PeerHashFailure.Unreachable;
                    if (failure != PeerHashFailure.Unreachable)
                    {
                        break;
                    }
                }
            }

            return new PeerHash(peer.Id, [.. peer.PeerUrls], null, failure, error);
        })).ConfigureAwait(false);
        return answers;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "corruption check: raising the CORRUPT alarm for member {MemberId:x}: {Why}")]
    private static partial void LogClusterMismatch(ILogger logger, ulong memberId, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "finished peer corruption check (number-of-peers-checked {PeersChecked})")]
    private static partial void LogClusterChecked(ILogger logger, int peersChecked);

    [LoggerMessage(Level = LogLevel.Information, Message = "starting initial corruption check (local-member-id {MemberId:x}, timeout {Timeout})")]
    private static partial void LogStarting(ILogger logger, ulong memberId, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Information, Message = "initial corruption check skipped: member {MemberId:x} knows no peers")]
    private static partial void LogNoPeers(ILogger logger, ulong memberId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "found different hash values from remote peer (local-member-id {MemberId:x}, local-member-revision {Revision}, " +
        "local-member-compact-revision {CompactRevision}, local-member-hash {Hash}, remote-peer-id {PeerId:x}, remote-peer-endpoints {Urls}, " +
        "remote-peer-revision {PeerRevision}, remote-peer-compact-revision {PeerCompactRevision}, remote-peer-hash {PeerHash})")]
    private static partial void LogDifferentHash(ILogger logger, ulong memberId, long revision, long compactRevision, uint hash, ulong peerId, string urls,
        long peerRevision, long peerCompactRevision, uint peerHash);

    [LoggerMessage(Level = LogLevel.Warning, Message = "found different compact revision values from remote peer (local-member-id {MemberId:x}, local-member-revision {Revision}, " +
        "local-member-compact-revision {CompactRevision}, local-member-hash {Hash}, remote-peer-id {PeerId:x}, remote-peer-endpoints {Urls}, " +
        "remote-peer-revision {PeerRevision}, remote-peer-compact-revision {PeerCompactRevision}, remote-peer-hash {PeerHash})")]
    private static partial void LogDifferentCompactRevision(ILogger logger, ulong memberId, long revision, long compactRevision, uint hash, ulong peerId, string urls,
        long peerRevision, long peerCompactRevision, uint peerHash);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot fetch hash from slow remote peer (local-member-id {MemberId:x}, local-member-revision {Revision}, " +
        "local-member-compact-revision {CompactRevision}, local-member-hash {Hash}, remote-peer-id {PeerId:x}, remote-peer-endpoints {Urls}, error {Error})")]
    private static partial void LogPeerBehind(ILogger logger, ulong memberId, long revision, long compactRevision, uint hash, ulong peerId, string urls, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cannot fetch hash from remote peer; local member is behind (local-member-id {MemberId:x}, local-member-revision {Revision}, " +
        "local-member-compact-revision {CompactRevision}, local-member-hash {Hash}, remote-peer-id {PeerId:x}, remote-peer-endpoints {Urls}, error {Error})")]
    private static partial void LogLocalBehind(ILogger logger, ulong memberId, long revision, long compactRevision, uint hash, ulong peerId, string urls, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "failed hash kv request (local-member-id {MemberId:x}, requested-revision {Revision}, remote-peer-id {PeerId:x}, " +
        "remote-peer-endpoints {Urls}, error {Error}); the check goes on without this peer")]
    private static partial void LogUnreachable(ILogger logger, ulong memberId, long revision, ulong peerId, string urls, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "initial corruption checking passed; no corruption (local-member-id {MemberId:x}, {Answered} of {Peers} peer(s) compared)")]
    private static partial void LogPassed(ILogger logger, ulong memberId, int answered, int peers);
}
