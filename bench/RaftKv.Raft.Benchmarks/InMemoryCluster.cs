namespace RaftKv.Raft.Benchmarks;

/// <summary>
/// Three (or more) Raft cores in one thread: storage is <see cref="MemoryRaftLogStorage"/>, messages go through a queue,
/// each Ready is handled in the documented order (persist, send, apply, advance). The log is compacted as it is applied,
/// as a real host would, so memory stays bounded over long runs.
/// </summary>
internal sealed class InMemoryCluster
{
    private const ulong CompactEvery = 50_000;

    private readonly RaftNode[] _nodes;
    private readonly MemoryRaftLogStorage[] _storages;
    private readonly ulong[] _applied;
    private readonly Queue<Message> _queue = new();

    public InMemoryCluster(int size)
    {
        _nodes = new RaftNode[size];
        _storages = new MemoryRaftLogStorage[size];
        _applied = new ulong[size];
        var ids = new ulong[size];
        for (var i = 0; i < size; i++)
        {
            ids[i] = (ulong)i + 1;
        }

        for (var i = 0; i < size; i++)
        {
            _storages[i] = new MemoryRaftLogStorage();
            _nodes[i] = new RaftNode(new RaftConfig
            {
                Id = ids[i],
                Storage = _storages[i],
                ElectionTicks = 10,
                HeartbeatTicks = 1,
                Random = new Random(i + 1),
                MaxSizePerMessage = 4 * 1024 * 1024,
                MaxInflightMessages = 256,
            });
            _nodes[i].Bootstrap(ids);
        }

        Pump();
        _nodes[0].Campaign();
        Pump();
        if (_nodes[0].Role != StateRole.Leader)
        {
            throw new InvalidOperationException("Node 1 did not become leader.");
        }
    }

    public RaftNode Leader => _nodes[0];

    /// <summary>Normal entries with data applied by the leader so far.</summary>
    public long LeaderAppliedProposals { get; private set; }

    /// <summary>Handles Readies and delivers messages until the cluster is quiet.</summary>
    public void Pump()
    {
        while (true)
        {
            for (var i = 0; i < _nodes.Length; i++)
            {
                var node = _nodes[i];
                while (node.HasReady)
                {
                    Handle(i, node);
                }
            }

            if (_queue.Count == 0)
            {
                return;
            }

            while (_queue.TryDequeue(out var m))
            {
                _nodes[(int)m.To - 1].Step(m);
            }
        }
    }

    private void Handle(int i, RaftNode node)
    {
        var rd = node.GetReady();
        var storage = _storages[i];
        foreach (var m in rd.Messages)
        {
            _queue.Enqueue(m);
        }

        if (rd.Snapshot is { } snap)
        {
            storage.ApplySnapshot(snap);
        }

        storage.Append(rd.Entries);
        if (rd.HardState is { } hs)
        {
            storage.SetHardState(hs);
        }

        foreach (var m in rd.MessagesAfterPersist)
        {
            _queue.Enqueue(m);
        }

        var committed = rd.CommittedEntries;
        for (var k = 0; k < committed.Count; k++)
        {
            var e = committed[k];
            if (e.Type == EntryType.ConfChange)
            {
                node.ApplyConfChange(ConfChange.Decode(e.Data));
            }
            else if (i == 0 && !e.Data.IsEmpty)
            {
                LeaderAppliedProposals++;
            }
        }

        if (committed.Count > 0)
        {
            _applied[i] = committed[^1].Index;
        }

        node.Advance(rd);

        // Keep a window of applied entries for lagging followers, drop the rest.
        if (_applied[i] > storage.FirstIndex() + (2 * CompactEvery))
        {
            var to = _applied[i] - CompactEvery;
            storage.CreateSnapshot(to, node.ConfState, ReadOnlyMemory<byte>.Empty);
            storage.Compact(to);
        }
    }
}
