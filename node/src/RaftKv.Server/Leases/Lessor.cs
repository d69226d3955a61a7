namespace RaftKv.Server.Leases;

/// <summary>
/// The leader's view of lease expiry (etcd's lessor on the primary). Expiry times live only in memory, measured on the
/// injected clock: the leader renews leases on keep-alive and decides which have expired; the store (through Raft) decides which
/// exist. A member that becomes leader starts every lease over with its full TTL (etcd's promote), so a leader change never
/// expires a lease early; a member that stops being leader forgets every expiry time.
/// </summary>
internal sealed class Lessor
{
    /// <summary>A revoke proposed for an expired lease is proposed again if the lease is still there after this long.</summary>
    public static readonly TimeSpan RevokeRetry = TimeSpan.FromSeconds(3);

    private readonly TimeProvider _time;
    private readonly long _origin;
    private readonly Lock _lock = new();
    private readonly Dictionary<long, TimeSpan> _expiry = [];
    private readonly Dictionary<long, TimeSpan> _revoking = [];
    private bool _primary;

    public Lessor(TimeProvider time)
    {
        _time = time;
        _origin = time.GetTimestamp();
    }

    public bool IsPrimary
    {
        get
        {
            lock (_lock)
            {
                return _primary;
            }
        }
    }

    private TimeSpan Now => _time.GetElapsedTime(_origin);

    /// <summary>This member became leader: every lease will run its full TTL from the next time it is seen.</summary>
    public void Promote()
    {
        lock (_lock)
        {
            _primary = true;
            _expiry.Clear();
            _revoking.Clear();
        }
    }

    /// <summary>This member is no longer leader: expiry is someone else's business.</summary>
    public void Demote()
    {
        lock (_lock)
        {
            _primary = false;
            _expiry.Clear();
            _revoking.Clear();
        }
    }

    /// <summary>
    /// A keep-alive for a granted lease: it expires <paramref name="ttl"/> seconds from now. Returns the TTL to report, 0 when the
    /// lease already expired (its revoke is on the way), or null when this member is not the primary.
    /// </summary>
    public long? Renew(long id, long ttl)
    {
        lock (_lock)
        {
            if (!_primary)
            {
                return null;
            }

            var now = Now;
            if (_expiry.TryGetValue(id, out var expiry) && expiry <= now)
            {
                return 0;
            }

            _expiry[id] = now + TimeSpan.FromSeconds(ttl);
            return ttl;
        }
    }

    /// <summary>Seconds left (whole seconds, rounded down as etcd reports them); a lease not seen before starts its full TTL now.</summary>
    public long? RemainingSeconds(long id, long ttl)
    {
        lock (_lock)
        {
            if (!_primary)
            {
                return null;
            }

            var now = Now;
            if (!_expiry.TryGetValue(id, out var expiry))
            {
                _expiry[id] = expiry = now + TimeSpan.FromSeconds(ttl);
            }

            return Math.Max(0, (long)(expiry - now).TotalSeconds);
        }
    }

    /// <summary>
    /// Brings the expiry times in line with the granted leases (new ones start their full TTL, gone ones are forgotten) and returns
    /// at most <paramref name="max"/> expired leases to revoke now, each once per <see cref="RevokeRetry"/>. Empty when not primary.
    /// </summary>
    public IReadOnlyList<long> Expired(IReadOnlyList<(long Id, long Ttl)> granted, int max = 500)
    {
        lock (_lock)
        {
            if (!_primary)
            {
                return [];
            }

            var now = Now;
            var present = new HashSet<long>(granted.Count);
            var expired = new List<long>();
            foreach (var (id, ttl) in granted)
            {
                present.Add(id);
                if (!_expiry.TryGetValue(id, out var expiry))
                {
                    _expiry[id] = now + TimeSpan.FromSeconds(ttl);
                    continue;
                }

                if (expiry <= now && expired.Count < max && (!_revoking.TryGetValue(id, out var proposed) || now - proposed >= RevokeRetry))
                {
                    _revoking[id] = now;
                    expired.Add(id);
                }
            }

            foreach (var id in _expiry.Keys.Where(id => !present.Contains(id)).ToList())
            {
                _expiry.Remove(id);
                _revoking.Remove(id);
            }

            return expired;
        }
    }
}
