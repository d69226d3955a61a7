using Grpc.Core;
using RaftKv.Server.Api;
using Internal = RaftKv.Protocol.Internal;

namespace RaftKv.Server.Cluster;

/// <summary>
/// Where a follower hands the leader what only the leader can answer (a learner promotion, a lease keep-alive or
/// time-to-live): its peer URL, as etcd does (client URLs may listen where peers cannot reach them); its client URL
/// when the leader answers UNIMPLEMENTED there (an older raftkv, which took these only as a client) or has no peer URL.
/// </summary>
internal static class LeaderForwarding
{
    /// <summary>
    /// <paramref name="viaPeerUrl"/> with the leader's first peer URL; on UNIMPLEMENTED, <paramref name="viaClientUrl"/>
    /// with its first client URL. No URL to use: etcd's "no leader" (the caller waits for one).
    /// </summary>
    public static async Task<T> CallAsync<T>(Internal.Member leader, Func<string, Task<T>> viaPeerUrl, Func<string, Task<T>> viaClientUrl)
    {
        if (leader.PeerUrls.FirstOrDefault() is { } peerUrl)
        {
            try
            {
                return await viaPeerUrl(peerUrl).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented && leader.ClientUrls.Count > 0)
            {
                // An older leader: its client URL below.
            }
        }

        return await viaClientUrl(leader.ClientUrls.FirstOrDefault() ?? throw EtcdErrors.NoLeader).ConfigureAwait(false);
    }
}
