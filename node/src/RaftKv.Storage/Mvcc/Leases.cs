using System.Buffers.Binary;
using LightningDB;

namespace RaftKv.Storage.Mvcc;

/// <summary>etcd's LeaseGrantRequest as applied: the id is already chosen (never 0) and the TTL already raised to the minimum.</summary>
public sealed record LeaseGrantRequest(long Id, long Ttl);

public sealed record LeaseGrantResponse(long Revision, long Id, long Ttl);

/// <summary>etcd's LeaseRevokeRequest (also what the leader replicates when a lease expires).</summary>
public sealed record LeaseRevokeRequest(long Id);

public sealed record LeaseRevokeResponse(long Revision);

/// <summary>A granted lease: its TTL in seconds and the live keys attached to it (sorted bytewise).</summary>
public sealed record LeaseInfo(long Id, long Ttl, IReadOnlyList<byte[]> Keys);

/// <summary>
/// Leases: LMDB table "lease" maps the lease id (8 bytes, big-endian) to its granted TTL (8 bytes, big-endian), written in the
/// same transaction as the data and the consistent index, so a copy of the file (a Raft snapshot) carries them. Which keys are
/// attached is not stored twice: each KeyValue names its lease, and the map lease → keys is rebuilt from the key records on open.
/// Expiry is not the store's business (the leader decides it and replicates a revoke); the store keeps no clock.
/// </summary>
public sealed partial class MvccStore
{
    /// <summary>etcd's MaxLeaseTTL: a grant asking for more fails with "etcdserver: too large lease TTL".</summary>
    public const long MaxLeaseTtl = 9_000_000_000;

    private LightningDatabase _leaseDb = null!;

    // Changed by the writer under the write lock (and by Rebuild); read under the read lock.
    private Dictionary<long, LeaseEntry> _leases = [];
    private Dictionary<byte[], long> _keyLeases = new(ByteKeyComparer.Instance);

    // Undo actions of the current batch's lease changes (writer only), so a failed request or an aborted batch leaves memory as the file.
    private readonly List<Action> _leaseUndo = [];

    private sealed class LeaseEntry(long ttl)
    {
        public long Ttl { get; } = ttl;

        public HashSet<byte[]> Keys { get; } = new(ByteKeyComparer.Instance);
    }

    /// <summary>Every granted lease (id and TTL), ordered by id.</summary>
    public IReadOnlyList<(long Id, long Ttl)> Leases()
    {
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return [.. _leases.Select(l => (l.Key, l.Value.Ttl)).OrderBy(l => l.Key)];
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>The lease with its attached keys, or null when no such lease is granted.</summary>
    public LeaseInfo? GetLease(long id)
    {
        _lock.EnterReadLock();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _leases.TryGetValue(id, out var l) ? new LeaseInfo(id, l.Ttl, [.. l.Keys.Order(ByteKeyComparer.Instance)]) : null;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public LeaseGrantResponse GrantLease(long id, long ttl) => (LeaseGrantResponse)Write(new LeaseGrantRequest(id, ttl));

    public LeaseRevokeResponse RevokeLease(long id) => (LeaseRevokeResponse)Write(new LeaseRevokeRequest(id));

    private static byte[] LeaseKey(long id)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, id);
        return b;
    }

    /// <summary>Reads the lease table and attaches the keys whose latest record names a granted lease (part of Rebuild).</summary>
    private void RebuildLeases(LightningTransaction tx, Dictionary<byte[], long> keyLeases)
    {
        var leases = new Dictionary<long, LeaseEntry>();
        using (var cursor = tx.CreateCursor(_leaseDb))
        {
            var (rc, k, v) = cursor.First();
            while (rc == MDBResultCode.Success)
            {
                if (k.AsSpan().Length == 8 && v.AsSpan().Length == 8)
                {
                    leases[BinaryPrimitives.ReadInt64BigEndian(k.AsSpan())] = new LeaseEntry(BinaryPrimitives.ReadInt64BigEndian(v.AsSpan()));
                }

                (rc, k, v) = cursor.Next();
            }
        }

        var attached = new Dictionary<byte[], long>(ByteKeyComparer.Instance);
        foreach (var (key, lease) in keyLeases)
        {
            // A key naming a lease that is gone stays unattached (etcd logs and ignores it the same way).
            if (leases.TryGetValue(lease, out var entry))
            {
                entry.Keys.Add(key);
                attached[key] = lease;
            }
        }

        _leases = leases;
        _keyLeases = attached;
    }

    /// <summary>Records that <paramref name="key"/> now belongs to <paramref name="lease"/> (0: to none); undone if the request or batch fails.</summary>
    private void SetKeyLease(byte[] key, long lease)
    {
        var old = _keyLeases.GetValueOrDefault(key);
        if (old == lease)
        {
            return;
        }

        Detach(key, old);
        Attach(key, lease);
        _leaseUndo.Add(() =>
        {
            Detach(key, lease);
            Attach(key, old);
        });
    }

    private void Attach(byte[] key, long lease)
    {
        if (lease != 0 && _leases.TryGetValue(lease, out var entry))
        {
            entry.Keys.Add(key);
            _keyLeases[key] = lease;
        }
    }

    private void Detach(byte[] key, long lease)
    {
        if (lease != 0)
        {
            if (_leases.TryGetValue(lease, out var entry))
            {
                entry.Keys.Remove(key);
            }

            _keyLeases.Remove(key);
        }
    }

    private void UndoLeases(int mark)
    {
        for (var i = _leaseUndo.Count - 1; i >= mark; i--)
        {
            _leaseUndo[i]();
        }

        _leaseUndo.RemoveRange(mark, _leaseUndo.Count - mark);
    }

    /// <summary>etcd's check on a put naming a lease: the lease must be granted.</summary>
    internal void EnsureLeaseExists(long lease)
    {
        if (lease != 0 && !_leases.ContainsKey(lease))
        {
            throw new StoreException(StoreErrorCode.LeaseNotFound);
        }
    }

    private LeaseGrantResponse ApplyGrant(WriteContext ctx, LeaseGrantRequest grant)
    {
        if (grant.Id == 0)
        {
            throw new StoreException(StoreErrorCode.LeaseNotFound);
        }

        if (grant.Ttl > MaxLeaseTtl)
        {
            throw new StoreException(StoreErrorCode.LeaseTtlTooLarge);
        }

        if (_leases.ContainsKey(grant.Id))
        {
            throw new StoreException(StoreErrorCode.LeaseExists);
        }

        var value = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(value, grant.Ttl);
        ctx.Tx.Put(_leaseDb, LeaseKey(grant.Id), value).ThrowOnError();
        _leases[grant.Id] = new LeaseEntry(grant.Ttl);
        _leaseUndo.Add(() => _leases.Remove(grant.Id));
        return new LeaseGrantResponse(ctx.ReadRevision, grant.Id, grant.Ttl);
    }

    /// <summary>Deletes every key attached to the lease in one revision (DELETE events), then the lease.</summary>
    private LeaseRevokeResponse ApplyRevoke(WriteContext ctx, LeaseRevokeRequest revoke)
    {
        if (!_leases.TryGetValue(revoke.Id, out var entry))
        {
            throw new StoreException(StoreErrorCode.LeaseNotFound);
        }

        foreach (var key in entry.Keys.Order(ByteKeyComparer.Instance).ToList())
        {
            ctx.DeleteRange(key, null);
        }

        var rc = ctx.Tx.Delete(_leaseDb, LeaseKey(revoke.Id));
        if (rc is not MDBResultCode.Success and not MDBResultCode.NotFound)
        {
            rc.ThrowOnError();
        }

        _leases.Remove(revoke.Id);
        _leaseUndo.Add(() => _leases[revoke.Id] = entry);
        return new LeaseRevokeResponse(ctx.ReadRevision);
    }
}
