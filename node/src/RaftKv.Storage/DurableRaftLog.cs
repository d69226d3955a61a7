using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Raft;
using RaftKv.Storage.Snap;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage;

/// <summary>
/// The Raft log of a member backed by its data dir (<c>member/wal</c> and <c>member/snap</c>), served to the consensus core
/// through <see cref="IRaftLogStorage"/>. Entries since the last compaction are kept in memory (as etcd does); every write goes to the
/// WAL and is durable before <see cref="SaveAsync"/> completes, and only then becomes visible to the core.
/// </summary>
public sealed class DurableRaftLog : IRaftLogStorage, IDisposable
{
    private readonly Lock _lock = new();
    private readonly WriteAheadLog _wal;
    private readonly Snapshotter _snapshotter;
    private readonly List<Entry> _entries;
    private ulong _offsetIndex; // entries[0] has index _offsetIndex + 1
    private ulong _offsetTerm;
    private HardState _hardState;
    private ConfState _confState;
    private Snapshot _snapshot;

    private DurableRaftLog(WriteAheadLog wal, Snapshotter snapshotter, Snapshot snapshot, HardState hardState, List<Entry> entries)
    {
        _wal = wal;
        _snapshotter = snapshotter;
        _snapshot = snapshot;
        _offsetIndex = snapshot.Metadata.Index;
        _offsetTerm = snapshot.Metadata.Term;
        _confState = snapshot.Metadata.ConfState;
        _hardState = hardState;
        _entries = entries;
    }

    /// <summary>Repairs made while opening (torn tails cut), for the host to report.</summary>
    public IReadOnlyList<string> Repairs { get; private init; } = [];

    public WriteAheadLog Wal => _wal;

    public static string WalDirectory(string dataDir) => Path.Combine(dataDir, "member", "wal");

    public static string SnapDirectory(string dataDir) => Path.Combine(dataDir, "member", "snap");

    /// <summary>
    /// Opens the member's log in <paramref name="dataDir"/> (the WAL in <paramref name="walDir"/> when given, etcd's --wal-dir),
    /// creating an empty one owned by <paramref name="identity"/> on first start.
    /// Refuses a data dir of another cluster or member and a damaged WAL (see <see cref="WriteAheadLog.Open"/>).
    /// </summary>
    public static DurableRaftLog Open(string dataDir, WalMetadata identity, WalOptions? options = null, ILogger? logger = null,
        int maxSnapshots = Snapshotter.DefaultKeep, string? walDir = null)
    {
        options ??= new WalOptions();
        logger ??= NullLogger.Instance;
        walDir ??= WalDirectory(dataDir);
        var snapshotter = new Snapshotter(SnapDirectory(dataDir), logger, options.FileSystem) { Keep = maxSnapshots };
        if (!WriteAheadLog.Exists(walDir, options.FileSystem))
        {
            var created = WriteAheadLog.Create(walDir, identity, options, logger);
            return new DurableRaftLog(created, snapshotter, Raft.Snapshot.Empty, HardState.Empty, []);
        }

        var (wal, contents) = WriteAheadLog.Open(walDir, identity, WalSnapshot.Zero, options, logger);
        try
        {
            // The newest snapshot the WAL knows about (a snap file without its marker was never completed).
            var markers = contents.Snapshots;
            var snapshot = snapshotter.LoadNewest(m => markers.Any(s => s.Index == m.Index && s.Term == m.Term)) ?? Raft.Snapshot.Empty;
            var entries = contents.Entries.Where(e => e.Index > snapshot.Metadata.Index).ToList();
            if (entries.Count > 0 && entries[0].Index != snapshot.Metadata.Index + 1)
            {
                throw new WalCorruptException(
                    $"The WAL in '{walDir}' starts at entry {entries[0].Index} but the newest usable snapshot ends at {snapshot.Metadata.Index}; " +
                    "entries in between are lost. Remove this member and re-add it with an empty data dir.");
            }

            return new DurableRaftLog(wal, snapshotter, snapshot, contents.HardState, entries) { Repairs = contents.Repairs };
        }
        catch
        {
            wal.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Persists what a Ready carries (entries, then hard state) with one sync, then makes the entries visible. The member's
    /// Ready loop is the one caller and waits for the sync anyway, so the write runs on its thread (<see cref="WriteAheadLog.Append"/>):
    /// no hand-off to the WAL's writer thread and back on the path of every commit. A Ready that only advances the commit index
    /// is written without an fdatasync (etcd's raft.MustSync rule: entries, term and vote must be durable; a commit index lost in
    /// a crash is learnt again from the leader), which spares a leader a second sync per proposal.
    /// </summary>
    public Task SaveAsync(IReadOnlyList<Entry> entries, HardState? hardState, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (entries.Count == 0 && hardState is null)
        {
            return Task.CompletedTask;
        }

        bool mustSync;
        lock (_lock)
        {
            mustSync = entries.Count > 0 || (hardState is { } next && (next.Term != _hardState.Term || next.Vote != _hardState.Vote));
        }

        _wal.Append(entries, hardState, mustSync);
        lock (_lock)
        {
            if (hardState is { } hs)
            {
                _hardState = hs;
            }

            if (entries.Count > 0)
            {
                var first = entries[0].Index;
                if (first <= _offsetIndex)
                {
                    // Already covered by the snapshot: keep only what lies after it.
                    entries = [.. entries.Where(e => e.Index > _offsetIndex)];
                    if (entries.Count == 0)
                    {
                        return Task.CompletedTask;
                    }

                    first = entries[0].Index;
                }

                var keep = (int)Math.Min((ulong)_entries.Count, first - _offsetIndex - 1);
                if (first - _offsetIndex - 1 > (ulong)_entries.Count)
                {
                    throw new InvalidOperationException($"Entry {first} would leave a gap after the last entry {LastIndexUnlocked()}.");
                }

                _entries.RemoveRange(keep, _entries.Count - keep);
                _entries.AddRange(entries);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Installs a snapshot received from the leader: snap file, then WAL marker, then the in-memory log restarts after it.</summary>
    public async Task ApplySnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken = default)
    {
        _snapshotter.Save(snapshot);
        var m = snapshot.Metadata;
        await _wal.SaveSnapshotAsync(new WalSnapshot(m.Index, m.Term, m.ConfState), cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _snapshot = snapshot;
            _confState = m.ConfState;
            var drop = _entries.FindIndex(e => e.Index > m.Index);
            var matches = drop > 0 && _entries[drop - 1].Index == m.Index && _entries[drop - 1].Term == m.Term;
            if (matches)
            {
                _entries.RemoveRange(0, drop); // the log beyond the snapshot agrees: keep it
            }
            else
            {
                _entries.Clear();
            }

            _offsetIndex = m.Index;
            _offsetTerm = m.Term;
        }

        _wal.ReleaseTo(m.Index);
    }

    /// <summary>
    /// Records a snapshot the host made of its own state at <paramref name="index"/> (applied): the snap file, then its marker in
    /// the WAL; then drops the log up to <paramref name="index"/> minus <paramref name="catchUpEntries"/> (entries a slow follower
    /// can still be sent instead of a snapshot, as etcd's SnapshotCatchUpEntries) and releases the WAL segments the snapshot
    /// covers (the segment holding <paramref name="index"/> and later ones stay).
    /// </summary>
    public async Task CreateSnapshotAsync(ulong index, ConfState confState, ReadOnlyMemory<byte> data, ulong catchUpEntries = 0,
        CancellationToken cancellationToken = default)
    {
        ulong term;
        lock (_lock)
        {
            if (index <= _snapshot.Metadata.Index)
            {
                throw new InvalidOperationException($"A snapshot at {index} is not newer than the current one at {_snapshot.Metadata.Index}.");
            }

            term = TermUnlocked(index);
        }

        var snapshot = new Snapshot(new SnapshotMetadata(index, term, confState), data);
        _snapshotter.Save(snapshot);
        await _wal.SaveSnapshotAsync(new WalSnapshot(index, term, confState), cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _snapshot = snapshot;
            _confState = confState;
            CompactUnlocked(index > catchUpEntries ? index - catchUpEntries : 0);
        }

        _snapshotter.Purge(_snapshotter.Keep);
        _wal.ReleaseTo(index);
    }

    private void CompactUnlocked(ulong index)
    {
        if (index <= _offsetIndex)
        {
            return;
        }

        var term = TermUnlocked(index);
        var drop = (int)Math.Min((ulong)_entries.Count, index - _offsetIndex);
        _entries.RemoveRange(0, drop);
        _offsetIndex = index;
        _offsetTerm = term;
    }

    public RaftInitialState InitialState()
    {
        lock (_lock)
        {
            return new RaftInitialState(_hardState, _confState);
        }
    }

    public IReadOnlyList<Entry> Entries(ulong lo, ulong hi, ulong maxBytes)
    {
        lock (_lock)
        {
            if (lo <= _offsetIndex)
            {
                throw new RaftLogCompactedException();
            }

            if (hi > LastIndexUnlocked() + 1)
            {
                throw new RaftLogUnavailableException($"Entries up to {hi - 1} requested, the log ends at {LastIndexUnlocked()}.");
            }

            var result = new List<Entry>();
            ulong size = 0;
            for (var i = lo; i < hi; i++)
            {
                var e = _entries[(int)(i - _offsetIndex - 1)];
                size += (ulong)e.Size;
                if (result.Count > 0 && size > maxBytes)
                {
                    break;
                }

                result.Add(e);
            }

            return result;
        }
    }

    public ulong Term(ulong index)
    {
        lock (_lock)
        {
            return TermUnlocked(index);
        }
    }

    private ulong TermUnlocked(ulong index)
    {
        if (index < _offsetIndex)
        {
            throw new RaftLogCompactedException();
        }

        if (index == _offsetIndex)
        {
            return _offsetTerm;
        }

        if (index > LastIndexUnlocked())
        {
            throw new RaftLogUnavailableException($"Term of {index} requested, the log ends at {LastIndexUnlocked()}.");
        }

        return _entries[(int)(index - _offsetIndex - 1)].Term;
    }

    public ulong FirstIndex()
    {
        lock (_lock)
        {
            return _offsetIndex + 1;
        }
    }

    public ulong LastIndex()
    {
        lock (_lock)
        {
            return LastIndexUnlocked();
        }
    }

    private ulong LastIndexUnlocked() => _offsetIndex + (ulong)_entries.Count;

    public Snapshot Snapshot()
    {
        lock (_lock)
        {
            return _snapshot;
        }
    }

    public void Dispose() => _wal.Dispose();
}
