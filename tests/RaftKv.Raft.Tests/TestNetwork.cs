using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>
/// A small in-process cluster for the rule tests: nodes over <see cref="MemoryRaftLogStorage"/>, messages delivered
/// synchronously in FIFO order, with per-link drops, isolation and a message filter. Each node's host loop follows
/// the documented Ready order: persist, send, apply (conf changes included), advance.
/// </summary>
internal sealed class TestNetwork
{
    private readonly Queue<Message> _inFlight = new();
    private readonly HashSet<(ulong From, ulong To)> _cut = [];

    public TestNetwork(int size, Func<ulong, RaftConfig, RaftConfig>? configure = null, bool bootstrap = true)
    {
        var ids = Enumerable.Range(1, size).Select(i => (ulong)i).ToArray();
        foreach (var id in ids)
        {
            Add(id, configure);
            if (bootstrap)
            {
                Nodes[id].Bootstrap(ids);
            }
        }

        Process();
    }

    /// <summary>A cluster over prepared storages (see <see cref="MakeStorage"/>); no bootstrap.</summary>
    public TestNetwork(IReadOnlyDictionary<ulong, MemoryRaftLogStorage> storages, Func<ulong, RaftConfig, RaftConfig>? configure = null)
    {
        foreach (var (id, storage) in storages.OrderBy(kv => kv.Key))
        {
            Storage[id] = storage;
            Applied[id] = [];
            ReadStates[id] = [];
            SoftStates[id] = [];
            Dropped[id] = [];
            Nodes[id] = new RaftNode(Config(id, storage, configure));
        }

        Process();
    }

    /// <summary>
    /// Storage holding a snapshot at index 1 (term 1, membership <paramref name="voters"/>) followed by entries 2..n whose
    /// terms are <paramref name="logTerms"/>[1..] (logTerms[0] is the term of index 1, always 1).
    /// </summary>
    public static MemoryRaftLogStorage MakeStorage(ulong[] voters, ulong[] logTerms, ulong term, ulong commit = 1, ulong[]? learners = null)
    {
        var storage = new MemoryRaftLogStorage();
        storage.ApplySnapshot(new Snapshot(new SnapshotMetadata(1, 1, new ConfState(voters, learners)), default));
        storage.Append([.. logTerms.Skip(1).Select((t, i) => Entry.Normal((ulong)i + 2, t, default))]);
        storage.SetHardState(new HardState(term, 0, Math.Max(commit, 1)));
        return storage;
    }

    public Dictionary<ulong, RaftNode> Nodes { get; } = [];

    public Dictionary<ulong, MemoryRaftLogStorage> Storage { get; } = [];

    /// <summary>Data of applied normal entries, per node, in apply order.</summary>
    public Dictionary<ulong, List<string>> Applied { get; } = [];

    public Dictionary<ulong, List<ReadState>> ReadStates { get; } = [];

    /// <summary>Proposals each node forwarded that came back dropped (Ready.DroppedProposals), in order.</summary>
    public Dictionary<ulong, List<DroppedProposal>> Dropped { get; } = [];

    /// <summary>Soft states reported in Readies, per node.</summary>
    public Dictionary<ulong, List<SoftState>> SoftStates { get; } = [];

    /// <summary>Every message the network delivered or dropped, for assertions and failure output.</summary>
    public List<Message> Trace { get; } = [];

    /// <summary>Return false to drop a message.</summary>
    public Func<Message, bool>? Filter { get; set; }

    private readonly Dictionary<ulong, Write> _writing = [];

    private sealed class Write(Ready ready, int rounds)
    {
        public Ready Ready { get; } = ready;

        public int RoundsLeft { get; set; } = rounds;
    }

    /// <summary>When set, each Ready's write takes this many delivery rounds (a slow disk); null = instant.</summary>
    public Func<int>? DiskDelay { get; set; }

    /// <summary>Whether the network reports MsgSnap outcomes to the sender, as a transport must (default true).</summary>
    public bool ReportSnapshots { get; set; } = true;

    /// <summary>Reorders/duplicates each delivery round (for the randomized tests).</summary>
    public Func<Message[], Message[]>? Perturb { get; set; }

    /// <summary>Changes a message in flight (applied after <see cref="Filter"/>).</summary>
    public Func<Message, Message>? Rewrite { get; set; }

    public RaftNode this[ulong id] => Nodes[id];

    public RaftNode Add(ulong id, Func<ulong, RaftConfig, RaftConfig>? configure = null)
    {
        var storage = new MemoryRaftLogStorage();
        Storage[id] = storage;
        Applied[id] = [];
        ReadStates[id] = [];
        SoftStates[id] = [];
        Dropped[id] = [];
        var node = new RaftNode(Config(id, storage, configure));
        Nodes[id] = node;
        return node;
    }

    public static RaftConfig Config(ulong id, IRaftLogStorage storage, Func<ulong, RaftConfig, RaftConfig>? configure = null)
    {
        var c = new RaftConfig
        {
            Id = id,
            Storage = storage,
            ElectionTicks = 10,
            HeartbeatTicks = 1,
            Random = new Random((int)id * 7919),
            MaxSizePerMessage = ulong.MaxValue,
            MaxInflightMessages = 256,
        };
        return configure is null ? c : configure(id, c);
    }

    /// <summary>Restarts a node from its storage (what was persisted survives; nothing else).</summary>
    public RaftNode Restart(ulong id, Func<ulong, RaftConfig, RaftConfig>? configure = null)
    {
        _writing.Remove(id); // a write in progress at the crash never became durable
        var node = new RaftNode(Config(id, Storage[id], configure));
        Nodes[id] = node;
        // The state machine restarts from the last snapshot (its data is the applied values joined by '|').
        Applied[id].Clear();
        var snap = Storage[id].Snapshot();
        if (!snap.IsEmpty)
        {
            Applied[id].AddRange(Encoding.UTF8.GetString(snap.Data.Span).Split('|', StringSplitOptions.RemoveEmptyEntries));
        }

        return node;
    }

    public void Cut(ulong a, ulong b)
    {
        _cut.Add((a, b));
        _cut.Add((b, a));
    }

    public void Isolate(ulong id)
    {
        foreach (var other in Nodes.Keys)
        {
            if (other != id)
            {
                Cut(id, other);
            }
        }
    }

    public void Heal()
    {
        _cut.Clear();
        Filter = null;
        Rewrite = null;
    }

    public ulong Leader()
    {
        var leaders = Nodes.Values.Where(n => n.Role == StateRole.Leader).OrderByDescending(n => n.Term).ToList();
        return leaders.Count == 0 ? 0 : leaders[0].Id;
    }

    public void Campaign(ulong id)
    {
        Nodes[id].Campaign();
        Process();
    }

    public void Propose(ulong id, string data)
    {
        Nodes[id].Propose(Encoding.UTF8.GetBytes(data));
        Process();
    }

    public void Tick(ulong id, int times = 1)
    {
        for (var i = 0; i < times; i++)
        {
            Nodes[id].Tick();
            Process();
        }
    }

    public void TickAll(int times = 1)
    {
        for (var i = 0; i < times; i++)
        {
            foreach (var n in Nodes.Values)
            {
                n.Tick();
            }

            Process();
        }
    }

    /// <summary>Sends a message as if from the network (to its To node).</summary>
    public void Send(Message m)
    {
        _inFlight.Enqueue(m);
        Process();
    }

    /// <summary>Runs Ready handling and message delivery until the cluster is quiet.</summary>
    public void Process()
    {
        for (var round = 0; round < 10_000; round++)
        {
            foreach (var (id, node) in Nodes)
            {
                if (DiskDelay is null)
                {
                    while (node.HasReady)
                    {
                        HandleReady(id, node);
                    }

                    continue;
                }

                // Slow disk: the write of a Ready completes some delivery rounds after it was started; the node keeps
                // receiving messages meanwhile, and its Messages (not MessagesAfterPersist) already went out.
                if (_writing.TryGetValue(id, out var w))
                {
                    if (w.RoundsLeft-- > 0)
                    {
                        continue;
                    }

                    _writing.Remove(id);
                    Complete(id, node, w.Ready);
                }

                if (node.HasReady)
                {
                    var rd = node.GetReady();
                    foreach (var m in rd.Messages)
                    {
                        _inFlight.Enqueue(m);
                    }

                    _writing[id] = new Write(rd, DiskDelay());
                }
            }

            if (_inFlight.Count == 0 && _writing.Count == 0 && !Nodes.Values.Any(n => n.HasReady))
            {
                return;
            }

            var batch = _inFlight.ToArray();
            _inFlight.Clear();
            if (Perturb is not null)
            {
                batch = Perturb(batch);
            }

            foreach (var m in batch)
            {
                Trace.Add(m);
                if (_cut.Contains((m.From, m.To)) || (Filter is not null && !Filter(m)) || !Nodes.TryGetValue(m.To, out var to))
                {
                    // Like a real transport, tell the leader its snapshot did not get through.
                    if (ReportSnapshots && m.Type == MessageType.MsgSnap && Nodes.TryGetValue(m.From, out var sender))
                    {
                        sender.ReportSnapshot(m.To, SnapshotStatus.Failure);
                    }

                    continue;
                }

                to.Step(Rewrite is null ? m : Rewrite(m));
                if (ReportSnapshots && m.Type == MessageType.MsgSnap && Nodes.TryGetValue(m.From, out var leader))
                {
                    leader.ReportSnapshot(m.To, SnapshotStatus.Finish);
                }
            }
        }

        throw new InvalidOperationException("The test network did not quiesce after 10000 rounds.\n" + string.Join('\n', Trace.TakeLast(40)));
    }

    private void HandleReady(ulong id, RaftNode node)
    {
        var rd = node.GetReady();
        foreach (var m in rd.Messages)
        {
            _inFlight.Enqueue(m);
        }

        Complete(id, node, rd);
    }

    /// <summary>The Ready's write is durable: persist, send what waited for it, apply, advance.</summary>
    private void Complete(ulong id, RaftNode node, Ready rd)
    {
        var storage = Storage[id];
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
            _inFlight.Enqueue(m);
        }

        if (rd.Snapshot is { } s)
        {
            Applied[id].Clear();
            Applied[id].AddRange(Encoding.UTF8.GetString(s.Data.Span).Split('|', StringSplitOptions.RemoveEmptyEntries));
        }

        foreach (var e in rd.CommittedEntries)
        {
            if (e.Type == EntryType.ConfChange)
            {
                node.ApplyConfChange(ConfChange.Decode(e.Data));
            }
            else if (!e.Data.IsEmpty)
            {
                Applied[id].Add(Encoding.UTF8.GetString(e.Data.Span));
            }
        }

        ReadStates[id].AddRange(rd.ReadStates);
        Dropped[id].AddRange(rd.DroppedProposals);
        if (rd.SoftState is { } soft)
        {
            SoftStates[id].Add(soft);
        }

        node.Advance(rd);
    }

    /// <summary>Snapshots node <paramref name="id"/>'s state machine at its applied index and compacts its log there.</summary>
    public void Compact(ulong id)
    {
        var node = Nodes[id];
        var applied = node.Status.Applied;
        var storage = Storage[id];
        if (applied <= storage.Snapshot().Metadata.Index || applied < storage.FirstIndex())
        {
            return;
        }

        storage.CreateSnapshot(applied, node.ConfState, Encoding.UTF8.GetBytes(string.Join('|', Applied[id])));
        storage.Compact(applied);
    }

    /// <summary>Log of a node as "index/term" pairs from storage (after persist).</summary>
    public string LogOf(ulong id)
    {
        var s = Storage[id];
        var parts = new List<string>();
        for (var i = s.FirstIndex(); i <= s.LastIndex(); i++)
        {
            parts.Add($"{i}/{s.Term(i)}");
        }

        return string.Join(' ', parts);
    }

    public string Describe() =>
        string.Join('\n', Nodes.Values.Select(n => $"node {n.Id}: {n.Role} term {n.Term} lead {n.Leader} commit {n.Commit} log [{LogOf(n.Id)}]"))
        + "\nlast messages:\n" + string.Join('\n', Trace.TakeLast(20));
}
