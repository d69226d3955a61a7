using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Raft;

namespace RaftKv.Storage.Wal;

/// <summary>Settings of the write-ahead log.</summary>
public sealed class WalOptions
{
    /// <summary>Size each segment is preallocated to; a new segment is started once the current one is this full.</summary>
    public long SegmentSizeBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>File operations (tests inject faults here).</summary>
    public IWalFileSystem FileSystem { get; set; } = OsFileSystem.Instance;

    /// <summary>Called with the duration of every sync (feeds etcd_disk_wal_fsync_duration_seconds).</summary>
    public Action<TimeSpan>? SyncObserver { get; set; }

    /// <summary>Upper bound on the bytes one write + sync carries; more pending writes wait for the next round.</summary>
    public int MaxBatchBytes { get; set; } = 32 * 1024 * 1024;
}

/// <summary>Everything a WAL holds after the snapshot it was opened at.</summary>
public sealed record WalReadResult(
    WalMetadata Metadata,
    HardState HardState,
    IReadOnlyList<Entry> Entries,
    IReadOnlyList<WalSnapshot> Snapshots,
    IReadOnlyList<string> Repairs);

/// <summary>
/// The write-ahead log of one member: <c>member/wal/%016x-%016x.wal</c> segments (sequence, first entry index),
/// each preallocated, holding CRC-32C-chained records (see <see cref="WalFrame"/>).
/// <para>
/// Writes go through one writer thread: every <see cref="AppendAsync"/> queued while the previous sync ran is written
/// with one write and made durable with one fdatasync (group commit); each task completes only after that sync.
/// Invariant: a record with the batch-start flag is only ever written after every earlier batch was synced, which is what
/// lets <see cref="Open"/> tell a torn last write (cut it) from damage to acknowledged data (refuse to start).
/// </para>
/// </summary>
public sealed partial class WriteAheadLog : IDisposable
{
    private const string SegmentExtension = ".wal";

    private readonly string _directory;
    private readonly WalOptions _options;
    private readonly ILogger _logger;
    private readonly WalMetadata _metadata;
    private readonly IWalFileSystem _fs;
    private readonly object _queueLock = new(); // Monitor: the writer waits on it
    private readonly List<PendingWrite> _queue = [];
    private readonly List<(ulong Sequence, ulong FirstIndex, string Name)> _segments;
    private readonly Thread _writer;
    private bool _stopping;
    private bool _writing; // a batch is being written, by the writer thread or by a caller (at most one at a time)
    private Exception? _failure;

    // Writer state: touched only by whoever holds the _writing turn.
    private IWalFile _current;
    private long _offset;
    private uint _lastCrc;
    private ulong _lastIndex;
    private HardState _hardState;
    private byte[] _buffer = new byte[1 << 20];

    private WriteAheadLog(string directory, WalOptions options, ILogger logger, WalMetadata metadata,
        List<(ulong, ulong, string)> segments, IWalFile current, long offset, uint lastCrc, ulong lastIndex, HardState hardState)
    {
        _directory = directory;
        _options = options;
        _fs = options.FileSystem;
        _logger = logger;
        _metadata = metadata;
        _segments = segments;
        _current = current;
        _offset = offset;
        _lastCrc = lastCrc;
        _lastIndex = lastIndex;
        _hardState = hardState;
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "wal-writer" };
        _writer.Start();
    }

    /// <summary>The owner recorded in the log.</summary>
    public WalMetadata Metadata => _metadata;

    /// <summary>Directory holding the segments.</summary>
    public string Directory => _directory;

    /// <summary>Segment file names currently kept, oldest first.</summary>
    public IReadOnlyList<string> SegmentNames
    {
        get
        {
            lock (_queueLock)
            {
                return [.. _segments.Select(s => s.Name)];
            }
        }
    }

    /// <summary>Name of a segment: sequence and index of its first entry, both as 16 hex digits (etcd's naming).</summary>
    public static string SegmentName(ulong sequence, ulong firstIndex) =>
        string.Create(CultureInfo.InvariantCulture, $"{sequence:x16}-{firstIndex:x16}{SegmentExtension}");

    /// <summary>True when <paramref name="directory"/> holds at least one segment.</summary>
    public static bool Exists(string directory, IWalFileSystem? fs = null)
    {
        fs ??= OsFileSystem.Instance;
        return fs.DirectoryExists(directory) && fs.ListFiles(directory).Any(n => TryParseName(n, out _, out _));
    }

    /// <summary>Creates a new, empty log owned by <paramref name="metadata"/>. Fails if a log is already there.</summary>
    public static WriteAheadLog Create(string directory, WalMetadata metadata, WalOptions? options = null, ILogger? logger = null)
    {
        options ??= new WalOptions();
        var fs = options.FileSystem;
        if (Exists(directory, fs))
        {
            throw new IOException($"A WAL already exists in '{directory}'; open it instead of creating a new one.");
        }

        fs.CreateDirectory(directory);
        var name = SegmentName(0, 0);
        var file = CreateSegment(fs, directory, name, options.SegmentSizeBytes, metadata, HardState.Empty, previousCrc: 0, out var offset, out var crc);
        return new WriteAheadLog(directory, options, logger ?? NullLogger.Instance, metadata, [(0, 0, name)], file, offset, crc, 0, HardState.Empty);
    }

    /// <summary>
    /// Opens the log in <paramref name="directory"/>: verifies the whole CRC chain, cuts a torn tail off the newest segment
    /// (with a warning naming what was cut) and refuses damage anywhere else (<see cref="WalCorruptException"/>) and a log
    /// owned by someone other than <paramref name="expected"/> (<see cref="WalIdentityMismatchException"/>).
    /// Returns the entries after <paramref name="start"/> (the snapshot the state was restored from; <see cref="WalSnapshot.Zero"/> for none).
    /// </summary>
    public static (WriteAheadLog Wal, WalReadResult Contents) Open(
        string directory, WalMetadata? expected, WalSnapshot? start = null, WalOptions? options = null, ILogger? logger = null)
    {
        options ??= new WalOptions();
        logger ??= NullLogger.Instance;
        start ??= WalSnapshot.Zero;
        var fs = options.FileSystem;
        foreach (var leftover in fs.ListFiles(directory).Where(n => n.EndsWith(".tmp", StringComparison.Ordinal)))
        {
            fs.Delete(Path.Combine(directory, leftover));
        }

        var segments = new List<(ulong Sequence, ulong FirstIndex, string Name)>();
        foreach (var n in fs.ListFiles(directory))
        {
            if (TryParseName(n, out var seq, out var first))
            {
                segments.Add((seq, first, n));
            }
        }

        segments.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        if (segments.Count == 0)
        {
            throw new IOException($"No WAL segments in '{directory}'.");
        }

        for (var i = 1; i < segments.Count; i++)
        {
            if (segments[i].Sequence != segments[i - 1].Sequence + 1)
            {
                throw new WalCorruptException(Path.Combine(directory, segments[i].Name), 0,
                    $"segment sequence jumps from {segments[i - 1].Sequence} to {segments[i].Sequence} (a segment file is missing)");
            }
        }

        var reader = new Reader(start);
        uint? chain = null;
        IWalFile? last = null;
        long lastOffset = 0;
        var repairs = new List<string>();
        for (var i = 0; i < segments.Count; i++)
        {
            var isLast = i == segments.Count - 1;
            var path = Path.Combine(directory, segments[i].Name);
            var file = fs.Open(path, create: false);
            try
            {
                var end = ReadSegment(file, path, isLast, ref chain, reader, repairs, logger);
                if (isLast)
                {
                    last = file;
                    lastOffset = end;
                }
                else
                {
                    file.Dispose();
                }
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        Debug.Assert(last is not null);
        if (reader.Metadata is not { } found)
        {
            last.Dispose();
            throw new WalCorruptException(Path.Combine(directory, segments[^1].Name), 0, "the log holds no metadata record (cluster id, member id)");
        }

        if (expected is { } e && e != found)
        {
            last.Dispose();
            throw new WalIdentityMismatchException(directory, found, e);
        }

        if (start.Index > 0 && !reader.Snapshots.Any(s => s.Index == start.Index && s.Term == start.Term))
        {
            last.Dispose();
            throw new WalCorruptException($"The WAL in '{directory}' has no record of snapshot (index {start.Index}, term {start.Term}) that the snap directory holds; " +
                "the snapshot and the log do not belong together. Remove this member and re-add it with an empty data dir.");
        }

        var lastIndex = Math.Max(reader.LastIndex, start.Index);
        var wal = new WriteAheadLog(directory, options, logger, found, segments, last, lastOffset, chain ?? 0, lastIndex, reader.HardState);
        return (wal, new WalReadResult(found, reader.HardState, reader.Entries, reader.Snapshots, repairs));
    }

    /// <summary>
    /// Persists <paramref name="entries"/> (consecutive indexes; an index at or below the last one replaces that suffix of the
    /// log) and then <paramref name="hardState"/> if given. Completes after the data is durable.
    /// </summary>
    public Task AppendAsync(IReadOnlyList<Entry> entries, HardState? hardState, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Enqueue(new PendingWrite(entries, hardState, null, sync: true), inline: false);
    }

    /// <summary>
    /// <see cref="AppendAsync"/> for a single caller that waits anyway (a Raft member's Ready loop): when nothing else is being
    /// written, the write and its sync run on the caller's thread, so a lone writer pays a pwrite and an fdatasync and no
    /// thread hand-offs. Otherwise it joins the writer thread's next batch. Returns once the data is durable.
    /// Do not call it while holding a lock that concurrent appenders need: they could not queue behind this sync.
    /// </summary>
    /// <param name="entries">Entries to persist, as for <see cref="AppendAsync"/>.</param>
    /// <param name="hardState">Hard state to record after them, if any.</param>
    /// <param name="sync">
    /// False only when losing this write in a crash is harmless: a hard state whose only change is the commit index (Raft
    /// re-learns commit from the leader, as etcd's raft.MustSync says). It is still written, and made durable by the next
    /// synced write; the call then returns after the write instead of after an fdatasync.
    /// </param>
    public void Append(IReadOnlyList<Entry> entries, HardState? hardState, bool sync = true) =>
        Enqueue(new PendingWrite(entries, hardState, null, sync), inline: true).GetAwaiter().GetResult();

    /// <summary>Records that a snapshot at <paramref name="snapshot"/> exists (written after the snap file is durable).</summary>
    public Task SaveSnapshotAsync(WalSnapshot snapshot, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Enqueue(new PendingWrite([], null, snapshot, sync: true), inline: false);
    }

    /// <summary>
    /// Deletes segments whose entries all lie at or below <paramref name="index"/> (covered by a snapshot). The newest segment
    /// whose first index is at or below <paramref name="index"/> is kept, as are all later ones.
    /// </summary>
    public void ReleaseTo(ulong index)
    {
        List<string> doomed;
        lock (_queueLock)
        {
            var keepFrom = 0;
            for (var i = 0; i < _segments.Count; i++)
            {
                if (_segments[i].FirstIndex <= index)
                {
                    keepFrom = i;
                }
            }

            doomed = [.. _segments.Take(keepFrom).Select(s => s.Name)];
            _segments.RemoveRange(0, keepFrom);
        }

        foreach (var name in doomed)
        {
            _fs.Delete(Path.Combine(_directory, name));
            LogReleased(_logger, name, index);
        }

        if (doomed.Count > 0)
        {
            _fs.SyncDirectory(_directory);
        }
    }

    /// <summary>
    /// Queues a write for the writer thread, whose next batch shares one sync among everything queued (group commit); or, when
    /// <paramref name="inline"/> and nothing is being written or waits, writes it on the caller's thread.
    /// </summary>
    private Task Enqueue(PendingWrite write, bool inline)
    {
        lock (_queueLock)
        {
            if (_failure is not null)
            {
                return Task.FromException(new IOException("The WAL stopped after a write failure; the member must restart.", _failure));
            }

            if (_stopping)
            {
                return Task.FromException(new ObjectDisposedException(nameof(WriteAheadLog)));
            }

            if (!inline || _writing || _queue.Count > 0)
            {
                _queue.Add(write);
                Monitor.PulseAll(_queueLock);
                return write.Completion.Task;
            }

            _writing = true;
        }

        List<PendingWrite> batch = [write];
        WriteAndComplete(batch);
        lock (_queueLock)
        {
            _writing = false;

            // Wake the writer thread only when it has something to do (writes queued meanwhile, or Dispose waiting): waking it
            // for nothing costs a context switch per append on the lone writer's path, which is the path measured against
            // a bare fdatasync.
            if (_queue.Count > 0 || _stopping)
            {
                Monitor.PulseAll(_queueLock);
            }
        }

        return write.Completion.Task;
    }

    private void WriterLoop()
    {
        var batch = new List<PendingWrite>();
        while (true)
        {
            lock (_queueLock)
            {
                while ((_queue.Count == 0 || _writing) && !_stopping)
                {
                    Monitor.Wait(_queueLock);
                }

                while (_writing)
                {
                    Monitor.Wait(_queueLock); // stopping: let a caller's write finish before taking the rest
                }

                if (_queue.Count == 0 || _failure is not null)
                {
                    return;
                }

                // Take as much as fits in one batch (always at least one write).
                long bytes = 0;
                var take = 0;
                while (take < _queue.Count && (take == 0 || bytes < _options.MaxBatchBytes))
                {
                    bytes += _queue[take].EstimatedBytes;
                    take++;
                }

                batch.AddRange(_queue.Take(take));
                _queue.RemoveRange(0, take);
                _writing = true;
            }

            var ok = WriteAndComplete(batch);
            lock (_queueLock)
            {
                _writing = false;
                Monitor.PulseAll(_queueLock);
            }

            if (!ok)
            {
                return;
            }

            batch.Clear();
        }
    }

    /// <summary>Writes and syncs one batch and completes its writes; on failure fails them and everything queued, for good.</summary>
    private bool WriteAndComplete(List<PendingWrite> batch)
    {
        try
        {
            WriteBatch(batch);
            foreach (var w in batch)
            {
                w.Completion.TrySetResult();
            }

            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            LogWriteFailed(_logger, ex);
            List<PendingWrite> rest;
            lock (_queueLock)
            {
                _failure = ex;
                rest = [.. _queue];
                _queue.Clear();
            }

            foreach (var w in batch.Concat(rest))
            {
                w.Completion.TrySetException(new IOException("WAL write failed; the member must restart.", ex));
            }

            return false;
        }
    }

    private void WriteBatch(List<PendingWrite> batch)
    {
        var size = batch.Sum(w => w.EstimatedBytes);
        if (_buffer.Length < size)
        {
            _buffer = new byte[Math.Max(size, _buffer.Length * 2)];
        }

        var span = _buffer.AsSpan();
        var at = 0;
        var first = true;
        var crc = _lastCrc;
        var lastIndex = _lastIndex;
        var hardState = _hardState;
        Span<byte> hardStatePayload = stackalloc byte[WalPayload.HardStateSize];
        foreach (var w in batch)
        {
            foreach (var e in w.Entries)
            {
                var payload = WalPayload.EntrySize(e);
                var frame = span.Slice(at, WalFrame.FramedSize(payload));
                WalPayload.WriteEntry(frame.Slice(WalFrame.HeaderSize, payload), e);
                crc = WalFrame.Write(frame, WalRecordType.Entry, first, crc, frame.Slice(WalFrame.HeaderSize, payload));
                at += frame.Length;
                first = false;
                lastIndex = e.Index;
            }

            if (w.Snapshot is { } snap)
            {
                var payload = WalPayload.Snapshot(snap);
                crc = WalFrame.Write(span[at..], WalRecordType.Snapshot, first, crc, payload);
                at += WalFrame.FramedSize(payload.Length);
                first = false;
                lastIndex = Math.Max(lastIndex, snap.Index);
            }

            if (w.HardState is { } hs)
            {
                WalPayload.WriteHardState(hardStatePayload, hs);
                crc = WalFrame.Write(span[at..], WalRecordType.HardState, first, crc, hardStatePayload);
                at += WalFrame.FramedSize(hardStatePayload.Length);
                first = false;
                hardState = hs;
            }
        }

        if (at > 0)
        {
            _current.Write(_offset, span[..at]);
            if (batch.Exists(w => w.NeedsSync))
            {
                Sync(_current);
            }

            _offset += at;
            _lastCrc = crc;
            _lastIndex = lastIndex;
            _hardState = hardState;
        }

        if (_offset >= _options.SegmentSizeBytes)
        {
            Cut();
        }
    }

    private void Sync(IWalFile file)
    {
        var started = Stopwatch.GetTimestamp();
        file.Sync();
        _options.SyncObserver?.Invoke(Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Closes the full segment (trimmed to its data) and continues in a new one that starts the chain where it ended.</summary>
    private void Cut()
    {
        _current.SetLength(_offset);
        Sync(_current);
        ulong sequence;
        lock (_queueLock)
        {
            sequence = _segments[^1].Sequence + 1;
        }

        var name = SegmentName(sequence, _lastIndex + 1);
        var next = CreateSegment(_fs, _directory, name, _options.SegmentSizeBytes, _metadata, _hardState, _lastCrc, out var offset, out var crc);
        _current.Dispose();
        _current = next;
        _offset = offset;
        _lastCrc = crc;
        lock (_queueLock)
        {
            _segments.Add((sequence, _lastIndex + 1, name));
        }

        LogCut(_logger, name);
    }

    /// <summary>Writes a complete new segment under a temporary name, syncs it, then renames it into place.</summary>
    private static IWalFile CreateSegment(IWalFileSystem fs, string directory, string name, long size, WalMetadata metadata,
        HardState hardState, uint previousCrc, out long offset, out uint crc)
    {
        var tmp = Path.Combine(directory, name + ".tmp");
        if (fs.FileExists(tmp))
        {
            fs.Delete(tmp);
        }

        var file = fs.Open(tmp, create: true);
        try
        {
            file.Preallocate(size);
            var meta = WalPayload.Metadata(metadata);
            var buffer = new byte[WalFrame.FramedSize(meta.Length) + WalFrame.FramedSize(WalPayload.HardStateSize)];
            crc = WalFrame.Write(buffer, WalRecordType.Metadata, batchStart: true, previousCrc, meta);
            var hs = new byte[WalPayload.HardStateSize];
            WalPayload.WriteHardState(hs, hardState);
            crc = WalFrame.Write(buffer.AsSpan(WalFrame.FramedSize(meta.Length)), WalRecordType.HardState, batchStart: false, crc, hs);
            file.Write(0, buffer);
            file.Sync();
            offset = buffer.Length;
        }
        catch
        {
            file.Dispose();
            throw;
        }

        fs.Rename(tmp, Path.Combine(directory, name));
        fs.SyncDirectory(directory);
        return file;
    }

    private static bool TryParseName(string name, out ulong sequence, out ulong firstIndex)
    {
        sequence = 0;
        firstIndex = 0;
        return name.Length == 33 + SegmentExtension.Length - 0 && name.EndsWith(SegmentExtension, StringComparison.Ordinal) && name[16] == '-'
            && ulong.TryParse(name.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out sequence)
            && ulong.TryParse(name.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out firstIndex);
    }

    /// <summary>Reads and checks one segment; returns the offset where the next record goes.</summary>
    private static long ReadSegment(IWalFile file, string path, bool isLast, ref uint? chain, Reader reader, List<string> repairs, ILogger logger)
    {
        var length = file.Length;
        if (length > int.MaxValue)
        {
            throw new WalCorruptException(path, 0, $"the segment is {length} bytes, larger than any segment this WAL writes");
        }

        var data = new byte[length];
        var read = file.Read(0, data);
        var bytes = data.AsSpan(0, read);
        var offset = 0;
        while (true)
        {
            var rest = bytes[offset..];
            var check = WalFrame.Inspect(rest, out var type, out var payloadLength, out var previousCrc, out var crc, out _);
            string? problem = check switch
            {
                WalFrame.Check.Valid when chain is { } expected && previousCrc != expected =>
                    $"the CRC chain is broken (the record names previous crc {previousCrc:x8}, the record before it has {expected:x8})",
                WalFrame.Check.Valid => null,
                WalFrame.Check.ZeroHeader when rest.IndexOfAnyExcept((byte)0) < 0 => null,
                WalFrame.Check.ZeroHeader => "a zeroed header is followed by non-zero bytes",
                WalFrame.Check.Truncated => "the record is cut short (partial write)",
                WalFrame.Check.BadLength => "the record length is impossible",
                WalFrame.Check.UnknownType => "the record header is garbage (unknown type or flags)",
                _ => "the record's CRC-32C does not match its contents",
            };

            if (check == WalFrame.Check.ZeroHeader && problem is null)
            {
                return offset; // clean end of the written part
            }

            if (problem is not null)
            {
                if (!isLast)
                {
                    throw new WalCorruptException(path, offset, problem + " in a segment that is not the newest");
                }

                // The newest segment: a torn last write, unless a later sync batch is intact after the damage
                // (a batch is only written after the previous one was synced, so that batch's data was acknowledged).
                var laterBatch = FindLaterBatchStart(bytes, offset);
                if (laterBatch >= 0)
                {
                    throw new WalCorruptException(path, offset,
                        problem + $", yet an intact later write batch starts at offset {laterBatch}, so this is not a torn final write but damage to synced data");
                }

                var cutEnd = bytes.LastIndexOfAnyExcept((byte)0) + 1;
                var message = string.Create(CultureInfo.InvariantCulture,
                    $"WAL file '{path}': torn tail truncated at offset {offset}: {problem}; cut {cutEnd - offset} bytes (offsets {offset}..{cutEnd}){DescribeCut(bytes[offset..cutEnd])}. These records were never acknowledged (their write had not been synced).");
                Span<byte> zeros = new byte[Math.Min(1 << 20, cutEnd - offset)];
                for (long at = offset; at < cutEnd; at += zeros.Length)
                {
                    file.Write(at, zeros[..(int)Math.Min(zeros.Length, cutEnd - at)]);
                }

                file.Sync();
                LogTornTail(logger, message);
                repairs.Add(message);
                return offset;
            }

            reader.Accept(type, rest.Slice(WalFrame.HeaderSize, payloadLength), path, offset);
            chain = crc;
            offset += WalFrame.FramedSize(payloadLength);
        }
    }

    private static int FindLaterBatchStart(ReadOnlySpan<byte> bytes, int damagedAt)
    {
        for (var at = damagedAt + 8; at + WalFrame.HeaderSize <= bytes.Length; at += 8)
        {
            if (WalFrame.Inspect(bytes[at..], out _, out _, out _, out _, out var batchStart) == WalFrame.Check.Valid && batchStart)
            {
                return at;
            }
        }

        return -1;
    }

    /// <summary>Names the intact records found inside a region about to be cut ("held entries 12..15").</summary>
    private static string DescribeCut(ReadOnlySpan<byte> region)
    {
        ulong lo = ulong.MaxValue, hi = 0;
        var others = 0;
        for (var at = 0; at + WalFrame.HeaderSize <= region.Length; at += 8)
        {
            if (WalFrame.Inspect(region[at..], out var type, out var len, out _, out _, out _) == WalFrame.Check.Valid)
            {
                if (type == WalRecordType.Entry && len >= 8)
                {
                    var index = WalPayload.ReadEntryIndex(region.Slice(at + WalFrame.HeaderSize, len));
                    lo = Math.Min(lo, index);
                    hi = Math.Max(hi, index);
                }
                else
                {
                    others++;
                }
            }
        }

        var parts = new List<string>();
        if (hi > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"intact unsynced entries {lo}..{hi}"));
        }

        if (others > 0)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{others} other intact record(s)"));
        }

        return parts.Count == 0 ? ", holding no intact record" : ", holding " + string.Join(" and ", parts) + " plus the damaged record";
    }

    public void Dispose()
    {
        lock (_queueLock)
        {
            if (_stopping)
            {
                return;
            }

            _stopping = true;
            Monitor.PulseAll(_queueLock);
        }

        _writer.Join();
        lock (_queueLock)
        {
            while (_writing)
            {
                Monitor.Wait(_queueLock); // a caller's write in progress
            }
        }

        _current.Dispose();
    }

    /// <summary>Collects the log's state while segments are read in order.</summary>
    private sealed class Reader(WalSnapshot start)
    {
        private readonly List<Entry> _entries = [];
        private ulong _base;
        private bool _baseInferred; // _base came from the oldest kept record (an entry, or a marker before any entry), not from a snapshot
        private bool _sawEntry;

        public WalMetadata? Metadata { get; private set; }

        public HardState HardState { get; private set; }

        public List<WalSnapshot> Snapshots { get; } = [];

        public IReadOnlyList<Entry> Entries => _entries;

        public ulong LastIndex { get; private set; }

        public void Accept(WalRecordType type, ReadOnlySpan<byte> payload, string path, long offset)
        {
            try
            {
                switch (type)
                {
                    case WalRecordType.Metadata:
                        var m = WalPayload.ReadMetadata(payload);
                        if (Metadata is { } previous && previous != m)
                        {
                            throw new WalCorruptException(path, offset, $"metadata says {m} but earlier records say {previous}");
                        }

                        Metadata = m;
                        break;
                    case WalRecordType.Entry:
                        AcceptEntry(WalPayload.ReadEntry(payload), path, offset);
                        break;
                    case WalRecordType.HardState:
                        HardState = WalPayload.ReadHardState(payload);
                        break;
                    case WalRecordType.Snapshot:
                        var snap = WalPayload.ReadSnapshot(payload);
                        Snapshots.Add(snap);
                        var end = Math.Max(_base, start.Index) + (ulong)_entries.Count;
                        if (snap.Index > end)
                        {
                            // A snapshot from the leader jumped past our log: the log continues after it. Or, when no entry
                            // was read yet, the oldest kept segment opens with the marker of a snapshot taken right after that
                            // segment was cut: a member snapshots what it has applied, a few entries behind what it persisted,
                            // so the entries between the marker and the segment's first entry lie in the released segment
                            // before it. There the start of the log stays inferred until the first entry; the member's log
                            // checks it against the newest snapshot (DurableRaftLog.Open).
                            _entries.Clear();
                            _base = snap.Index;
                            _baseInferred = start.Index == 0 && !_sawEntry;
                        }

                        LastIndex = Math.Max(LastIndex, snap.Index);
                        break;
                }
            }
            catch (FormatException ex)
            {
                throw new WalCorruptException(path, offset, ex.Message);
            }
        }

        private void AcceptEntry(Entry e, string path, long offset)
        {
            LastIndex = e.Index;
            var first = !_sawEntry;
            _sawEntry = true;
            if (e.Index <= start.Index)
            {
                return;
            }

            // Opened without a snapshot: after released segments the log starts wherever its oldest kept entry is.
            if (first && start.Index == 0)
            {
                _base = e.Index - 1;
                _baseInferred = true;
            }
            else if (_baseInferred && e.Index <= _base)
            {
                // A new leader rewrote entries that began in a released segment: the kept log restarts at the rewrite
                // (everything before it is covered by the snapshot that released the segment).
                _entries.Clear();
                _base = e.Index - 1;
            }

            // Entry i goes to slot i - base - 1; a lower index than the end replaces the suffix (a new leader's log won).
            var slot = e.Index - Math.Max(_base, start.Index) - 1;
            if (e.Index <= _base)
            {
                throw new WalCorruptException(path, offset, $"entry {e.Index} precedes the oldest entry {_base + 1} kept in the log");
            }

            if (slot > (ulong)_entries.Count)
            {
                throw new WalCorruptException(path, offset,
                    $"entry {e.Index} follows entry {Math.Max(_base, start.Index) + (ulong)_entries.Count}; entries in between are missing");
            }

            if (slot < (ulong)_entries.Count)
            {
                _entries.RemoveRange((int)slot, _entries.Count - (int)slot);
            }

            _entries.Add(e);
        }
    }

    private sealed class PendingWrite(IReadOnlyList<Entry> entries, HardState? hardState, WalSnapshot? snapshot, bool sync)
    {
        /// <summary>The caller waits for durability (an fdatasync after the write), not only for the write.</summary>
        public bool NeedsSync { get; } = sync;

        public IReadOnlyList<Entry> Entries { get; } = entries;

        public HardState? HardState { get; } = hardState;

        public WalSnapshot? Snapshot { get; } = snapshot;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int EstimatedBytes { get; } = ComputeSize(entries, hardState, snapshot);

        private static int ComputeSize(IReadOnlyList<Entry> entries, HardState? hardState, WalSnapshot? snapshot)
        {
            var size = 0;
            foreach (var e in entries)
            {
                size += WalFrame.FramedSize(WalPayload.EntrySize(e));
            }

            if (hardState.HasValue)
            {
                size += WalFrame.FramedSize(WalPayload.HardStateSize);
            }

            if (snapshot is not null)
            {
                size += WalFrame.FramedSize(WalPayload.Snapshot(snapshot).Length);
            }

            return size;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Message}")]
    private static partial void LogTornTail(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "Released WAL segment {Name}: its entries are covered by the snapshot at index {Index}")]
    private static partial void LogReleased(ILogger logger, string name, ulong index);

    [LoggerMessage(Level = LogLevel.Information, Message = "Started WAL segment {Name}")]
    private static partial void LogCut(ILogger logger, string name);

    [LoggerMessage(Level = LogLevel.Critical, Message = "WAL write or sync failed; no further writes are accepted")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception);
}
