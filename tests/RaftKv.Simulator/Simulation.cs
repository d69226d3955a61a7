using System.Buffers.Binary;
using RaftKv.Linearizability;
using RaftKv.Raft;

namespace RaftKv.Simulator;

/// <summary>
/// One seeded run: a cluster of <see cref="RaftNode"/> cores on a virtual clock, a faulty network and disks,
/// clients recording a history, and the safety checks. Single-threaded; all randomness comes from one
/// <see cref="Random"/> seeded with <see cref="SimulationOptions.Seed"/>, so a seed replays byte for byte.
/// </summary>
/// <remarks>
/// Phases: load (clients run, faults are injected) until <see cref="SimulationOptions.LoadDuration"/>; heal
/// (network repaired, crashed nodes restarted, disks fast); then the cluster must commit a probe write and bring
/// every member up to date within <see cref="SimulationOptions.ProgressBound"/>. Finally the logs, the
/// acknowledged writes and the client history are checked.
/// </remarks>
internal sealed class Simulation
{
    private const long ClientLinkMin = 50;
    private const long ClientLinkSpread = 300;
    private const long ClientTimeout = 1_000_000;
    private const int ProbeClient = 99;
    private const ulong EntriesKeptAfterSnapshot = 8;

    private readonly SimulationOptions _options;
    private readonly Random _random;
    private readonly EventQueue _clock = new();
    private readonly Trace _trace;
    private readonly Network _network = new();
    private readonly SafetyMonitor _safety = new();
    private readonly SortedDictionary<ulong, SimNode> _nodes = [];
    private readonly List<ClientOperation> _operations = [];
    private readonly List<(long RequestId, ulong Index, ulong Term)> _acknowledgedWrites = [];
    private readonly SimulationStats _stats = new();
    private readonly int[] _clientSequence;
    private long _nextRequestId = 1;
    private ulong _nextNodeId;
    private ulong _joiningNode;
    private int _joinsLeft;
    private bool _loading = true;
    private ulong _maxSizePerMessage = 4096;
    private int _maxInflight = 16;
    private ulong _maxInflightBytes;
    private ulong _maxUncommittedBytes = 1 << 20;
    private ulong _snapshotEvery = 48;
    private double _isolateNewLeader;
    private double _isolateOnCommit;
    private long _faultInterval = 300_000;
    private ulong _lastLeader;
    private ClientOperation? _probe;
    private ClientOperation? _ackedProbe;

    private Simulation(SimulationOptions options, TextWriter? traceSink)
    {
        _options = options;
        _random = new Random(options.Seed);
        _trace = new Trace(_clock, traceSink is not null, traceSink);
        _clientSequence = new int[options.Clients];
    }

    /// <summary>Runs one seed; with <paramref name="traceSink"/> every event is written to it.</summary>
    public static SimulationResult Run(SimulationOptions options, TextWriter? traceSink = null)
    {
        var simulation = new Simulation(options, traceSink);
        string? violation = null;
        try
        {
            simulation.Execute();
        }
        catch (InvariantViolationException e)
        {
            violation = e.Message;
        }
#pragma warning disable CA1031 // Any exception out of the core is a finding to report, with the seed, not a crash of the runner.
        catch (Exception e)
#pragma warning restore CA1031
        {
            violation = $"exception at {Trace.Format(simulation._clock.Now)}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}";
        }

        if (violation is not null)
        {
            simulation._trace.Line("VIOLATION: " + violation);
        }

        simulation._stats.EndTime = simulation._clock.Now;
        return new SimulationResult(options, violation, [.. simulation._trace.Tail], simulation._stats);
    }

    private void Execute()
    {
        ChooseFaultProfile();
        _trace.Line($"seed {_options.Seed}: {_options.Nodes} nodes, loss {_network.Loss:P0}, duplication {_network.Duplication:P0}, long delays {_network.LongDelay:P0}, max message {_maxSizePerMessage} bytes, {_maxInflight} in flight ({_maxInflightBytes} bytes), {_maxUncommittedBytes} uncommitted bytes, snapshot every {_snapshotEvery}, new leaders isolated {_isolateNewLeader:P0}, leaders isolated on commit {_isolateOnCommit:P0}, a fault every ~{_faultInterval / 1000} ms, faults {(_options.Faults ? "on" : "off")}");

        var founders = new List<ulong>();
        for (var i = 0; i < _options.Nodes; i++)
        {
            founders.Add(++_nextNodeId);
        }

        foreach (var id in founders)
        {
            var node = AddNode(id);
            Start(node);
            node.Raft!.Bootstrap(founders);
            Drain(node);
        }

        for (var c = 0; c < _options.Clients; c++)
        {
            var client = c;
            _clock.After(_random.Next(50_000), () => StartNextOperation(client));
        }

        if (_options.Faults)
        {
            ScheduleFault();
        }

        ScheduleLogMatchingCheck();

        while (_clock.RunNext(_options.LoadDuration))
        {
        }

        _clock.AdvanceTo(_options.LoadDuration);
        Heal();
        var deadline = _clock.Now + _options.ProgressBound;
        ScheduleProbe();
        var converged = false;
        while (!converged && _clock.RunNext(deadline))
        {
            converged = _ackedProbe is not null && Converged();
        }

        if (!converged)
        {
            throw new InvariantViolationException(
                $"no progress: {Trace.Format(_options.ProgressBound)} after faults healed, " +
                (_ackedProbe is null ? "no probe write was acknowledged" : "members have not all applied the leader's commit") +
                $" ({DescribeCluster()})");
        }

        FinalChecks();
    }

    private void ChooseFaultProfile()
    {
        if (!_options.Faults)
        {
            return;
        }

        _network.Loss = new[] { 0, 0.01, 0.05, 0.15 }[_random.Next(4)];
        _network.Duplication = new[] { 0, 0.01, 0.05 }[_random.Next(3)];
        _network.LongDelay = new[] { 0, 0.02, 0.1 }[_random.Next(3)];
        _joinsLeft = _random.Next(3);
        _maxSizePerMessage = new ulong[] { 0, 256, 4096 }[_random.Next(3)];
        _maxSizePerMessage = _options.MaxSizePerMessage ?? _maxSizePerMessage;
        _maxInflight = new[] { 1, 4, 16 }[_random.Next(3)];
        _isolateNewLeader = new[] { 0, 0, 0.3, 0.7 }[_random.Next(4)];
        _isolateNewLeader = _options.IsolateNewLeaders ?? _isolateNewLeader;
        _isolateOnCommit = new[] { 0, 0, 0.01, 0.05 }[_random.Next(4)];
        _isolateOnCommit = _options.IsolateOnCommit ?? _isolateOnCommit;
        _faultInterval = _options.FaultInterval ?? new long[] { 50_000, 100_000, 300_000, 600_000 }[_random.Next(4)];
        _maxInflightBytes = new ulong[] { 0, 0, 1024 }[_random.Next(3)];
        _maxUncommittedBytes = new ulong[] { 1 << 20, 1 << 20, 1024 }[_random.Next(3)];
        _snapshotEvery = new ulong[] { 16, 48, 48, 400 }[_random.Next(4)];
    }

    // ---------------------------------------------------------------- nodes and their Ready loop

    private SimNode AddNode(ulong id)
    {
        var node = new SimNode(id) { DiskLatency = 100 + _random.Next(900), TickInterval = _options.TickInterval };
        if (_options.Faults)
        {
            // Clocks of different machines run at slightly different rates.
            node.TickInterval = _options.TickInterval * (90 + _random.Next(21)) / 100;
        }

        _nodes[id] = node;
        return node;
    }

    /// <summary>Starts (or restarts) a node's core from what its disk holds.</summary>
    private void Start(SimNode node)
    {
        var snapshot = node.Disk.Snapshot();
        if (!snapshot.IsEmpty)
        {
            node.Kv = KvStateMachine.Deserialize(snapshot.Data.Span);
            node.Applied = snapshot.Metadata.Index;
            node.Conf = snapshot.Metadata.ConfState;
        }

        node.Raft = new RaftNode(new RaftConfig
        {
            Id = node.Id,
            Storage = node.Disk,
            Applied = node.Applied,
            ElectionTicks = _options.ElectionTicks,
            HeartbeatTicks = 1,
            MaxSizePerMessage = _maxSizePerMessage,
            MaxInflightMessages = _maxInflight,
            MaxInflightBytes = _maxInflightBytes,
            MaxUncommittedEntriesSize = _maxUncommittedBytes,
            Random = new Random(_random.Next()),
            UnsafeCommitPreviousTermByCounting = _options.UnsafeCommitPreviousTermByCounting,
            UnsafeGrantVoteWithoutLogCheck = _options.UnsafeGrantVoteWithoutLogCheck,
        });
        _trace.Line($"n{node.Id} start (disk: {node.Disk.FirstIndex()}..{node.Disk.LastIndex()}, {DescribeHardState(node.Disk.HardState)}, applied {node.Applied})");
        ScheduleTick(node, node.Incarnation, firstTick: true);
    }

    private void ScheduleTick(SimNode node, int incarnation, bool firstTick = false)
    {
        var delay = firstTick ? 1 + _random.NextInt64(node.TickInterval) : node.TickInterval;
        _clock.After(delay, Tick);

        void Tick()
        {
            if (node.Incarnation != incarnation || node.Raft is null)
            {
                return;
            }

            if (_clock.Now < node.PausedUntil)
            {
                _clock.At(node.PausedUntil, Tick); // a paused process misses its ticks (like Go's ticker, one fires late)
                return;
            }

            node.Raft.Tick();
            Drain(node);
            ScheduleTick(node, incarnation);
        }
    }

    /// <summary>While the node is paused, runs <paramref name="action"/> when it resumes instead; true if deferred.</summary>
    private bool DeferWhilePaused(SimNode node, Action action)
    {
        if (_clock.Now >= node.PausedUntil)
        {
            return false;
        }

        _clock.At(node.PausedUntil, action);
        return true;
    }

    /// <summary>Handles the node's next Ready if it has one and no write is in progress.</summary>
    private void Drain(SimNode node)
    {
        var raft = node.Raft;
        if (raft is null)
        {
            return;
        }

        _safety.ObserveRole(node);
        if (node.InFlight is not null || !raft.HasReady)
        {
            return;
        }

        var ready = raft.GetReady();
        var leaderTerm = raft.Role == StateRole.Leader ? raft.Term : 0;
        node.InFlight = ready;
        TraceReady(node, ready);
        if (ready.SoftState is { } soft && soft.Role == StateRole.Leader && soft.Leader == node.Id && _lastLeader != node.Id)
        {
            _lastLeader = node.Id;
            _stats.LeaderChanges++;
            if (_loading && _random.NextDouble() < _isolateNewLeader)
            {
                // Jepsen-style nemesis: cut a leader off right after it takes office, before its first entries
                // spread. This is what exposes commit-rule mistakes (Raft paper figure 8).
                var leader = node;
                _clock.After(_random.Next(3_000), () => IsolateBriefly(leader));
            }
        }

        foreach (var message in ready.Messages)
        {
            Send(node, message);
        }

        // Writes this node forwarded and the receiver dropped were never appended: refused, so the history check holds the
        // core to that (a refused write that took effect anyway shows up as a value nobody wrote).
        foreach (var dropped in ready.DroppedProposals)
        {
            foreach (var entry in dropped.Entries.Where(e => e.Type == EntryType.Normal && !e.Data.IsEmpty))
            {
                if (node.Writes.Remove(KvCommand.Decode(entry.Data.Span).RequestId, out var write))
                {
                    Refuse(write, dropped.By, dropped.Reason);
                }
            }
        }

        if (_options.HostBug == HostBug.AckBeforeSync)
        {
            foreach (var message in ready.MessagesAfterPersist)
            {
                Send(node, message);
            }
        }

        var writes = ready.Snapshot is not null || ready.Entries.Count > 0 || ready.HardState is not null;
        var latency = writes ? DiskLatency(node) : 0;
        var incarnation = node.Incarnation;
        _clock.After(latency, WriteDone);

        void WriteDone()
        {
            if (node.Incarnation == incarnation && !DeferWhilePaused(node, WriteDone))
            {
                Complete(node, ready, leaderTerm);
            }
        }
    }

    private long DiskLatency(SimNode node)
    {
        var latency = node.DiskLatency + _random.Next((int)node.DiskLatency);
        return _clock.Now < node.SlowDiskUntil ? latency * (10 + _random.Next(40)) : latency;
    }

    /// <summary>The Ready's write is synced: persist it, send what depended on it, apply, advance.</summary>
    private void Complete(SimNode node, Ready ready, ulong leaderTerm)
    {
        var raft = node.Raft!;
        Persist(node, ready);
        node.InFlight = null;
        if (_options.HostBug != HostBug.AckBeforeSync)
        {
            foreach (var message in ready.MessagesAfterPersist)
            {
                Send(node, message);
            }
        }

        if (leaderTerm != 0 && node.LeaderCheckedTerm != leaderTerm)
        {
            node.LeaderCheckedTerm = leaderTerm;
            _safety.CheckLeaderCompleteness(node, leaderTerm);
        }

        if (ready.Snapshot is { } snapshot)
        {
            node.Kv = KvStateMachine.Deserialize(snapshot.Data.Span);
            node.Applied = snapshot.Metadata.Index;
            node.Conf = snapshot.Metadata.ConfState;
            _trace.Line($"n{node.Id} restore snapshot at {snapshot.Metadata.Index} t{snapshot.Metadata.Term} ({snapshot.Metadata.ConfState})");
        }

        foreach (var entry in ready.CommittedEntries)
        {
            Apply(node, entry);
            if (node.Raft is null)
            {
                return; // removed itself
            }
        }

        foreach (var readState in ready.ReadStates)
        {
            var requestId = BinaryPrimitives.ReadInt64LittleEndian(readState.Context.Span);
            if (node.ReadsAwaitingIndex.Remove(requestId, out var read))
            {
                node.ReadsAwaitingApply.Add((readState.Index, read));
            }
        }

        ServeReads(node);
        raft.Advance(ready);
        MaybeCompact(node);
        Drain(node);
    }

    private void Persist(SimNode node, Ready ready)
    {
        if (ready.Snapshot is { } snapshot)
        {
            node.Disk.ApplySnapshot(snapshot);
        }

        node.Disk.Append(ready.Entries);
        if (ready.HardState is { } hardState)
        {
            if (node.Raft?.Role == StateRole.Leader && hardState.Commit > node.Disk.HardState.Commit)
            {
                if (hardState.Commit >= node.Disk.FirstIndex() && node.Disk.Term(hardState.Commit) < hardState.Term)
                {
                    _stats.PreviousTermCommits++;
                }

                if (_loading && !_network.Partitioned && _random.NextDouble() < _isolateOnCommit)
                {
                    // Nemesis: cut the leader off the moment its commit index advances, before followers learn it.
                    IsolateBriefly(node);
                }
            }

            node.Disk.SetHardState(hardState);
            _safety.ObserveHardState(hardState);
        }
    }

    private void Apply(SimNode node, Entry entry)
    {
        if (entry.Index != node.Applied + 1)
        {
            throw new InvariantViolationException(
                $"n{node.Id} was handed entry {entry.Index} to apply after applying {node.Applied}: committed entries must come in order without gaps");
        }

        _safety.ObserveApply(node, entry);
        node.Applied = entry.Index;
        if (entry.Type == EntryType.ConfChange)
        {
            var change = ConfChange.Decode(entry.Data);
            node.Conf = node.Raft!.ApplyConfChange(change);
            _trace.Line($"n{node.Id} apply {entry.Index} t{entry.Term} {SafetyMonitor.DescribeConfChange(change)} -> {node.Conf}");
            if (change.Type == ConfChangeType.RemoveNode)
            {
                ScheduleShutdown(change.NodeId);
            }

            return;
        }

        if (entry.Data.IsEmpty)
        {
            return;
        }

        var command = KvCommand.Decode(entry.Data.Span);
        var output = node.Kv.Apply(command);
        if (_trace.Enabled)
        {
            _trace.Line($"n{node.Id} apply {entry.Index} t{entry.Term} #{command.RequestId} {command.Operation} -> {output}");
        }

        if (node.Writes.Remove(command.RequestId, out var operation))
        {
            _acknowledgedWrites.Add((command.RequestId, entry.Index, entry.Term));
            Respond(operation, output);
        }
    }

    private void ServeReads(SimNode node)
    {
        for (var i = 0; i < node.ReadsAwaitingApply.Count; i++)
        {
            var (index, read) = node.ReadsAwaitingApply[i];
            if (node.Applied < index)
            {
                continue;
            }

            var state = node.Kv.Get(read.Input.Key);
            Respond(read, new KvGetResult(state.Value, state.Version));
            node.ReadsAwaitingApply.RemoveAt(i--);
        }
    }

    /// <summary>Snapshots the state machine and compacts the log now and then, so lagging nodes need a snapshot.</summary>
    private void MaybeCompact(SimNode node)
    {
        var first = node.Disk.FirstIndex();
        if (node.Applied < first + _snapshotEvery || node.Applied > node.Disk.LastIndex())
        {
            return;
        }

        node.Disk.CreateSnapshot(node.Applied, node.Conf, node.Kv.Serialize());
        node.Disk.Compact(node.Applied - EntriesKeptAfterSnapshot);
        _trace.Line($"n{node.Id} snapshot at {node.Applied}, log now {node.Disk.FirstIndex()}..{node.Disk.LastIndex()}");
    }

    private static string DescribeHardState(HardState hs) => $"hs(t{hs.Term} vote=n{hs.Vote} commit={hs.Commit})";

    private void TraceReady(SimNode node, Ready ready)
    {
        if (!_trace.Enabled)
        {
            return;
        }

        var parts = new List<string>();
        if (ready.SoftState is { } soft)
        {
            parts.Add($"{soft.Role} leader=n{soft.Leader}");
        }

        if (ready.HardState is { } hs)
        {
            parts.Add(DescribeHardState(hs));
        }

        if (ready.Snapshot is { } snap)
        {
            parts.Add($"snapshot@{snap.Metadata.Index}");
        }

        if (ready.Entries.Count > 0)
        {
            parts.Add($"persist[{ready.Entries[0].Index}..{ready.Entries[^1].Index}]t{ready.Entries[^1].Term}");
        }

        if (ready.CommittedEntries.Count > 0)
        {
            parts.Add($"apply[{ready.CommittedEntries[0].Index}..{ready.CommittedEntries[^1].Index}]");
        }

        if (ready.ReadStates.Count > 0)
        {
            parts.Add($"reads={ready.ReadStates.Count}");
        }

        if (ready.Messages.Count + ready.MessagesAfterPersist.Count > 0)
        {
            parts.Add($"msgs={ready.Messages.Count}+{ready.MessagesAfterPersist.Count}");
        }

        if (ready.MustSync)
        {
            parts.Add("sync");
        }

        _trace.Line($"n{node.Id} ready {string.Join(' ', parts)}");
    }

    // ---------------------------------------------------------------- network

    private void Send(SimNode from, Message message)
    {
        _stats.MessagesSent++;
        if (_network.Blocked(from.Id, message.To) || !_nodes.ContainsKey(message.To))
        {
            Dropped(from, message, "partition");
            if (_random.Next(2) == 0)
            {
                var incarnation = from.Incarnation;
                _clock.After(1, () =>
                {
                    if (from.Incarnation == incarnation && from.Raft is not null)
                    {
                        from.Raft.ReportUnreachable(message.To);
                        Drain(from);
                    }
                });
            }

            return;
        }

        if (_random.NextDouble() < _network.Loss)
        {
            Dropped(from, message, "lost");
            return;
        }

        if (message.Type == MessageType.MsgSnap)
        {
            _stats.SnapshotsSent++;
        }

        _clock.After(_network.Delay(_random), () => Deliver(from, from.Incarnation, message));
        if (_random.NextDouble() < _network.Duplication)
        {
            _clock.After(_network.Delay(_random), () => Deliver(from, from.Incarnation, message));
        }
    }

    private void Dropped(SimNode from, Message message, string why)
    {
        _stats.MessagesDropped++;
        if (_trace.Enabled)
        {
            _trace.Line($"drop ({why}) {message}");
        }

        if (message.Type == MessageType.MsgSnap)
        {
            ReportSnapshot(from, from.Incarnation, message.To, SnapshotStatus.Failure);
        }
    }

    private void Deliver(SimNode from, int fromIncarnation, Message message)
    {
        var to = _nodes[message.To];
        if (to.Raft is not null && DeferWhilePaused(to, () => Deliver(from, fromIncarnation, message)))
        {
            return;
        }

        if (to.Raft is null || _network.Blocked(message.From, message.To))
        {
            Dropped(from, message, to.Raft is null ? "receiver down" : "partition");
            return;
        }

        if (_trace.Enabled)
        {
            _trace.Line($"deliver {message}");
        }

        to.Raft.Step(message);
        Drain(to);
        if (message.Type == MessageType.MsgSnap)
        {
            ReportSnapshot(from, fromIncarnation, message.To, SnapshotStatus.Finish);
        }
    }

    private void ReportSnapshot(SimNode from, int incarnation, ulong to, SnapshotStatus status) =>
        _clock.After(1, () =>
        {
            if (from.Incarnation == incarnation && from.Raft is not null)
            {
                from.Raft.ReportSnapshot(to, status);
                Drain(from);
            }
        });

    // ---------------------------------------------------------------- clients

    private void StartNextOperation(int client)
    {
        if (!_loading)
        {
            return;
        }

        var node = PickServingNode();
        if (node is null)
        {
            _clock.After(10_000, () => StartNextOperation(client));
            return;
        }

        var key = $"k{_random.Next(_options.Keys)}";
        var value = $"c{client}.{++_clientSequence[client]}";
        var roll = _random.Next(100);
        KvInput input = roll switch
        {
            < 35 => new KvGet(key),
            < 70 => new KvPut(key, value),
            < 80 => new KvDelete(key),
            _ => new KvCompareAndSet(key, PickExpected(node, key), _random.Next(6) == 0 ? null : value),
        };
        Invoke(client, input, node);
    }

    /// <summary>A plausible expected value for a compare-and-set: often the current one, so some succeed.</summary>
    private string? PickExpected(SimNode node, string key) =>
        _random.Next(3) == 0 ? null : node.Kv.Get(key).Value;

    private void Invoke(int client, KvInput input, SimNode node)
    {
        var operation = new ClientOperation(client, _nextRequestId++, input, _clock.Now, node.Id);
        _operations.Add(operation);
        _stats.ClientOperations++;
        if (_trace.Enabled)
        {
            _trace.Line($"c{client} invoke #{operation.RequestId} {input} at n{node.Id}");
        }

        var incarnation = node.Incarnation;
        _clock.After(ClientLinkMin + _random.Next((int)ClientLinkSpread), () => Receive(node, incarnation, operation));
        _clock.After(ClientTimeout, () =>
        {
            if (operation.Done)
            {
                return;
            }

            operation.TimedOut = true;
            _stats.TimedOut++;
            _trace.Line($"c{client} timeout #{operation.RequestId} {input} (outcome unknown)");
            Continue(operation);
        });
    }

    /// <summary>The node receives a client request: writes are proposed, reads go through ReadIndex.</summary>
    private void Receive(SimNode node, int incarnation, ClientOperation operation)
    {
        if (node.Incarnation != incarnation || node.Raft is null)
        {
            return; // the node is down: the client will time out
        }

        if (DeferWhilePaused(node, () => Receive(node, incarnation, operation)))
        {
            return;
        }

        try
        {
            if (operation.Input is KvGet && _options.HostBug == HostBug.LocalReads)
            {
                var local = node.Kv.Get(operation.Input.Key);
                Respond(operation, new KvGetResult(local.Value, local.Version));
            }
            else if (operation.Input is KvGet)
            {
                var context = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(context, operation.RequestId);
                node.ReadsAwaitingIndex[operation.RequestId] = operation;
                node.Raft.ReadIndex(context);
            }
            else
            {
                node.Writes[operation.RequestId] = operation;
                node.Raft.Propose(new KvCommand(operation.RequestId, operation.Input).Encode());
                if (_options.HostBug == HostBug.AckOnPropose && operation.Input is KvPut)
                {
                    node.Writes.Remove(operation.RequestId);
                    Respond(operation, new KvPutResult());
                }
            }
        }
        catch (ProposalDroppedException e)
        {
            node.ReadsAwaitingIndex.Remove(operation.RequestId);
            node.Writes.Remove(operation.RequestId);
            Refuse(operation, node.Id, e.Reason);
        }

        Drain(node);
    }

    /// <summary>The write or read was refused before anything was appended: it takes no part in the history check.</summary>
    private void Refuse(ClientOperation operation, ulong by, ProposalDropReason reason) =>
        _clock.After(ClientLinkMin + _random.Next((int)ClientLinkSpread), () =>
        {
            if (operation.Done)
            {
                return;
            }

            operation.Refused = true;
            _stats.Refused++;
            if (_trace.Enabled)
            {
                _trace.Line($"c{operation.Client} refused #{operation.RequestId} by n{by}: {reason}");
            }

            Continue(operation);
        });

    private void Respond(ClientOperation operation, KvOutput output) =>
        _clock.After(ClientLinkMin + _random.Next((int)ClientLinkSpread), () =>
        {
            if (operation.Done)
            {
                return;
            }

            operation.Output = output;
            operation.ReturnTime = _clock.Now;
            _stats.Acknowledged++;
            if (_trace.Enabled)
            {
                _trace.Line($"c{operation.Client} ok #{operation.RequestId} {operation.Input} -> {output}");
            }

            if (operation.Client == ProbeClient && _ackedProbe is null && !_loading)
            {
                _ackedProbe = operation;
            }

            Continue(operation);
        });

    private void Continue(ClientOperation operation)
    {
        if (operation.Client == ProbeClient)
        {
            _probe = null;
            return;
        }

        // Think time, at least 1 µs so the next call is strictly after this return.
        _clock.After(1 + _random.Next(20_000), () => StartNextOperation(operation.Client));
    }

    /// <summary>A member that is up, chosen at random (followers forward to the leader).</summary>
    private SimNode? PickServingNode()
    {
        var candidates = _nodes.Values.Where(n => n.Up && !n.Removed && n.Conf.Voters.Contains(n.Id)).ToList();
        return candidates.Count == 0 ? null : candidates[_random.Next(candidates.Count)];
    }

    // ---------------------------------------------------------------- faults

    private void ScheduleFault() =>
        _clock.After((_faultInterval * 2 / 5) + _random.NextInt64(_faultInterval * 6 / 5), () =>
        {
            if (!_loading)
            {
                return;
            }

            InjectFault();
            ScheduleFault();
        });

    private void InjectFault()
    {
        var roll = _random.Next(100);
        if (roll < 25 && _options.Nodes > 1 && !_network.Partitioned)
        {
            Partition();
        }
        else if (roll < 45)
        {
            CrashSomeNode();
        }
        else if (roll < 55)
        {
            var node = RandomLiveNode();
            if (node is not null)
            {
                node.SlowDiskUntil = _clock.Now + 200_000 + _random.Next(1_500_000);
                _trace.Line($"fault: n{node.Id} disk slow until {Trace.Format(node.SlowDiskUntil)}");
            }
        }
        else if (roll < 70)
        {
            TransferLeadership();
        }
        else if (roll < 90)
        {
            MembershipStep();
        }
        else if (roll < 93)
        {
            PauseSomeNode();
        }
        else if (roll < 97)
        {
            var election = _options.ElectionTicks + _random.Next(6);
            _trace.Line($"fault: timing changed to heartbeat 1, election {election} ticks on all nodes");
            foreach (var node in _nodes.Values.Where(n => n.Up))
            {
                node.Raft!.SetTiming(1, election);
            }
        }
    }

    private void Partition()
    {
        var members = _nodes.Values.Where(n => !n.Removed).Select(n => n.Id).ToList();
        var kind = _random.Next(3);
        string description;
        if (kind == 0 && CurrentLeader() is { } leader)
        {
            foreach (var other in members.Where(m => m != leader.Id))
            {
                _network.Block(leader.Id, other);
                _network.Block(other, leader.Id);
            }

            description = $"leader n{leader.Id} isolated";
        }
        else
        {
            var side = members.Where(_ => _random.Next(2) == 0).ToList();
            if (side.Count == 0)
            {
                side.Add(members[_random.Next(members.Count)]);
            }

            var rest = members.Except(side).ToList();
            var asymmetric = kind == 2;
            foreach (var a in side)
            {
                foreach (var b in rest)
                {
                    _network.Block(a, b);
                    if (!asymmetric)
                    {
                        _network.Block(b, a);
                    }
                }
            }

            description = $"{(asymmetric ? "asymmetric: " : "")}[{string.Join(',', side.Select(i => "n" + i))}] {(asymmetric ? "->" : "|")} [{string.Join(',', rest.Select(i => "n" + i))}]";
        }

        _stats.Partitions++;
        var duration = 100_000 + _random.Next(1_400_000);
        _trace.Line($"fault: partition {description} for {Trace.Format(duration)}");
        _clock.After(duration, () =>
        {
            if (_network.Partitioned)
            {
                _network.HealPartitions();
                _trace.Line("fault healed: partition");
            }
        });
    }

    private void IsolateBriefly(SimNode leader)
    {
        if (!_loading || !leader.Up)
        {
            return;
        }

        foreach (var other in _nodes.Keys.Where(id => id != leader.Id))
        {
            _network.Block(leader.Id, other);
            _network.Block(other, leader.Id);
        }

        _stats.Partitions++;
        var duration = 20_000 + _random.Next(300_000);
        _trace.Line($"fault: leader n{leader.Id} isolated for {Trace.Format(duration)}");
        _clock.After(duration, () =>
        {
            if (_network.Partitioned)
            {
                _network.HealPartitions();
                _trace.Line("fault healed: partition");
            }
        });
    }

    /// <summary>A process stops for a while (GC pause, VM freeze) without losing anything, often the leader.</summary>
    private void PauseSomeNode()
    {
        var node = _random.Next(2) == 0 ? CurrentLeader() ?? RandomLiveNode() : RandomLiveNode();
        if (node is null || _clock.Now < node.PausedUntil)
        {
            return;
        }

        node.PausedUntil = _clock.Now + 50_000 + _random.Next(1_500_000);
        _trace.Line($"fault: n{node.Id} paused until {Trace.Format(node.PausedUntil)}");
    }

    private void CrashSomeNode()
    {
        // Usually a node in the middle of a disk write: the moment when what is synced and what was promised can differ.
        var writing = _nodes.Values.Where(n => n.Up && !n.Removed && n.InFlight is not null).ToList();
        var node = writing.Count > 0 && _random.Next(3) > 0 ? writing[_random.Next(writing.Count)] : RandomLiveNode();
        if (node is null)
        {
            return;
        }

        Crash(node);
        var downtime = 20_000 + _random.Next(800_000);
        var incarnation = node.Incarnation;
        _clock.After(downtime, () =>
        {
            if (node.Incarnation == incarnation && !node.Up && !node.Removed)
            {
                Start(node);
                Drain(node);
            }
        });
    }

    private void Crash(SimNode node)
    {
        // A write in progress may or may not have reached the disk before the crash; nothing that depends on it
        // was sent yet, so either is legal.
        var kept = false;
        if (node.InFlight is { } ready && _random.Next(2) == 0)
        {
            Persist(node, ready);
            kept = true;
        }

        node.DropVolatileState();
        _stats.Crashes++;
        _trace.Line($"fault: n{node.Id} crashed{(kept ? " (its write in progress reached the disk)" : "")}; disk keeps {node.Disk.FirstIndex()}..{node.Disk.LastIndex()}, {DescribeHardState(node.Disk.HardState)}");
    }

    private void TransferLeadership()
    {
        var leader = CurrentLeader();
        if (leader is null)
        {
            return;
        }

        var voters = leader.Raft!.Status.ConfState.Voters.Where(v => v != leader.Id).ToList();
        if (voters.Count == 0)
        {
            return;
        }

        var target = voters[_random.Next(voters.Count)];
        _stats.Transfers++;
        _trace.Line($"fault: transfer leadership n{leader.Id} -> n{target}");
        leader.Raft.TransferLeadership(target);
        Drain(leader);
    }

    /// <summary>
    /// One step towards a membership change, decided from the leader's current configuration: promote a caught-up
    /// learner; else shrink back to the founding size by removing a voter (possibly the leader); else add a new
    /// node as a learner.
    /// </summary>
    private void MembershipStep()
    {
        var leader = CurrentLeader();
        if (leader is null)
        {
            return;
        }

        var status = leader.Raft!.Status;
        var conf = status.ConfState;
        ConfChange? change = null;
        if (conf.Learners.Count > 0)
        {
            var learner = conf.Learners[0];
            if (status.Progress.TryGetValue(learner, out var progress) && progress.Match >= status.HardState.Commit)
            {
                change = new ConfChange(ConfChangeType.AddNode, learner);
            }
        }
        else if (conf.Voters.Count > _options.Nodes && (conf.Voters.Count > 2 || _options.ShrinkTwoVoters))
        {
            // Any voter, the leader included. Shrinking two voters to one is off by default: it has an open liveness
            // hazard (README, OpenHazardTests): the member that leaves may be gone before the other durably knows the
            // removal committed, and then nobody can form the old quorum. --shrink-two-voters turns it on.
            change = new ConfChange(ConfChangeType.RemoveNode, conf.Voters[_random.Next(conf.Voters.Count)]);
        }
        else if (_joiningNode != 0 && !conf.Voters.Contains(_joiningNode) && !_nodes[_joiningNode].Removed)
        {
            change = new ConfChange(ConfChangeType.AddLearnerNode, _joiningNode); // the earlier proposal was lost
        }
        else if (_joinsLeft > 0)
        {
            _joinsLeft--;
            _joiningNode = ++_nextNodeId;
            var joiner = AddNode(_joiningNode);
            Start(joiner); // empty log, no bootstrap: it learns the cluster from the leader
            change = new ConfChange(ConfChangeType.AddLearnerNode, _joiningNode);
        }

        if (change is null)
        {
            return;
        }

        try
        {
            leader.Raft.ProposeConfChange(change);
            _stats.MembershipChanges++;
            _trace.Line($"fault: n{leader.Id} proposes {SafetyMonitor.DescribeConfChange(change)}");
        }
        catch (ProposalDroppedException e)
        {
            _trace.Line($"fault: n{leader.Id} refused {SafetyMonitor.DescribeConfChange(change)}: {e.Reason}");
        }

        Drain(leader);
    }

    /// <summary>A removed member shuts down a little after its removal is applied (etcd stops it).</summary>
    private void ScheduleShutdown(ulong id)
    {
        if (!_nodes.TryGetValue(id, out var node) || node.Removed)
        {
            return;
        }

        node.Removed = true;
        _clock.After(300_000, () =>
        {
            if (node.Up)
            {
                node.DropVolatileState();
            }

            _trace.Line($"n{id} shut down (removed from the cluster)");
        });
    }

    private SimNode? RandomLiveNode()
    {
        var live = _nodes.Values.Where(n => n.Up && !n.Removed).ToList();
        return live.Count == 0 ? null : live[_random.Next(live.Count)];
    }

    /// <summary>The up node that believes it leads, in the highest term.</summary>
    private SimNode? CurrentLeader() =>
        _nodes.Values
            .Where(n => n.Up && n.Raft!.Role == StateRole.Leader)
            .OrderByDescending(n => n.Raft!.Term)
            .FirstOrDefault();

    // ---------------------------------------------------------------- heal, progress, final checks

    private void Heal()
    {
        _loading = false;
        _network.HealPartitions();
        _network.Loss = 0;
        _network.Duplication = 0;
        _network.LongDelay = 0;
        foreach (var node in _nodes.Values)
        {
            node.SlowDiskUntil = 0; // a pause in progress ends by itself (within 1.55 s)
            if (!node.Up && !node.Removed)
            {
                Start(node);
                Drain(node);
            }
        }

        _trace.Line("heal: network repaired, crashed nodes restarted, disks fast; clients stop, probe writes start");
    }

    private void ScheduleProbe() =>
        _clock.After(50_000, () =>
        {
            if (_ackedProbe is not null)
            {
                return;
            }

            if (_probe is null && PickServingNode() is { } node)
            {
                Invoke(ProbeClient, new KvPut("probe", $"p{_nextRequestId}"), node);
                _probe = _operations[^1];
            }

            ScheduleProbe();
        });

    /// <summary>A leader exists and every member (by the leader's configuration) is up and has applied its commit.</summary>
    private bool Converged()
    {
        var leader = CurrentLeader();
        if (leader is null)
        {
            return false;
        }

        var status = leader.Raft!.Status;
        var commit = status.HardState.Commit;
        foreach (var id in status.ConfState.Voters.Concat(status.ConfState.Learners))
        {
            if (!_nodes.TryGetValue(id, out var member) || !member.Up || member.Applied < commit)
            {
                return false;
            }
        }

        _stats.FinalCommit = commit;
        return true;
    }

    private string DescribeCluster() =>
        string.Join("; ", _nodes.Values.Select(n => n.Raft is { } r
            ? $"n{n.Id} {r.Role} t{r.Term} leader=n{r.Leader} applied={n.Applied} last={r.Status.LastIndex} commit={r.Status.HardState.Commit} conf {n.Conf}"
            : $"n{n.Id} {(n.Removed ? "removed" : "down")}"));

    private void ScheduleLogMatchingCheck() =>
        _clock.After(500_000, () =>
        {
            SafetyMonitor.CheckLogMatching([.. _nodes.Values]);
            ScheduleLogMatchingCheck();
        });

    private void FinalChecks()
    {
        SafetyMonitor.CheckLogMatching([.. _nodes.Values]);

        // No acknowledged write lost: it is committed at the index it was applied at, and every member has it.
        var leader = CurrentLeader()!;
        var members = leader.Raft!.Status.ConfState;
        foreach (var (requestId, index, term) in _acknowledgedWrites)
        {
            if (_safety.AppliedTerm(index) != term)
            {
                throw new InvariantViolationException($"acknowledged write #{requestId} at index {index} t{term} is not what the cluster applied there");
            }

            foreach (var id in members.Voters.Concat(members.Learners))
            {
                if (_nodes[id].Applied < index)
                {
                    throw new InvariantViolationException($"acknowledged write #{requestId} at index {index} is missing on n{id} (applied {_nodes[id].Applied})");
                }
            }
        }

        // All members applied the same entries, so their stores must be equal.
        var reference = _nodes[leader.Id];
        var image = reference.Kv.Serialize();
        foreach (var id in members.Voters.Concat(members.Learners))
        {
            var member = _nodes[id];
            if (member.Applied == reference.Applied && !member.Kv.Serialize().AsSpan().SequenceEqual(image))
            {
                throw new InvariantViolationException($"n{id} and n{reference.Id} applied up to {member.Applied} but hold different stores");
            }
        }

        var history = _operations
            .Where(o => !o.Refused)
            .Select(o => o.ReturnTime is { } returned
                ? new Operation<KvInput, KvOutput>(o.Client, o.Input, o.Output, o.CallTime, returned)
                : new Operation<KvInput, KvOutput>(o.Client, o.Input, null, o.CallTime, null))
            .ToList();
        var result = LinearizabilityChecker.Check(KvModel.Instance, history, new CheckOptions { MaxSteps = 20_000_000 });
        _stats.CheckerSteps = result.Steps;
        _trace.Line($"history: {history.Count} operations, {result}");
        if (!result.IsOk)
        {
            throw new InvariantViolationException($"linearizability (times in µs of virtual time): {result}");
        }
    }
}
