using LightningDB;

namespace RaftKv.Storage.Mvcc;

public sealed partial class MvccStore
{
    /// <summary>A consistent view for reads: LMDB transaction plus the revision it reads at.</summary>
    internal class View(MvccStore store, LightningTransaction tx, long readRevision, long compactRevision, List<KeyIndex>? undo)
    {
        public MvccStore Store { get; } = store;

        public LightningTransaction Tx { get; } = tx;

        public long CompactRevision { get; } = compactRevision;

        protected List<KeyIndex>? UndoLog { get; } = undo;

        /// <summary>Revision reads see (in a write, the new revision once something changed).</summary>
        public virtual long ReadRevision => readRevision;

        /// <summary>The KeyValue of <paramref name="key"/> at <paramref name="rev"/>, or null if it did not exist then.</summary>
        public KeyValue? Get(byte[] key, long rev)
        {
            var ki = Store._index.Find(key);
            return ki is not null && ki.TryGet(rev, out var modified, out _, out _) ? Load(modified, keysOnly: false) : null;
        }

        public KeyValue Load(Revision rev, bool keysOnly)
        {
            Span<byte> key = stackalloc byte[Codec.RevisionBytes];
            Codec.WriteRevision(key, rev);
            var (rc, _, value) = Tx.Get(Store._keyDb, key);
            if (rc != MDBResultCode.Success)
            {
                throw new InvalidOperationException($"The key index names revision {rev} but the database has no such record; the store is inconsistent.");
            }

            return Codec.DecodeKeyValue(value.AsSpan(), keysOnly);
        }

        /// <summary>etcd's range end convention: "" = just the key (null here), "\0" = all keys from key on (empty here).</summary>
        public static byte[]? GteRange(byte[] rangeEnd) => rangeEnd.Length == 0 ? null : rangeEnd is [0] ? [] : rangeEnd;

        /// <summary>The revisions live at <paramref name="rev"/> in the range (at most <paramref name="limit"/> when positive) and how many there are.</summary>
        public (List<Revision> Revisions, long Total) Revisions(byte[] key, byte[]? end, long rev, long limit)
        {
            var revs = new List<Revision>(end is null ? 1 : 4);
            if (end is null)
            {
                // A single key: no tree walk.
                if (Store._index.Find(key) is { } one && one.TryGet(rev, out var m, out _, out _))
                {
                    revs.Add(m);
                    return (revs, 1);
                }

                return (revs, 0);
            }

            long total = 0;
            foreach (var ki in Store._index.Visit(key, end))
            {
                if (ki.TryGet(rev, out var modified, out _, out _))
                {
                    if (limit <= 0 || revs.Count < limit)
                    {
                        revs.Add(modified);
                    }

                    total++;
                }
            }

            return (revs, total);
        }

        /// <summary>mvcc-level range: key order, no filters (also used by compares and prev_kv).</summary>
        public List<KeyValue> RangeKvs(byte[] key, byte[]? end, long rev, long limit = 0, bool keysOnly = false)
        {
            var (revs, _) = Revisions(key, end, rev, limit);
            var kvs = new List<KeyValue>(revs.Count);
            foreach (var r in revs)
            {
                kvs.Add(Load(r, keysOnly));
            }

            return kvs;
        }

        /// <summary>etcd's Range with every option, reading at <see cref="ReadRevision"/> unless the request names a revision.</summary>
        public RangeResponse Range(RangeRequest r)
        {
            var current = ReadRevision;
            var rev = r.Revision;
            if (rev > current)
            {
                throw new StoreException(StoreErrorCode.FutureRevision);
            }

            if (rev <= 0)
            {
                rev = current;
            }

            if (rev < CompactRevision)
            {
                throw new StoreException(StoreErrorCode.Compacted);
            }

            var end = GteRange(r.RangeEnd);
            if (r.CountOnly)
            {
                var (_, count) = Revisions(r.Key, end, rev, 1);
                return new RangeResponse(current, [], false, count);
            }

            var filtered = r.SortOrder != SortOrder.None || r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0;
            var limit = filtered ? 0 : r.Limit;
            if (limit > 0)
            {
                limit++; // one more tells whether there is more
            }

            var (revs, total) = Revisions(r.Key, end, rev, limit);
            var kvs = new List<KeyValue>(revs.Count);
            var skipValues = r.KeysOnly && r.SortTarget != SortTarget.Value; // values are dropped only after sorting
            foreach (var rv in revs)
            {
                kvs.Add(Load(rv, skipValues));
            }

            if (r.MaxModRevision != 0)
            {
                kvs.RemoveAll(kv => kv.ModRevision > r.MaxModRevision);
            }

            if (r.MinModRevision != 0)
            {
                kvs.RemoveAll(kv => kv.ModRevision < r.MinModRevision);
            }

            if (r.MaxCreateRevision != 0)
            {
                kvs.RemoveAll(kv => kv.CreateRevision > r.MaxCreateRevision);
            }

            if (r.MinCreateRevision != 0)
            {
                kvs.RemoveAll(kv => kv.CreateRevision < r.MinCreateRevision);
            }

            SortKvs(kvs, r.SortOrder, r.SortTarget);
            var more = false;
            if (r.Limit > 0 && kvs.Count > r.Limit)
            {
                kvs.RemoveRange((int)r.Limit, kvs.Count - (int)r.Limit);
                more = true;
            }

            if (r.KeysOnly && !skipValues)
            {
                for (var i = 0; i < kvs.Count; i++)
                {
                    kvs[i] = kvs[i] with { Value = [] };
                }
            }

            return new RangeResponse(current, kvs, more, total);
        }

        /// <summary>
        /// etcd's sort: results come in key order, so KEY/ASCEND needs nothing and another target with NONE means ascending.
        /// Ties keep key order (a stable sort; etcd's sort is unstable there, so no client can rely on any tie order).
        /// </summary>
        public static void SortKvs(List<KeyValue> kvs, SortOrder order, SortTarget target)
        {
            if (target != SortTarget.Key && order == SortOrder.None)
            {
                order = SortOrder.Ascend;
            }
            else if (target == SortTarget.Key && order == SortOrder.Ascend)
            {
                order = SortOrder.None;
            }

            if (order == SortOrder.None)
            {
                return;
            }

            Comparison<KeyValue> compare = target switch
            {
                SortTarget.Version => (a, b) => a.Version.CompareTo(b.Version),
                SortTarget.Create => (a, b) => a.CreateRevision.CompareTo(b.CreateRevision),
                SortTarget.Mod => (a, b) => a.ModRevision.CompareTo(b.ModRevision),
                SortTarget.Value => (a, b) => a.Value.AsSpan().SequenceCompareTo(b.Value),
                _ => (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key),
            };
            var sign = order == SortOrder.Descend ? -1 : 1;
            var sorted = kvs.Select((kv, i) => (kv, i)).ToList();
            sorted.Sort((x, y) =>
            {
                var c = sign * compare(x.kv, y.kv);
                return c != 0 ? c : x.i.CompareTo(y.i);
            });
            for (var i = 0; i < kvs.Count; i++)
            {
                kvs[i] = sorted[i].kv;
            }
        }
    }

    /// <summary>One write request being applied: all its changes share main revision BeginRevision + 1.</summary>
    internal sealed class WriteContext(MvccStore store, LightningTransaction tx, long beginRevision, long compactRevision, List<KeyIndex> undo)
        : View(store, tx, beginRevision, compactRevision, undo)
    {
        public long BeginRevision { get; } = beginRevision;

        public int Changes { get; private set; }

        public List<StoreEvent> Events { get; } = [];

        private readonly List<byte[]> _written = [];

        public override long ReadRevision => Changes > 0 ? BeginRevision + 1 : BeginRevision;

        /// <summary>The revision a write in this request reports.</summary>
        public long WriteRevision => BeginRevision + 1;

        public void PutKey(byte[] key, byte[] value, long lease)
        {
            var rev = BeginRevision + 1;
            var created = rev;
            long version = 0;
            var ki = Store._index.Find(key);
            if (ki is not null && ki.TryGet(rev, out _, out var c, out var v))
            {
                created = c.Main;
                version = v;
            }

            var idxRev = new Revision(rev, Changes);
            var kv = new KeyValue(key, created, rev, version + 1, value, lease);
            var dbKey = Codec.RevisionKey(idxRev, tombstone: false);
            Store.PutRevision(Tx, dbKey, Codec.EncodeKeyValue(kv));
            _written.Add(dbKey);
            ki ??= Store._index.GetOrAdd(key);
            ki.Put(idxRev);
            Store.SetLatest(ki, kv);
            Store.SetKeyLease(key, lease);
            UndoLog!.Add(ki);
            Changes++;
            Events.Add(new StoreEvent(false, kv));
        }

        public long DeleteRange(byte[] key, byte[]? end)
        {
            var (revs, _) = Revisions(key, end, ReadRevision, 0);
            if (revs.Count == 0)
            {
                return 0;
            }

            var keys = new List<byte[]>();
            foreach (var ki in Store._index.Visit(key, end))
            {
                if (ki.TryGet(ReadRevision, out _, out _, out _))
                {
                    keys.Add(ki.Key);
                }
            }

            foreach (var k in keys)
            {
                DeleteKey(k);
            }

            return keys.Count;
        }

        private void DeleteKey(byte[] key)
        {
            var idxRev = new Revision(BeginRevision + 1, Changes);
            var tombstone = new KeyValue(key, 0, 0, 0, [], 0);
            var dbKey = Codec.RevisionKey(idxRev, tombstone: true);
            Store.PutRevision(Tx, dbKey, Codec.EncodeKeyValue(tombstone));
            _written.Add(dbKey);
            var ki = Store._index.Find(key)!;
            ki.Tombstone(idxRev);
            Store.SetLatest(ki, null);
            Store.SetKeyLease(key, 0);
            UndoLog!.Add(ki);
            Changes++;
            Events.Add(new StoreEvent(true, tombstone with { ModRevision = idxRev.Main }));
        }

        /// <summary>Undoes this request's changes (an error part-way through a txn).</summary>
        public void Rollback(int undoMark)
        {
            foreach (var dbKey in _written)
            {
                Tx.Delete(Store._keyDb, dbKey).ThrowOnError();
            }

            for (var i = UndoLog!.Count - 1; i >= undoMark; i--)
            {
                Store.UndoLast(UndoLog[i]);
            }

            UndoLog.RemoveRange(undoMark, UndoLog.Count - undoMark);
            _written.Clear();
            Events.Clear();
            Changes = 0;
        }
    }
}
