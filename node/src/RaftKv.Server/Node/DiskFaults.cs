namespace RaftKv.Server.Node;

/// <summary>
/// FOR TESTS ONLY: a slow disk. Every save of the member's Raft log waits <see cref="FsyncDelay"/> before it is written
/// and fsynced, so the save completes as late as it would on a disk whose fsync takes that long. Off unless a test sets
/// it (in-process) or the member was started with <c>RAFTKV_ENABLE_TEST_HOOKS=1</c> and the Admin.SetDiskFault RPC was
/// called. Never part of normal operation. Thread-safe.
/// </summary>
internal sealed class DiskFaults
{
    private long _delayTicks;

    /// <summary>The extra time every log save takes, or null when the disk is not slowed down.</summary>
    public TimeSpan? FsyncDelay
    {
        get
        {
            var ticks = Interlocked.Read(ref _delayTicks);
            return ticks > 0 ? TimeSpan.FromTicks(ticks) : null;
        }
        set => Interlocked.Exchange(ref _delayTicks, value is { Ticks: > 0 } d ? d.Ticks : 0);
    }
}
