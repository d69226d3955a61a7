namespace RaftKv.Server.Peers;

/// <summary>
/// FOR TESTS ONLY. Faults the peer transport applies to traffic towards one peer: a fixed extra delay, a probability of
/// dropping each message, or a full cut. Off unless a test sets them (in-process) or the member was started with
/// <c>RAFTKV_ENABLE_TEST_HOOKS=1</c> and the Admin.SetPeerFault RPC was called. Never part of normal operation.
/// </summary>
internal sealed record PeerFault(TimeSpan Delay, double Loss, bool Cut)
{
    public static PeerFault None { get; } = new(TimeSpan.Zero, 0, false);

    public bool IsNone => Delay == TimeSpan.Zero && Loss <= 0 && !Cut;
}

/// <summary>FOR TESTS ONLY: the per-peer faults of one member's transport (see <see cref="PeerFault"/>). Thread-safe.</summary>
internal sealed class PeerFaults
{
    /// <summary>Environment variable that allows setting faults over the admin RPC.</summary>
    public const string EnableVariable = "RAFTKV_ENABLE_TEST_HOOKS";

    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, PeerFault> _faults = [];
    private readonly Random _random;

    public PeerFaults(Random random) => _random = random;

    public void Set(ulong peer, PeerFault fault)
    {
        lock (_lock)
        {
            if (fault.IsNone)
            {
                _faults.Remove(peer);
            }
            else
            {
                _faults[peer] = fault;
            }
        }
    }

    public PeerFault Get(ulong peer)
    {
        lock (_lock)
        {
            return _faults.GetValueOrDefault(peer, PeerFault.None);
        }
    }

    /// <summary>True when a message to <paramref name="peer"/> is to be dropped now (cut, or lost by chance).</summary>
    public bool ShouldDrop(ulong peer)
    {
        lock (_lock)
        {
            if (!_faults.TryGetValue(peer, out var f))
            {
                return false;
            }

            return f.Cut || (f.Loss > 0 && _random.NextDouble() < f.Loss);
        }
    }
}
