namespace RaftKv;

/// <summary>
/// raftkv's exit codes that another program acts on (the operator reads a pod's last exit code). 1 is any other
/// runtime failure, 2 a bad command line.
/// </summary>
internal static class RaftKvExitCodes
{
    /// <summary>
    /// The member's data dir has no WAL, but the running cluster lists the member as started: its data was lost. It must be
    /// removed from the cluster and added again (a member that rejoins without its log could vote twice in one term).
    /// </summary>
    public const int DataDirLost = 3;

    /// <summary>
    /// The initial corruption check (<c>--experimental-initial-corrupt-check</c>) found the member's store different from a peer's
    /// at the same revision and compact revision ("found data inconsistency with peers"): its data is damaged. It must be removed,
    /// its data dir cleared, and added again; the member never served the damaged data.
    /// </summary>
    public const int DataInconsistent = 4;
}
