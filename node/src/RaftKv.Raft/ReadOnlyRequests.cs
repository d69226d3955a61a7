namespace RaftKv.Raft;

/// <summary>
/// The leader's pending ReadIndex requests (thesis §6.4): each remembers the commit index when it arrived and which
/// voters acknowledged a heartbeat carrying its context. Once a quorum acknowledged a request, it and every earlier
/// one are answerable (acknowledging a later round implies the earlier ones: the leader was still leader).
/// </summary>
internal sealed class ReadOnlyRequests
{
    private readonly Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly List<string> _queue = [];

    internal sealed class Pending(Message request, ulong index)
    {
        public Message Request { get; } = request;

        public ulong Index { get; } = index;

        public HashSet<ulong> Acks { get; } = [];
    }

    public int Count => _queue.Count;

    public static string Key(ReadOnlyMemory<byte> context) => Convert.ToBase64String(context.Span);

    /// <summary>Adds a request read at <paramref name="index"/>; a duplicate context is ignored.</summary>
    public void Add(ulong index, Message request, ReadOnlyMemory<byte> context)
    {
        var key = Key(context);
        if (_pending.ContainsKey(key))
        {
            return;
        }

        _pending[key] = new Pending(request, index);
        _queue.Add(key);
    }

    /// <summary>Records an acknowledgement; returns the acks so far, or null if the context is unknown.</summary>
    public HashSet<ulong>? RecvAck(ulong id, ReadOnlyMemory<byte> context)
    {
        if (!_pending.TryGetValue(Key(context), out var p))
        {
            return null;
        }

        p.Acks.Add(id);
        return p.Acks;
    }

    /// <summary>Removes and returns every request up to and including the one with this context.</summary>
    public List<Pending> Advance(ReadOnlyMemory<byte> context)
    {
        var key = Key(context);
        var result = new List<Pending>();
        var found = -1;
        for (var i = 0; i < _queue.Count; i++)
        {
            result.Add(_pending[_queue[i]]);
            if (_queue[i] == key)
            {
                found = i;
                break;
            }
        }

        if (found < 0)
        {
            return [];
        }

        for (var i = 0; i <= found; i++)
        {
            _pending.Remove(_queue[i]);
        }

        _queue.RemoveRange(0, found + 1);
        return result;
    }

    /// <summary>Context of the newest pending request, to piggyback on heartbeats.</summary>
    public ReadOnlyMemory<byte> LastPendingContext() =>
        _queue.Count == 0 ? default : _pending[_queue[^1]].Request.Entries[0].Data;

    public void Clear()
    {
        _pending.Clear();
        _queue.Clear();
    }
}
