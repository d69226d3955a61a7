using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using LightningDB;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace RaftKv.Storage.Mvcc;

/// <summary>Settings of the MVCC store.</summary>
public sealed class MvccOptions
{
    /// <summary>etcd's default --quota-backend-bytes (2 GiB).</summary>
    public const long DefaultQuotaBytes = 2L * 1024 * 1024 * 1024;

    /// <summary>etcd's --quota-backend-bytes: 0 = <see cref="DefaultQuotaBytes"/>, negative = no quota.</summary>
    public long QuotaBackendBytes { get; set; }

    /// <summary>etcd's --max-txn-ops.</summary>
    public int MaxTxnOps { get; set; } = 128;

    /// <summary>LMDB map size (address space reserved; the file grows only as needed).</summary>
    public long MapSizeBytes { get; set; } = 16L * 1024 * 1024 * 1024;

    /// <summary>Tests and benchmarks only: commits are not synced (a machine crash can corrupt the file).</summary>
    internal bool UnsafeNoSync { get; set; }

    /// <summary>
    /// Commits are not synced one by one (etcd's backend does not sync per write either): they reach the file through the page
    /// cache, and <see cref="MvccStore.Flush"/> makes everything committed durable. For an owner that keeps its WAL from
    /// <see cref="MvccStore.DurableIndex"/> on and replays it at start-up: a process crash loses nothing, a machine crash can
    /// undo the commits since the last flush, which the WAL replays. The owner must flush before it drops WAL entries
    /// (snapshot, segment release), regularly (to bound the replay), and <see cref="MvccStore.Dispose"/> flushes on close.
    /// </summary>
    public bool DeferSync { get; set; }

    /// <summary>
    /// Bytes of values (each at most <see cref="MaxCachedValueBytes"/>) kept in memory for the latest revision of each key, so point
    /// reads at the current revision skip LMDB. 0 turns the cache off.
    /// </summary>
    public long LatestValueCacheBytes { get; set; } = 256L * 1024 * 1024;

    public int MaxCachedValueBytes { get; set; } = 4096;

    internal long EffectiveQuota => QuotaBackendBytes == 0 ? DefaultQuotaBytes : QuotaBackendBytes;
}

/// <summary>A change made by a write, in revision order (what watchers are sent).</summary>
public sealed record StoreEvent(bool IsDelete, KeyValue Kv);

/// <summary>One committed Raft entry for the store: its log position and the request it carries.</summary>
public sealed record ApplyCommand(ulong Index, ulong Term, object? Request)
{
    /// <summary>A command that only advances the consistent index (empty entries, membership changes, leases...).</summary>
    public static ApplyCommand NoOp(ulong index, ulong term) => new(index, term, null);
}

/// <summary>The outcome of one <see cref="ApplyCommand"/>: a response or an etcd error, and the events it produced.</summary>
public sealed record ApplyResult(ulong Index, object? Response, StoreException? Error, IReadOnlyList<StoreEvent> Events, bool Skipped = false);

/// <summary>
/// etcd's MVCC key-value store on LMDB (<c>member/snap/db</c>). Every write request gets one main revision (the first is 2: an
/// empty store is at revision 1), changes inside a txn get sub-revisions. LMDB table "key" maps revision bytes to the
/// protobuf KeyValue (tombstones marked 't'); table "meta" holds the consistent index, term, compaction marks and the
/// NOSPACE and CORRUPT alarms. The key index (key to generations of revisions) lives in memory and is rebuilt on open.
/// <para>
/// One writer at a time (the apply loop); reads run concurrently at the last committed revision. <see cref="Apply"/> commits a
/// whole batch of entries in one LMDB transaction together with the consistent index, so after a crash the store is exactly at
/// some applied index and replaying the WAL from there (skipping indexes already applied) rebuilds the rest.
/// </para>
/// </summary>
public sealed partial class MvccStore : IDisposable
{
    private static readonly byte[] ConsistentIndexKey = "consistent_index"u8.ToArray();
    private static readonly byte[] TermKey = "term"u8.ToArray();
    private static readonly byte[] ScheduledCompactKey = "scheduledCompactRev"u8.ToArray();
    private static readonly byte[] FinishedCompactKey = "finishedCompactRev"u8.ToArray();
    private static readonly byte[] NoSpaceAlarmKey = "alarm_nospace"u8.ToArray();
    private static readonly byte[] CorruptAlarmKey = "alarm_corrupt"u8.ToArray();

    private readonly string _path;
    private readonly MvccOptions _options;
    private readonly ILogger _logger;
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly Lock _writerLock = new();

    // Held while the environment is synced, replaced or closed (a flush runs beside writers and readers, never beside a swap).
    private readonly Lock _flushLock = new();
    private long _commits;
    private long _flushedCommits;
    private ulong _durableIndex;
    private readonly ConcurrentBag<LightningTransaction> _readers = [];
    private LightningEnvironment _env = null!;
    private LightningDatabase _keyDb = null!;
    private LightningDatabase _metaDb = null!;
    private TreeIndex _index = new();
    private volatile StoreState _state = new(1, -1, 0, 0, false, 0);

    // Set when a compaction changes the key index, before its transaction commits: readers that start in between must
    // refuse revisions the index no longer has, even though the published state still shows the older compaction.
    private long _compactFloor = -1;

    // Bytes held by KeyIndex.Latest values; changed only by the writer (under the write lock) and by Rebuild.
    private long _cachedBytes;
    private bool _disposed;

    /// <summary>What readers see: changed only after the LMDB commit that made it true.</summary>
    private sealed record StoreState(long CurrentRevision, long CompactRevision, ulong ConsistentIndex, ulong Term, bool NoSpaceAlarm, ulong CorruptAlarmMember);

    static MvccStore() => LmdbLibrary.EnsureResolver();

    private MvccStore(string path, MvccOptions options, ILogger logger)
    {
        _path = path;
        _options = options;
        _logger = logger;
    }

    /// <summary>Opens (or creates) the store file at <paramref name="path"/> (etcd's <c>member/snap/db</c>) and rebuilds the key index.</summary>
    public static MvccStore Open(string path, MvccOptions? options = null, ILogger? logger = null)
    {
        var store = new MvccStore(path, options ?? new MvccOptions(), logger ?? NullLogger.Instance);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        store.OpenEnvironment();
        return store;
    }

    public long CurrentRevision => _state.CurrentRevision;

    /// <summary>The revision of the last compaction (-1 when never compacted).</summary>
    public long CompactRevision => _state.CompactRevision;

    /// <summary>Index of the last Raft entry applied (stored in the same transaction as its effects).</summary>
    public ulong ConsistentIndex => _state.ConsistentIndex;

    public ulong Term => _state.Term;

    /// <summary>
    /// The consistent index that is on disk for sure: equal to <see cref="ConsistentIndex"/> when every commit syncs; with
    /// <see cref="MvccOptions.DeferSync"/>, the consistent index as of the last <see cref="Flush"/> (or open). A machine crash
    /// leaves the store at or after it; the WAL entries after it must be kept.
    /// </summary>
    public ulong DurableIndex => _options.DeferSync ? Interlocked.Read(ref _durableIndex) : _state.ConsistentIndex;

    public bool NoSpaceAlarm => _state.NoSpaceAlarm;

    /// <summary>The member the CORRUPT alarm names, or 0 when it is not active.</summary>
    public ulong CorruptAlarmMember => _state.CorruptAlarmMember;

    /// <summary>True when commits are not synced one by one (<see cref="MvccOptions.DeferSync"/>).</summary>
    public bool DefersSync => _options.DeferSync;

    /// <summary>Number of keys the index tracks (live or with history).</summary>
    public int IndexedKeys
    {
        get
        {
            _lock.EnterReadLock();
            try
            {
                return _index.Count;
            }
            finally
            {
                _lock.ExitReadLock();
            }
        }
    }

    /// <summary>Bytes of the database file in use (etcd_mvcc_db_total_size_in_bytes).</summary>
    public long SizeBytes
    {
        get
        {
            var info = _env.Info;
            return ((long)info.LastPageNumber + 1) * _env.EnvironmentStats.PageSize;
        }
    }

    private void OpenEnvironment()
    {
        _env = new LightningEnvironment(_path, new EnvironmentConfiguration { MapSize = _options.MapSizeBytes, MaxDatabases = 8, MaxReaders = 256 });

        // NoMetaSync: each commit syncs its data pages; a crash can only undo the last commit, which the WAL replays.
        // NoSync (DeferSync): commits only write to the page cache; Flush syncs them (see MvccOptions.DeferSync).
        var flags = EnvironmentOpenFlags.NoSubDir | EnvironmentOpenFlags.NoMetaSync | EnvironmentOpenFlags.NoThreadLocalStorage | EnvironmentOpenFlags.NoReadAhead;
        _env.Open(_options.UnsafeNoSync || _options.DeferSync ? flags | EnvironmentOpenFlags.NoSync : flags);
        using (var tx = _env.BeginTransaction())
        {
            _keyDb = tx.OpenDatabase("key", new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
            _metaDb = tx.OpenDatabase("meta", new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
            _leaseDb = tx.OpenDatabase("lease", new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
            _authDb = tx.OpenDatabase("auth", new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
            tx.Commit().ThrowOnError();
        }

        Rebuild();
        if (!_options.UnsafeNoSync)
        {
            // Whatever the file holds now (new tables, a swapped-in copy, a compaction finished by Rebuild) is on disk before use.
            _env.Flush(force: true).ThrowOnError();
        }
    }

    /// <summary>Rebuilds the key index and the state from the file (etcd's restore).</summary>
    private void Rebuild()
    {
        var started = Stopwatch.GetTimestamp();
        var index = new TreeIndex();
        var keyLeases = new Dictionary<byte[], long>(ByteKeyComparer.Instance);
        _cachedBytes = 0;
        long current = 1;
        using var tx = _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        var compact = ReadRevisionMeta(tx, FinishedCompactKey) ?? -1;
        var scheduled = ReadRevisionMeta(tx, ScheduledCompactKey) ?? -1;
        using (var cursor = tx.CreateCursor(_keyDb))
        {
            var (rc, k, v) = cursor.First();
            while (rc == MDBResultCode.Success)
            {
                var keyBytes = k.AsSpan();
                var rev = Codec.ReadRevision(keyBytes);
                var tomb = Codec.IsTombstone(keyBytes);
                var kv = Codec.DecodeKeyValue(v.AsSpan(), keysOnly: tomb);
                var ki = index.Find(kv.Key);
                if (ki is not null && !ki.IsEmpty)
                {
                    if (tomb)
                    {
                        if (!ki.Generations[^1].IsEmpty)
                        {
                            ki.Tombstone(rev);
                        }
                    }
                    else
                    {
                        ki.Put(rev);
                    }
                }
                else if (!tomb)
                {
                    ki = index.GetOrAdd(kv.Key);
                    ki.Restore(new Revision(kv.CreateRevision, 0), rev, kv.Version);
                }

                if (ki is not null)
                {
                    SetLatest(ki, tomb ? null : kv);
                }

                if (!tomb && kv.Lease != 0)
                {
                    keyLeases[kv.Key] = kv.Lease;
                }
                else
                {
                    keyLeases.Remove(kv.Key);
                }

                current = Math.Max(current, rev.Main);
                (rc, k, v) = cursor.Next();
            }
        }

        current = Math.Max(current, compact);
        var ci = ReadU64Meta(tx, ConsistentIndexKey);
        var term = ReadU64Meta(tx, TermKey);
        var alarm = tx.Get(_metaDb, NoSpaceAlarmKey).resultCode == MDBResultCode.Success;
        var corrupt = ReadU64Meta(tx, CorruptAlarmKey);
        RebuildLeases(tx, keyLeases);
        RebuildAuth(tx);
        tx.Abort();
        _index = index;
        if (scheduled > compact)
        {
            // A compaction recorded as scheduled but not finished (one-transaction compaction never leaves this; other writers might).
            using var wtx = _env.BeginTransaction();
            CompactCore(wtx, scheduled);
            wtx.Commit().ThrowOnError();
            compact = scheduled;
        }

        Volatile.Write(ref _compactFloor, compact);
        _state = new StoreState(current, compact, ci, term, alarm, corrupt);
        Interlocked.Exchange(ref _durableIndex, ci); // what a reopened file holds (ReplaceFile syncs a swapped-in file first)
        var elapsedMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        LogOpened(_logger, _path, current, compact, ci, index.Count, elapsedMs);
    }

    private static long? ReadRevisionMeta(LightningTransaction tx, LightningDatabase db, byte[] key)
    {
        var (rc, _, v) = tx.Get(db, key);
        return rc == MDBResultCode.Success && v.AsSpan().Length >= Codec.RevisionBytes ? Codec.ReadRevision(v.AsSpan()).Main : null;
    }

    private long? ReadRevisionMeta(LightningTransaction tx, byte[] key) => ReadRevisionMeta(tx, _metaDb, key);

    private ulong ReadU64Meta(LightningTransaction tx, byte[] key)
    {
        var (rc, _, v) = tx.Get(_metaDb, key);
        return rc == MDBResultCode.Success && v.AsSpan().Length == 8 ? BinaryPrimitives.ReadUInt64BigEndian(v.AsSpan()) : 0;
    }

    // ---------------------------------------------------------------- reads

    /// <summary>etcd's Range at the last committed revision.</summary>
    public RangeResponse Range(RangeRequest request)
    {
        if (request.Key.Length == 0)
        {
            throw new StoreException(StoreErrorCode.EmptyKey);
        }

        if (request.RangeEnd.Length == 0 && !request.CountOnly && request.Revision <= 0 && request.SortOrder == SortOrder.None
            && request.SortTarget == SortTarget.Key && request.MinModRevision == 0 && request.MaxModRevision == 0
            && request.MinCreateRevision == 0 && request.MaxCreateRevision == 0)
        {
            return PointRange(request.Key, request.KeysOnly);
        }

        return Read(view => view.Range(request));
    }

    /// <summary>The common read (one key, current revision, no options) without the general machinery.</summary>
    private RangeResponse PointRange(byte[] key, bool keysOnly)
    {
        _lock.EnterReadLock();
        LightningTransaction? tx = null;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var current = _state.CurrentRevision;
            if (_index.Find(key) is not { } ki || !ki.TryGet(current, out var modified, out _, out _))
            {
                return new RangeResponse(current, [], false, 0);
            }

            if (ki.Latest is { } cached && cached.ModRevision == modified.Main)
            {
                return new RangeResponse(current, [keysOnly ? cached with { Value = [] } : cached], false, 1);
            }

            tx = RentReader();
            Span<byte> revKey = stackalloc byte[Codec.RevisionBytes];
            Codec.WriteRevision(revKey, modified);
            var (rc, _, value) = tx.Get(_keyDb, revKey);
            if (rc != MDBResultCode.Success)
            {
                throw new InvalidOperationException($"The key index names revision {modified} but the database has no such record; the store is inconsistent.");
            }

            var kv = Codec.DecodeKeyValue(value.AsSpan(), keysOnly, ki.Key);
            return new RangeResponse(current, [kv], false, 1);
        }
        finally
        {
            if (tx is not null)
            {
                ReturnReader(tx);
            }

            _lock.ExitReadLock();
        }
    }

    /// <summary>Runs a read-only txn (no puts or deletes in any branch) at the last committed revision.</summary>
    public TxnResponse ReadTxn(TxnRequest request)
    {
        TxnLogic.Validate(request, _options.MaxTxnOps);
        if (!TxnLogic.IsReadOnly(request))
        {
            throw new InvalidOperationException("The txn writes; apply it through the log (Apply).");
        }

        return Read(view => TxnLogic.Execute(view, request));
    }

    private T Read<T>(Func<View, T> body)
    {
        _lock.EnterReadLock();
        LightningTransaction? tx = null;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var state = _state; // captured before the LMDB snapshot: the snapshot holds at least this revision
            tx = RentReader();
            var compact = Math.Max(state.CompactRevision, Volatile.Read(ref _compactFloor));
            return body(new View(this, tx, state.CurrentRevision, compact, null));
        }
        finally
        {
            if (tx is not null)
            {
                ReturnReader(tx);
            }

            _lock.ExitReadLock();
        }
    }

    private LightningTransaction RentReader()
    {
        if (_readers.TryTake(out var tx))
        {
            tx.Renew().ThrowOnError();
            return tx;
        }

        return _env.BeginTransaction(TransactionBeginFlags.ReadOnly);
    }

    private void ReturnReader(LightningTransaction tx)
    {
        tx.Reset();
        if (_readers.Count < 64)
        {
            _readers.Add(tx);
        }
        else
        {
            tx.Dispose();
        }
    }

    private void DropReaders()
    {
        while (_readers.TryTake(out var tx))
        {
            tx.Dispose();
        }
    }

    /// <summary>Changes with revisions in [<paramref name="fromRevision"/>, current], in order, for at most <paramref name="limit"/> events (watch catch-up).</summary>
    public IReadOnlyList<StoreEvent> ReadEvents(long fromRevision, int limit = int.MaxValue)
    {
        return Read(view =>
        {
            if (fromRevision < view.CompactRevision)
            {
                throw new StoreException(StoreErrorCode.Compacted);
            }

            var events = new List<StoreEvent>();
            using var cursor = view.Tx.CreateCursor(_keyDb);
            var start = Codec.RevisionKey(new Revision(Math.Max(fromRevision, 0), 0), false);
            var rc = cursor.SetRange(start);
            if (rc != MDBResultCode.Success)
            {
                return events;
            }

            var (c, k, v) = cursor.GetCurrent();
            while (c == MDBResultCode.Success && events.Count < limit)
            {
                var rev = Codec.ReadRevision(k.AsSpan());
                if (rev.Main > view.ReadRevision)
                {
                    break;
                }

                var kv = Codec.DecodeKeyValue(v.AsSpan());
                var tomb = Codec.IsTombstone(k.AsSpan());
                events.Add(new StoreEvent(tomb, tomb ? kv with { ModRevision = rev.Main } : kv));
                (c, k, v) = cursor.Next();
            }

            return events;
        });
    }

    /// <summary>etcd's Hash: CRC-32C of every table name, key and value, except the consistent index and term.</summary>
    public (uint Hash, long Revision) Hash()
    {
        return Read(view =>
        {
            var crc = 0u;
            // The auth table counts once it holds something, so a store without auth hashes as before it existed.
            var tables = _auth.IsEmpty ? new[] { ("key", _keyDb), ("lease", _leaseDb), ("meta", _metaDb) } : [("auth", _authDb), ("key", _keyDb), ("lease", _leaseDb), ("meta", _metaDb)];
            foreach (var (name, db) in tables)
            {
                crc = Crc32C.Append(crc, System.Text.Encoding.ASCII.GetBytes(name));
                using var cursor = view.Tx.CreateCursor(db);
                var (rc, k, v) = cursor.First();
                while (rc == MDBResultCode.Success)
                {
                    var ignored = db == _metaDb && (k.AsSpan().SequenceEqual(ConsistentIndexKey) || k.AsSpan().SequenceEqual(TermKey));
                    if (!ignored)
                    {
                        crc = Crc32C.Append(Crc32C.Append(crc, k.AsSpan()), v.AsSpan());
                    }

                    (rc, k, v) = cursor.Next();
                }
            }

            return (crc, view.ReadRevision);
        });
    }

    /// <summary>
    /// etcd's HashKV: CRC-32C of "key" and then every stored (revision, KeyValue) up to <paramref name="revision"/> (0 = current)
    /// that a compaction at the current compact revision keeps, so members that compacted at different moments agree.
    /// </summary>
    public HashKvResponse HashKv(long revision)
    {
        return Read(view =>
        {
            var compact = view.CompactRevision;
            var current = view.ReadRevision;
            if (revision > 0 && revision < compact)
            {
                throw new StoreException(StoreErrorCode.Compacted);
            }

            if (revision > current)
            {
                throw new StoreException(StoreErrorCode.FutureRevision);
            }

            var rev = revision <= 0 ? current : revision;
            var keep = new HashSet<Revision>();
            foreach (var ki in _index.All())
            {
                ki.Keep(rev, keep);
            }

            var crc = Crc32C.Compute("key"u8);
            using var cursor = view.Tx.CreateCursor(_keyDb);
            var (rc, k, v) = cursor.First();
            while (rc == MDBResultCode.Success)
            {
                var key = k.AsSpan();
                var kr = Codec.ReadRevision(key);
                var include = kr < new Revision(rev + 1, 0);
                if (include && kr < new Revision(compact + 1, 0) && keep.Count > 0 && !keep.Contains(kr))
                {
                    include = false;
                }

                if (include && kr.Main == compact && Codec.IsTombstone(key))
                {
                    include = false;
                }

                if (include)
                {
                    crc = Crc32C.Append(Crc32C.Append(crc, key), v.AsSpan());
                }

                (rc, k, v) = cursor.Next();
            }

            return new HashKvResponse(current, crc, compact, rev);
        });
    }

    // ---------------------------------------------------------------- quota

    /// <summary>etcd's request cost for the quota: 256 bytes of overhead plus key and value sizes.</summary>
    public static long Cost(object request) => request switch
    {
        PutRequest p => 256 + p.Key.Length + p.Value.Length,
        TxnRequest t => t.Success.Concat(t.Failure).Sum(op => op.Put is { } p ? Cost(p) : op.Txn is { } n ? Cost(n) : 0),
        _ => 0,
    };

    /// <summary>
    /// etcd's quota check, run before proposing a write: false when the write would take the database to the quota
    /// (--quota-backend-bytes). The caller then replicates an <see cref="AlarmAction.Activate"/> command and answers NOSPACE
    /// ("etcdserver: mvcc: database space exceeded"). Requests without cost (reads, deletes) always pass.
    /// </summary>
    public bool QuotaAvailable(object request)
    {
        var cost = Cost(request);
        return cost == 0 || _options.QuotaBackendBytes < 0 || SizeBytes + cost < _options.EffectiveQuota;
    }

    /// <summary>Throws NOSPACE while the alarm is active (what etcd answers to puts, write txns and lease grants then).</summary>
    public void EnsureWritable()
    {
        if (_state.NoSpaceAlarm)
        {
            throw new StoreException(StoreErrorCode.NoSpace);
        }
    }

    // ---------------------------------------------------------------- writes

    /// <summary>
    /// Applies committed entries in one LMDB transaction with the consistent index: entries at or below the stored consistent
    /// index are skipped (applying twice changes nothing). Request errors are results, not exceptions. Requests: <see cref="PutRequest"/>,
    /// <see cref="DeleteRangeRequest"/>, <see cref="TxnRequest"/>, <see cref="CompactionRequest"/>, <see cref="AlarmAction"/>, <see cref="LeaseGrantRequest"/>, <see cref="LeaseRevokeRequest"/>, or null.
    /// </summary>
    public IReadOnlyList<ApplyResult> Apply(IReadOnlyList<ApplyCommand> commands) => ApplyInternal(commands, advanceIndex: true);

    /// <summary>Applies one request outside the log (tests, tools): the consistent index does not move.</summary>
    public object Write(object request)
    {
        var r = ApplyInternal([new ApplyCommand(0, 0, request)], advanceIndex: false)[0];
        return r.Error is not null ? throw r.Error : r.Response!;
    }

    public PutResponse Put(PutRequest request) => (PutResponse)Write(request);

    public DeleteRangeResponse DeleteRange(DeleteRangeRequest request) => (DeleteRangeResponse)Write(request);

    public TxnResponse Txn(TxnRequest request) => TxnLogic.IsReadOnly(request) ? ReadTxn(request) : (TxnResponse)Write(request);

    public CompactionResponse Compact(long revision) => (CompactionResponse)Write(new CompactionRequest(revision));

    private List<ApplyResult> ApplyInternal(IReadOnlyList<ApplyCommand> commands, bool advanceIndex)
    {
        lock (_writerLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var results = new List<ApplyResult>(commands.Count);
            var state = _state;
            var tx = _env.BeginTransaction();
            var undo = new List<KeyIndex>();
            _leaseUndo.Clear();
            _authWorking = _auth;
            var committed = false;
            _lock.EnterWriteLock();
            try
            {
                var current = state.CurrentRevision;
                var compact = state.CompactRevision;
                var alarm = state.NoSpaceAlarm;
                var corrupt = state.CorruptAlarmMember;
                var ci = state.ConsistentIndex;
                var term = state.Term;
                foreach (var cmd in commands)
                {
                    if (advanceIndex && cmd.Index <= ci)
                    {
                        results.Add(new ApplyResult(cmd.Index, null, null, [], Skipped: true));
                        continue;
                    }

                    var ctx = new WriteContext(this, tx, current, compact, undo);
                    var undoMark = undo.Count;
                    var leaseMark = _leaseUndo.Count;
                    object? response = null;
                    StoreException? error = null;
                    try
                    {
                        response = ApplyOne(ctx, cmd.Request, ref alarm, ref corrupt, ref compact);
                    }
                    catch (StoreException ex)
                    {
                        error = ex;
                        ctx.Rollback(undoMark);
                        UndoLeases(leaseMark);
                    }

                    if (error is null && ctx.Changes > 0)
                    {
                        current++;
                    }

                    if (advanceIndex)
                    {
                        ci = cmd.Index;
                        term = cmd.Term;
                    }

                    results.Add(new ApplyResult(cmd.Index, response, error, error is null ? ctx.Events : []));
                }

                if (advanceIndex)
                {
                    var b = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(b, ci);
                    tx.Put(_metaDb, ConsistentIndexKey, b).ThrowOnError();
                    var t = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(t, term);
                    tx.Put(_metaDb, TermKey, t).ThrowOnError();
                }

                _lock.ExitWriteLock();
                tx.Commit().ThrowOnError();
                committed = true;
                _auth = _authWorking;
                _state = new StoreState(current, compact, ci, term, alarm, corrupt);
                Interlocked.Increment(ref _commits);
                return results;
            }
            catch
            {
                if (_lock.IsWriteLockHeld)
                {
                    _lock.ExitWriteLock();
                }

                if (!committed)
                {
                    // Keep memory consistent with the file: undo the index changes of the aborted batch.
                    _lock.EnterWriteLock();
                    try
                    {
                        for (var i = undo.Count - 1; i >= 0; i--)
                        {
                            UndoLast(undo[i]);
                        }

                        UndoLeases(0);
                        _authWorking = _auth;
                    }
                    finally
                    {
                        _lock.ExitWriteLock();
                    }

                    tx.Abort();
                }

                throw;
            }
            finally
            {
                tx.Dispose();
            }
        }
    }

    /// <summary>Records (or drops) the cached latest value of a key; called by the writer under the write lock.</summary>
    private void SetLatest(KeyIndex ki, KeyValue? kv)
    {
        if (ki.Latest is { } old)
        {
            _cachedBytes -= old.Value.Length;
            ki.Latest = null;
        }

        if (kv is not null && kv.Value.Length <= _options.MaxCachedValueBytes && _cachedBytes + kv.Value.Length <= _options.LatestValueCacheBytes)
        {
            ki.Latest = kv;
            _cachedBytes += kv.Value.Length;
        }
    }

    /// <summary>Stores one revision. Revisions only grow, so LMDB can append to the end of the tree instead of searching it.</summary>
    private void PutRevision(LightningTransaction tx, byte[] key, byte[] value)
    {
        if (tx.Put(_keyDb, key, value, PutOptions.AppendData) != MDBResultCode.Success)
        {
            tx.Put(_keyDb, key, value).ThrowOnError(); // not after the last key (an aborted write left a hole): ordinary insert
        }
    }

    private void UndoLast(KeyIndex ki)
    {
        SetLatest(ki, null);
        ki.RemoveLast();
        if (ki.IsEmpty)
        {
            _index.Remove(ki);
        }
    }

    private object? ApplyOne(WriteContext ctx, object? request, ref bool alarm, ref ulong corrupt, ref long compact)
    {
        // etcd's corrupt applier: with the CORRUPT alarm active every write is refused (reads are served).
        var isWrite = (request is AuthorizedRequest wrapped ? wrapped.Request : request) is PutRequest or DeleteRangeRequest or CompactionRequest or LeaseGrantRequest or LeaseRevokeRequest
            || ((request is AuthorizedRequest w ? w.Request : request) is TxnRequest t && !TxnLogic.IsReadOnly(t));
        if (corrupt != 0 && isWrite)
        {
            throw new StoreException(StoreErrorCode.Corrupt);
        }

        switch (request)
        {
            case null:
                return null;
            case AuthorizedRequest authorized:
                return ApplyAuthorized(ctx, authorized, ref alarm, ref corrupt, ref compact);
            case AuthRequest auth:
                return ApplyAuth(ctx, auth);
            case CorruptAlarmRequest ca:
                corrupt = ca.Activate ? (corrupt == 0 ? ca.MemberId : corrupt) : 0;
                if (corrupt != 0)
                {
                    var id = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(id, corrupt);
                    ctx.Tx.Put(_metaDb, CorruptAlarmKey, id).ThrowOnError();
                }
                else
                {
                    var deleted = ctx.Tx.Delete(_metaDb, CorruptAlarmKey);
                    if (deleted is not MDBResultCode.Success and not MDBResultCode.NotFound)
                    {
                        deleted.ThrowOnError();
                    }
                }

                return ca;
            case PutRequest put:
                if (alarm)
                {
                    throw new StoreException(StoreErrorCode.NoSpace);
                }

                TxnLogic.ValidatePut(put);
                EnsureLeaseExists(put.Lease); // a single put checks the lease before the key (etcd's applier Put)
                return TxnLogic.ExecutePut(ctx, put, checkExists: true);
            case DeleteRangeRequest del:
                if (del.Key.Length == 0)
                {
                    throw new StoreException(StoreErrorCode.EmptyKey);
                }

                return TxnLogic.ExecuteDelete(ctx, del);
            case TxnRequest txn:
                TxnLogic.Validate(txn, _options.MaxTxnOps);
                if (alarm && !TxnLogic.IsReadOnly(txn))
                {
                    throw new StoreException(StoreErrorCode.NoSpace);
                }

                return TxnLogic.Execute(ctx, txn);
            case LeaseGrantRequest grant:
                if (alarm)
                {
                    throw new StoreException(StoreErrorCode.NoSpace);
                }

                return ApplyGrant(ctx, grant);
            case LeaseRevokeRequest revoke:
                return ApplyRevoke(ctx, revoke);
            case CompactionRequest c:
                if (c.Revision <= compact)
                {
                    throw new StoreException(StoreErrorCode.Compacted);
                }

                if (c.Revision > ctx.BeginRevision)
                {
                    throw new StoreException(StoreErrorCode.FutureRevision);
                }

                Volatile.Write(ref _compactFloor, c.Revision);
                CompactCore(ctx.Tx, c.Revision);
                compact = c.Revision;
                return new CompactionResponse(ctx.BeginRevision);
            case AlarmAction a:
                alarm = a == AlarmAction.Activate;
                if (alarm)
                {
                    ctx.Tx.Put(_metaDb, NoSpaceAlarmKey, new byte[] { 1 }).ThrowOnError();
                }
                else
                {
                    var rc = ctx.Tx.Delete(_metaDb, NoSpaceAlarmKey);
                    if (rc is not MDBResultCode.Success and not MDBResultCode.NotFound)
                    {
                        rc.ThrowOnError();
                    }
                }

                return a;
            default:
                throw new ArgumentException($"Unknown store request type {request.GetType().Name}.", nameof(request));
        }
    }

    /// <summary>Compacts the index and deletes every stored revision at or below <paramref name="rev"/> that it no longer needs.</summary>
    private void CompactCore(LightningTransaction tx, long rev)
    {
        var revBytes = Codec.RevisionKey(new Revision(rev, 0), false);
        tx.Put(_metaDb, ScheduledCompactKey, revBytes).ThrowOnError();
        var keep = new HashSet<Revision>();
        var emptied = new List<KeyIndex>();
        foreach (var ki in _index.All())
        {
            ki.Compact(rev, keep);
            if (ki.IsEmpty)
            {
                emptied.Add(ki);
            }
        }

        foreach (var ki in emptied)
        {
            _index.Remove(ki);
        }

        var doomed = new List<byte[]>();
        using (var cursor = tx.CreateCursor(_keyDb))
        {
            var (rc, k, _) = cursor.First();
            while (rc == MDBResultCode.Success)
            {
                var r = Codec.ReadRevision(k.AsSpan());
                if (r.Main > rev)
                {
                    break;
                }

                if (!keep.Contains(r))
                {
                    doomed.Add(k.CopyToNewArray());
                }

                (rc, k, _) = cursor.Next();
            }
        }

        foreach (var key in doomed)
        {
            tx.Delete(_keyDb, key).ThrowOnError();
        }

        tx.Put(_metaDb, FinishedCompactKey, revBytes).ThrowOnError();
        LogCompacted(_logger, rev, doomed.Count);
    }

    // ---------------------------------------------------------------- maintenance

    /// <summary>Rewrites the database without free pages (etcd's defragment); blocks reads and writes while it runs.</summary>
    public void Defragment()
    {
        lock (_writerLock)
        {
            _lock.EnterWriteLock();
            try
            {
                var before = SizeBytes;
                DropReaders();
                var tmp = _path + ".defrag";
                File.Delete(tmp);
                _env.CopyTo(tmp, compact: true).ThrowOnError();
                ReplaceFile(tmp);
                LogDefragmented(_logger, before, SizeBytes);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>Writes a consistent copy of the whole store (what a follower needs in a snapshot) to <paramref name="destination"/>.</summary>
    public void WriteSnapshot(Stream destination)
    {
        var tmp = _path + ".snapshot-" + Guid.NewGuid().ToString("N");
        try
        {
            _lock.EnterReadLock();
            try
            {
                _env.CopyTo(tmp, compact: true).ThrowOnError();
            }
            finally
            {
                _lock.ExitReadLock();
            }

            using var source = File.OpenRead(tmp);
            source.CopyTo(destination);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    /// <summary>
    /// Writes a consistent copy of the whole store (every table in the LMDB environment, compacted) to the file
    /// <paramref name="path"/> (replaced if present) and returns the Raft position it holds: the consistent index and the term
    /// of that entry. Writers wait while the copy runs; readers do not.
    /// </summary>
    public (ulong Index, ulong Term) CopyTo(string path)
    {
        lock (_writerLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            File.Delete(path);
            _env.CopyTo(path, compact: true).ThrowOnError();
            var state = _state;
            return (state.ConsistentIndex, state.Term);
        }
    }

    /// <summary>
    /// Reads the Raft position (consistent index, term) recorded in a store file written by <see cref="CopyTo"/>, without
    /// opening it as the store; throws <see cref="InvalidDataException"/> when the file is not a readable store.
    /// </summary>
    public static (ulong Index, ulong Term) ReadPosition(string path)
    {
        LmdbLibrary.EnsureResolver();
        try
        {
            using var env = new LightningEnvironment(path, new EnvironmentConfiguration { MaxDatabases = 8, MaxReaders = 4 });
            env.Open(EnvironmentOpenFlags.NoSubDir | EnvironmentOpenFlags.ReadOnly | EnvironmentOpenFlags.NoLock);
            using var tx = env.BeginTransaction(TransactionBeginFlags.ReadOnly);
            using var meta = tx.OpenDatabase("meta");
            return (ReadU64(tx, meta, ConsistentIndexKey), ReadU64(tx, meta, TermKey));
        }
        catch (LightningException e)
        {
            throw new InvalidDataException($"'{path}' is not a readable store file: {e.Message}", e);
        }

        static ulong ReadU64(LightningTransaction tx, LightningDatabase db, byte[] key)
        {
            var (rc, _, v) = tx.Get(db, key);
            return rc == MDBResultCode.Success && v.AsSpan().Length == 8 ? BinaryPrimitives.ReadUInt64BigEndian(v.AsSpan()) : 0;
        }
    }

    /// <summary>
    /// Makes a store file (a snapshot of another cluster's store) the start of a new cluster's: records the Raft position
    /// <paramref name="index"/> and <paramref name="term"/> in it (the new cluster's snapshot it stands for), so the new log's
    /// entries after that index are applied to it and members that join later get it as a snapshot.
    /// Keys, revisions, compaction, leases and alarms stay, as etcd's snapshot restore keeps them.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a readable store.</exception>
    public static void SetPosition(string path, ulong index, ulong term)
    {
        LmdbLibrary.EnsureResolver();
        try
        {
            using var env = new LightningEnvironment(path, new EnvironmentConfiguration
            {
                MaxDatabases = 8,
                MaxReaders = 4,
                MapSize = Math.Max(new FileInfo(path).Length * 2, 64L << 20),
            });
            env.Open(EnvironmentOpenFlags.NoSubDir | EnvironmentOpenFlags.NoLock);
            using (var tx = env.BeginTransaction())
            {
                using var meta = tx.OpenDatabase("meta");
                foreach (var (key, value) in new[] { (ConsistentIndexKey, index), (TermKey, term) })
                {
                    var bytes = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
                    tx.Put(meta, key, bytes).ThrowOnError();
                }

                tx.Commit().ThrowOnError();
            }

            env.Flush(force: true).ThrowOnError();
        }
        catch (LightningException e)
        {
            throw new InvalidDataException($"'{path}' is not a readable store file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Replaces the whole store with the store file at <paramref name="path"/> (a snapshot received from the leader, written by
    /// <see cref="CopyTo"/>): closes the environment, renames the file over the store's, reopens and rebuilds the key index.
    /// The file is moved, not copied.
    /// </summary>
    public void ReplaceWith(string path)
    {
        lock (_writerLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _lock.EnterWriteLock();
            try
            {
                DropReaders();
                ReplaceFile(path);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    /// <summary>Replaces the whole store with a copy written by <see cref="WriteSnapshot"/> (a follower installing a snapshot).</summary>
    public void RestoreSnapshot(Stream source)
    {
        var tmp = _path + ".restore";
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            source.CopyTo(file);
            file.Flush(flushToDisk: true);
        }

        lock (_writerLock)
        {
            _lock.EnterWriteLock();
            try
            {
                DropReaders();
                ReplaceFile(tmp);
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
    }

    private void ReplaceFile(string replacement)
    {
        lock (_flushLock)
        {
            _env.Dispose();
            File.Move(replacement, _path, overwrite: true);
            OsFileSystemSync(Path.GetDirectoryName(Path.GetFullPath(_path))!);
            OpenEnvironment(); // syncs the new file (a defragmented copy, a received image) before anything relies on it
            Interlocked.Exchange(ref _flushedCommits, Interlocked.Read(ref _commits));
        }
    }

    private static void OsFileSystemSync(string directory) => Wal.OsFileSystem.Instance.SyncDirectory(directory);

    /// <summary>
    /// Forces everything committed onto disk (also the meta page that NoMetaSync leaves for the next commit) and returns the
    /// <see cref="DurableIndex"/> that holds afterwards. Runs beside writers and readers (only a store swap waits for it).
    /// </summary>
    public ulong Flush() => FlushCore(onlyIfChanged: false).DurableIndex;

    /// <summary>Like <see cref="Flush"/>, but syncs only when something was committed since the last flush; returns whether it synced.</summary>
    public bool FlushIfChanged() => FlushCore(onlyIfChanged: true).Synced;

    private (bool Synced, ulong DurableIndex) FlushCore(bool onlyIfChanged)
    {
        lock (_flushLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var commits = Interlocked.Read(ref _commits);
            var index = _state.ConsistentIndex; // read before the sync: every commit up to here is in the page cache
            if (onlyIfChanged && commits == Interlocked.Read(ref _flushedCommits))
            {
                return (false, DurableIndex);
            }

            _env.Flush(force: true).ThrowOnError();
            Interlocked.Exchange(ref _flushedCommits, commits);
            if (index > Interlocked.Read(ref _durableIndex))
            {
                Interlocked.Exchange(ref _durableIndex, index);
            }

            return (true, DurableIndex);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        lock (_writerLock)
        {
            _lock.EnterWriteLock();
            try
            {
                if (_disposed)
                {
                    return;
                }

                lock (_flushLock)
                {
                    _disposed = true;
                    DropReaders();
                    if (_options.DeferSync)
                    {
                        // A clean stop leaves the store durable: nothing to replay at the next start.
                        _env.Flush(force: true).ThrowOnError();
                    }

                    _env.Dispose();
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }

        _lock.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened MVCC store {Path}: revision {Revision}, compacted at {Compact}, consistent index {Index}, {Keys} keys indexed in {Ms:F1} ms")]
    private static partial void LogOpened(ILogger logger, string path, long revision, long compact, ulong index, int keys, double ms);

    [LoggerMessage(Level = LogLevel.Information, Message = "Compacted MVCC store at revision {Revision}: {Removed} stored revisions removed")]
    private static partial void LogCompacted(ILogger logger, long revision, int removed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Defragmented MVCC store: {Before} -> {After} bytes")]
    private static partial void LogDefragmented(ILogger logger, long before, long after);
}
