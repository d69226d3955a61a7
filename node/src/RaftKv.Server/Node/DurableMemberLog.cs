using Microsoft.Extensions.Logging;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Snap;
using RaftKv.Storage.Wal;

namespace RaftKv.Server.Node;

/// <summary>The member's Raft log in its data dir (<c>member/wal</c>, <c>member/snap</c>): every save is fsynced before it completes.</summary>
internal sealed class DurableMemberLog : IMemberLog
{
    private readonly DurableRaftLog _log;
    private readonly DiskFaults _faults;

    private DurableMemberLog(DurableRaftLog log, DiskFaults faults)
    {
        _log = log;
        _faults = faults;
    }

    public IRaftLogStorage Storage => _log;

    public bool IsDurable => true;

    public DurableRaftLog Log => _log;

    /// <summary>Opens or creates the log owned by (<paramref name="clusterId"/>, <paramref name="memberId"/>); a log of another member is refused.</summary>
    /// <remarks><paramref name="faults"/> (tests only) can make every save slower, as a slow disk would; <paramref name="segmentBytes"/>
    /// (tests only) sets the WAL segment size; <paramref name="maxSnapshots"/> is --max-snapshots (0 keeps every snap file).</remarks>
    public static DurableMemberLog Open(string dataDir, ulong clusterId, ulong memberId, Action<TimeSpan> onSync, DiskFaults faults, ILogger logger,
        long? segmentBytes = null, int maxSnapshots = Snapshotter.DefaultKeep, string? walDir = null)
    {
        var options = new WalOptions { SyncObserver = onSync };
        if (segmentBytes is { } bytes)
        {
            options.SegmentSizeBytes = bytes;
        }

        return new(DurableRaftLog.Open(dataDir, new WalMetadata(clusterId, memberId), options, logger, maxSnapshots, walDir), faults);
    }

    /// <summary>The owner recorded in an existing WAL in <paramref name="walDir"/>, or null when there is none.</summary>
    public static WalMetadata? ReadIdentity(string walDir)
    {
        if (!WriteAheadLog.Exists(walDir))
        {
            return null;
        }

        var (wal, _) = WriteAheadLog.Open(walDir, expected: null);
        using (wal)
        {
            return wal.Metadata;
        }
    }

    public async Task SaveAsync(IReadOnlyList<Entry> entries, HardState? hardState, CancellationToken cancellationToken)
    {
        if (_faults.FsyncDelay is { } delay)
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }

        await _log.SaveAsync(entries, hardState, cancellationToken).ConfigureAwait(false);
    }

    public Task ApplySnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken) => _log.ApplySnapshotAsync(snapshot, cancellationToken);

    public Task CreateSnapshotAsync(ulong index, ConfState confState, ReadOnlyMemory<byte> data, ulong catchUpEntries, CancellationToken cancellationToken) =>
        _log.CreateSnapshotAsync(index, confState, data, catchUpEntries, cancellationToken);

    public void Dispose() => _log.Dispose();
}
