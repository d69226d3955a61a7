using RaftKv.Raft;

namespace RaftKv.Server.Node;

/// <summary>
/// Whom a leader that is shutting down hands its leadership to (etcd does the same on a graceful stop), so the cluster does
/// not sit without a leader for an election timeout while the followers notice it is gone.
/// </summary>
internal static class LeadershipHandover
{
    /// <summary>
    /// The voter (not <paramref name="self"/>, not a learner) that the leader heard from recently, holds a peer connection to,
    /// and whose log matches furthest (it can take over soonest); ties go to the lowest id so the choice is deterministic.
    /// None (0) when this member is not the leader or no voter qualifies.
    /// </summary>
    public static ulong ChooseTransferee(RaftStatus status, ulong self, IReadOnlySet<ulong> connectedPeers)
    {
        if (status.SoftState.Leader != self || status.SoftState.Role != StateRole.Leader)
        {
            return 0;
        }

        ulong best = 0;
        ulong bestMatch = 0;
        foreach (var (id, progress) in status.Progress.OrderBy(p => p.Key))
        {
            if (id == self || progress.IsLearner || !progress.RecentActive || !connectedPeers.Contains(id))
            {
                continue;
            }

            if (best == 0 || progress.Match > bestMatch)
            {
                best = id;
                bestMatch = progress.Match;
            }
        }

        return best;
    }
}
