using System.Globalization;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using RaftKv.Protocol.Internal;
using RaftKv.Raft;
using RaftKv.Server.Observability;
using RaftKv.Server.Peers;
using RaftKv.Storage.Mvcc;
using RaftKv.Storage.Wal;

namespace RaftKv.Server.Node;

/// <summary>The state machine as snapshots need it: durable, copyable, replaceable as a whole.</summary>
internal interface ISnapshotStore
{
    /// <summary>Forces everything applied so far onto disk and returns the applied index now durable (the WAL up to it may then be released).</summary>
    ulong Flush();

    /// <summary>Writes a consistent copy of the whole store to <paramref name="path"/>; returns the applied index and term it holds.</summary>
    (ulong Index, ulong Term) CopyTo(string path);

    /// <summary>Replaces the whole store with the store file at <paramref name="path"/> (moved, not copied).</summary>
    void ReplaceWith(string path);
}

/// <summary>When and where a member makes snapshots.</summary>
internal sealed record SnapshotSettings
{
    /// <summary><c>member/snap</c> of the data dir: snap files, received images, images being sent.</summary>
    public required string Directory { get; init; }

    /// <summary>Applied entries between two snapshots (etcd's --snapshot-count).</summary>
    public required ulong SnapshotCount { get; init; }

    /// <summary>Entries kept after a snapshot so a slow follower still gets entries (etcd's SnapshotCatchUpEntries).</summary>
    public required ulong CatchUpEntries { get; init; }
}

/// <summary>
/// Raft snapshots of one member, as etcd makes them:
/// <list type="bullet">
/// <item>Every <see cref="SnapshotSettings.SnapshotCount"/> applied entries: the store is flushed, the snapshot (index, term,
/// conf state, membership) saved in <c>member/snap</c> with its CRC and recorded in the WAL, the log compacted to
/// <see cref="SnapshotSettings.CatchUpEntries"/> before it and the WAL segments it covers released.</item>
/// <item>A leader sending a snapshot sends the state as applied now: a consistent copy of the store (every table of it) and
/// the current membership, with the snapshot metadata moved up to the copy's index (etcd's merged snapshot).</item>
/// <item>A follower installs a received snapshot by swapping its store for the received image (close, rename, reopen).</item>
/// </list>
/// Only the Raft loop calls the instance methods.
/// </summary>
internal sealed partial class SnapshotCoordinator
{
    private readonly SnapshotSettings _settings;
    private readonly IMemberLog _log;
    private readonly ISnapshotStore _store;
    private readonly NodeMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public SnapshotCoordinator(SnapshotSettings settings, IMemberLog log, ISnapshotStore store, NodeMetrics metrics, TimeProvider time, ILogger logger)
    {
        _settings = settings;
        _log = log;
        _store = store;
        _metrics = metrics;
        _time = time;
        _logger = logger;
    }

    public string Directory => _settings.Directory;

    /// <summary>Index of the newest snapshot (made here or received).</summary>
    public ulong SnapshotIndex => _log.Storage.Snapshot().Metadata.Index;

    /// <summary>True once more than --snapshot-count entries were applied since the last snapshot.</summary>
    public bool IsDue(ulong applied)
    {
        var last = SnapshotIndex;
        return applied > last && applied - last > _settings.SnapshotCount;
    }

    /// <summary>Makes a snapshot of the state at <paramref name="applied"/> (everything applied so far).</summary>
    public async Task CreateAsync(ulong applied, ConfState confState, MembershipState membership, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();

        // The store commits without syncing; the WAL up to the snapshot may go only once the store holding it is on disk.
        var durable = _store.Flush();
        if (durable < applied)
        {
            throw new InvalidOperationException($"the store is durable up to index {durable} only, not the snapshot's {applied}; the WAL must keep the entries in between");
        }

        var data = new StateSnapshot { Membership = membership }.ToByteArray();
        await _log.CreateSnapshotAsync(applied, confState, data, _settings.CatchUpEntries, cancellationToken).ConfigureAwait(false);
        var elapsed = _time.GetElapsedTime(started);
        _metrics.SnapSave.Observe(elapsed.TotalSeconds);
        DeleteImagesUpTo(_settings.Directory, applied);
        var compacted = _log.Storage.FirstIndex() - 1;
        LogSnapshotSaved(_logger, applied, compacted, elapsed.TotalMilliseconds);
    }

    /// <summary>
    /// Turns a MsgSnap of the Raft node into what is sent: the snapshot of the state applied now (metadata at the store copy's
    /// index and term, the current conf state and membership) and the store copy as its image.
    /// </summary>
    public (Message Message, SnapshotImage Image) PrepareOutgoing(Message message, ConfState confState, MembershipState membership)
    {
        var path = Path.Combine(_settings.Directory, string.Create(CultureInfo.InvariantCulture, $"send-{message.To:x16}-{Guid.NewGuid():N}.tmp"));
        System.IO.Directory.CreateDirectory(_settings.Directory);
        try
        {
            var (index, term) = _store.CopyTo(path);
            var snapshot = new Snapshot(new SnapshotMetadata(index, term, confState), new StateSnapshot { Membership = membership }.ToByteArray());
            var bytes = new FileInfo(path).Length;
            LogSending(_logger, message.To, index, term, bytes);
            return (message with { Snapshot = snapshot }, new SnapshotImage(path, () => TryDelete(path)));
        }
        catch
        {
            TryDelete(path);
            throw;
        }
    }

    /// <summary>Replaces the store with the image received for the snapshot <paramref name="metadata"/> (already in the log and WAL).</summary>
    public void InstallReceived(SnapshotMetadata metadata)
    {
        var image = SnapshotReceiver.ImagePath(_settings.Directory, metadata.Index);
        if (!File.Exists(image))
        {
            throw new InvalidOperationException(
                $"snapshot {metadata.Index} (term {metadata.Term}) was accepted but its store image '{image}' is missing; the member cannot go on. " +
                "Remove this member and re-add it with an empty data dir.");
        }

        var (index, _) = MvccStore.ReadPosition(image);
        if (index != metadata.Index)
        {
            throw new InvalidDataException($"the store image '{image}' holds index {index}, not the snapshot's {metadata.Index}");
        }

        var started = _time.GetTimestamp();
        _metrics.SnapshotApplyInProgress.Set(1);
        try
        {
            _store.ReplaceWith(image);
        }
        finally
        {
            _metrics.SnapshotApplyInProgress.Set(0);
        }

        DeleteImagesUpTo(_settings.Directory, metadata.Index);
        var ms = _time.GetElapsedTime(started).TotalMilliseconds;
        LogInstalled(_logger, metadata.Index, metadata.Term, ms);
    }

    /// <summary>
    /// At start-up, before the store is opened: a snapshot received but not yet swapped in when the member stopped is
    /// installed now (its image renamed over the store), and leftovers (partial receives, copies being sent, images the store
    /// already covers) are deleted. Throws <see cref="InvalidDataException"/> when the store is behind the snapshot and no image exists.
    /// </summary>
    public static void RecoverStore(string snapDirectory, string storePath, ulong snapshotIndex, ILogger logger)
    {
        if (!System.IO.Directory.Exists(snapDirectory))
        {
            return;
        }

        foreach (var leftover in System.IO.Directory.EnumerateFiles(snapDirectory)
            .Where(f => f.EndsWith(".part", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("send-", StringComparison.Ordinal)))
        {
            TryDelete(leftover);
        }

        var storeIndex = File.Exists(storePath) ? MvccStore.ReadPosition(storePath).Index : 0;
        if (snapshotIndex > storeIndex)
        {
            var image = SnapshotReceiver.ImagePath(snapDirectory, snapshotIndex);
            if (!File.Exists(image))
            {
                throw new InvalidDataException(
                    $"the store '{storePath}' holds index {storeIndex} but the newest snapshot is at {snapshotIndex} and its image '{image}' is missing; " +
                    "entries in between are gone. Remove this member and re-add it with an empty data dir.");
            }

            File.Move(image, storePath, overwrite: true);
            OsFileSystem.Instance.SyncDirectory(snapDirectory);
            LogRecovered(logger, snapshotIndex, storeIndex);
            storeIndex = snapshotIndex;
        }

        DeleteImagesUpTo(snapDirectory, storeIndex);
    }

    /// <summary>Deletes received images for snapshots at or below <paramref name="index"/> (the store already covers them).</summary>
    private static void DeleteImagesUpTo(string directory, ulong index)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return;
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(directory, "*.snap.db"))
        {
            var name = Path.GetFileName(file);
            if (name.Length == 24 && ulong.TryParse(name.AsSpan(0, 16), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var i) && i <= index)
            {
                TryDelete(file);
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // a leftover is removed at the next start
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "saved snapshot at index {Index}; log compacted to {Compacted} ({Ms:F1} ms)")]
    private static partial void LogSnapshotSaved(ILogger logger, ulong index, ulong compacted, double ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "sending snapshot to {Peer:x}: index {Index}, term {Term}, store image {Bytes} bytes")]
    private static partial void LogSending(ILogger logger, ulong peer, ulong index, ulong term, long bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "installed snapshot at index {Index} (term {Term}) from the leader: store replaced in {Ms:F1} ms")]
    private static partial void LogInstalled(ILogger logger, ulong index, ulong term, double ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "completed installing snapshot {Index} interrupted at the last stop (store was at index {StoreIndex})")]
    private static partial void LogRecovered(ILogger logger, ulong index, ulong storeIndex);
}
