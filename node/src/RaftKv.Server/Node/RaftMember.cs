using System.Buffers.Binary;
using System.Diagnostics;
using System.Threading.Channels;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using RaftKv.Protocol.Internal;
using RaftKv.Raft;
using RaftKv.Server.Api;
using RaftKv.Server.Cluster;
using RaftKv.Server.Observability;
using RaftKv.Server.Peers;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Node;

/// <summary>A committed entry for the state machine: its position and the client request it carries (null: only advances the index).</summary>
internal readonly record struct CommittedRequest(ulong Index, ulong Term, InternalRequest? Request);

/// <summary>Applies client requests (everything that is not membership) to the key-value state machine.</summary>
internal interface IRequestApplier
{
    /// <summary>
    /// Applies a batch of committed entries in log order, atomically with the applied index. Returns one result per item:
    /// the response for the proposer's waiter, an <see cref="RpcException"/> to fail it with, or null.
    /// </summary>
    IReadOnlyList<object?> Apply(IReadOnlyList<CommittedRequest> batch);
}

/// <summary>How one member runs.</summary>
internal sealed record MemberSettings
{
    public required ulong MemberId { get; init; }

    public required ulong ClusterId { get; init; }

    public required string Name { get; init; }

    public required int HeartbeatMs { get; init; }

    public required int ElectionMs { get; init; }

    /// <summary>Where membership is kept (<c>DATA_DIR/member</c>); null keeps it in memory only (tests).</summary>
    public string? MemberDir { get; init; }

    /// <summary>Founding members as <c>--initial-cluster</c> names them: what context-less bootstrap conf changes stand for.</summary>
    public IReadOnlyList<Member> InitialMembers { get; init; } = [];

    /// <summary>Non-null on a brand-new cluster's founding member: the voters to bootstrap Raft with.</summary>
    public IReadOnlyList<ulong>? BootstrapVoters { get; init; }

    public PeerTransportOptions? Transport { get; init; }
}

/// <summary>
/// One cluster member's Raft loop: owns the <see cref="RaftNode"/> (only the loop touches it), ticks it, feeds it peer
/// messages and proposals, and handles each Ready in order: send the leader's messages, persist with one sync, send the
/// messages that promise what was persisted, apply committed entries, serve read states, advance.
/// Client code talks to it through <see cref="ProposeAsync"/>, <see cref="ReadBarrierAsync"/> and the membership calls.
/// </summary>
internal sealed partial class RaftMember : IPeerInbox, IPeerTransportEvents, IAsyncDisposable
{
    private readonly MemberSettings _settings;
    private readonly IMemberLog _log;
    private readonly NodeMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly RaftNode _node;
    private readonly PeerTransport _transport;
    private readonly Channel<object> _inputs = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<ulong, TaskCompletionSource<object?>> _waiters = [];
    private readonly Lock _waitersLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<ulong, Member> _initialMembers;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ITimer _ticker;
    private IRequestApplier? _applier;
    private SnapshotCoordinator? _snapshots;
    private Task _loop = Task.CompletedTask;
    private long _nextRequestId;

    // Read-index batching (loop only): requests wait for the next round; one round is in flight at a time.
    private readonly List<TaskCompletionSource> _readsWaitingForRound = [];

    // Proposals that could not go in yet (loop only): no leader known, or a membership change while the leader has one
    // to apply. Proposed again on each turn of the loop until they go in or their client gives up.
    private readonly List<ProposalInput> _waitingToPropose = [];
    private ulong _readRoundContext;
    private List<TaskCompletionSource>? _readRound;
    private long _readRoundStartedTick;
    private readonly List<(ulong Index, List<TaskCompletionSource> Waiters)> _readsWaitingForApply = [];
    private long _ticks;

    // Published by the loop, read anywhere.
    private ulong _leader;
    private ulong _term;
    private ulong _commit;
    private ulong _applied;
    private ulong _lastIndex;
    private int _heartbeatMs;
    private int _electionMs;
    private volatile bool _isLearner;

    public RaftMember(MemberSettings settings, IMemberLog log, Membership membership, NodeMetrics metrics, PeerFaults faults, TimeProvider time, ILoggerFactory loggers)
    {
        _settings = settings;
        _log = log;
        Membership = membership;
        _metrics = metrics;
        _time = time;
        _logger = loggers.CreateLogger("raftkv.member");
        _heartbeatMs = settings.HeartbeatMs;
        _electionMs = settings.ElectionMs;
        _initialMembers = settings.InitialMembers.ToDictionary(m => m.Id);
        _applied = log.Storage.Snapshot().Metadata.Index;
        _nextRequestId = (long)(((settings.MemberId & 0xffff) << 48) | (((ulong)time.GetUtcNow().ToUnixTimeMilliseconds() << 8) & 0xffff_ffff_ffff));
        _node = new RaftNode(new RaftConfig
        {
            Id = settings.MemberId,
            Storage = log.Storage,
            HeartbeatTicks = 1,
            ElectionTicks = ElectionTicks(settings.HeartbeatMs, settings.ElectionMs),
            MaxUncommittedEntriesSize = 1UL << 30,
            MaxInflightMessages = 512,
            Random = new Random(unchecked((int)settings.MemberId ^ Environment.TickCount)),
        });
        if (settings.BootstrapVoters is { } voters)
        {
            _node.Bootstrap(voters);
        }

        _transport = new PeerTransport(
            settings.Transport ?? new PeerTransportOptions { ClusterId = settings.ClusterId, MemberId = settings.MemberId },
            this, metrics, faults, time, loggers.CreateLogger("raftkv.peers"));
        foreach (var m in membership.List().Concat(settings.InitialMembers))
        {
            _transport.AddOrUpdatePeer(m.Id, [.. m.PeerUrls.Select(u => new Uri(u))]);
        }

        _ticker = time.CreateTimer(_ => _inputs.Writer.TryWrite(TickInput.Instance), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        metrics.ServerId.WithLabels(MemberIds.Hex(settings.MemberId)).Set(1);
    }

    public ulong ClusterId => _settings.ClusterId;

    public ulong MemberId => _settings.MemberId;

    public string Name => _settings.Name;

    public Membership Membership { get; }

    public PeerTransport Transport => _transport;

    public bool IsDurable => _log.IsDurable;

    public ulong Leader => Volatile.Read(ref _leader);

    public ulong Term => Volatile.Read(ref _term);

    public ulong CommitIndex => Volatile.Read(ref _commit);

    public ulong AppliedIndex => Volatile.Read(ref _applied);

    public ulong LastIndex => Volatile.Read(ref _lastIndex);

    public bool IsLearner => _isLearner;

    public (int HeartbeatMs, int ElectionMs) Timing => (Volatile.Read(ref _heartbeatMs), Volatile.Read(ref _electionMs));

    /// <summary>Completes when the loop has ended (stopped, removed from the cluster, or failed).</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Raised on the loop after the known leader changed (0 = none).</summary>
    public event Action<ulong>? LeaderChanged;

    /// <summary>The request timeout etcd uses: 5 s plus two election timeouts.</summary>
    public TimeSpan RequestTimeout => TimeSpan.FromSeconds(5) + TimeSpan.FromMilliseconds(2.0 * Volatile.Read(ref _electionMs));

    /// <summary>Sets what applies client requests; before this, such requests fail with "not capable".</summary>
    public void SetApplier(IRequestApplier applier) => _applier = applier;

    /// <summary>Sets what makes, sends and installs snapshots; before this, the member makes none and cannot install one.</summary>
    public void SetSnapshots(SnapshotCoordinator snapshots) => _snapshots = snapshots;

    /// <summary>Index of the newest Raft snapshot (made here or received); 0 when none.</summary>
    public ulong SnapshotIndex => _log.Storage.Snapshot().Metadata.Index;

    /// <summary>First index still in the Raft log (after compaction).</summary>
    public ulong LogFirstIndex => _log.Storage.FirstIndex();

    public static int ElectionTicks(int heartbeatMs, int electionMs) => Math.Max(2, electionMs / heartbeatMs);

    public void Start()
    {
        _loop = Task.Run(RunAsync);
        var tick = TimeSpan.FromMilliseconds(_heartbeatMs);
        _ticker.Change(tick, tick);
    }

    // ---- client side (any thread) ----

    /// <summary>Proposes a request through Raft and returns what applying it produced.</summary>
    public async Task<object?> ProposeAsync(InternalRequest request, CancellationToken cancellationToken)
    {
        var id = (ulong)Interlocked.Increment(ref _nextRequestId);
        request.Id = id;
        var waiter = Register(id);
        _metrics.ProposalsPending.Inc();
        try
        {
            Post(new ProposeInput(id, request.ToByteArray()));
            return await WaitAsync(id, waiter, cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException)
        {
            _metrics.ProposalsFailed.Inc();
            throw;
        }
        finally
        {
            _metrics.ProposalsPending.Dec();
        }
    }

    /// <summary>Proposes a membership change and returns when it is applied here.</summary>
    public async Task ProposeConfChangeAsync(ConfChangeType type, Member member, CancellationToken cancellationToken)
    {
        var id = (ulong)Interlocked.Increment(ref _nextRequestId);
        var context = new ConfChangeContext { RequestId = id, Member = member };
        var waiter = Register(id);
        Post(new ConfChangeInput(id, new ConfChange(type, member.Id, context.ToByteArray())));
        await WaitAsync(id, waiter, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until this member has applied everything committed when the call began (ReadIndex, batched).</summary>
    public async Task ReadBarrierAsync(CancellationToken cancellationToken)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(new ReadInput(waiter));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            await waiter.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw EtcdErrors.Timeout;
        }
    }

    /// <summary>Asks the leader (this member) to hand leadership to <paramref name="target"/> and waits until it has.</summary>
    public async Task TransferLeadershipAsync(ulong target, CancellationToken cancellationToken)
    {
        Post(new TransferInput(target));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RequestTimeout);
        while (Leader != target)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(10, _heartbeatMs / 2)), _time, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw EtcdErrors.Timeout;
            }
        }
    }

    /// <summary>Changes heartbeat and election timeout live (tick length and election ticks).</summary>
    public Task SetTimingAsync(int heartbeatMs, int electionMs)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(new TimingInput(heartbeatMs, electionMs, done));
        return done.Task;
    }

    /// <summary>Starts an election now (tests, and a member asked to take over).</summary>
    public void Campaign() => Post(CampaignInput.Instance);

    /// <summary>Progress of every member as the leader sees it (empty on followers); read on the loop.</summary>
    public Task<RaftStatus> StatusAsync()
    {
        var done = new TaskCompletionSource<RaftStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(new StatusInput(done));
        return done.Task;
    }

    private TaskCompletionSource<object?> Register(ulong id)
    {
        var waiter = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waitersLock)
        {
            _waiters[id] = waiter;
        }

        return waiter;
    }

    private async Task<object?> WaitAsync(ulong id, TaskCompletionSource<object?> waiter, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RequestTimeout);
        try
        {
            var result = await waiter.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            return result is RpcException e ? throw e : result;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Leader == 0 ? EtcdErrors.TimeoutDueToLeaderFail : EtcdErrors.Timeout;
        }
        finally
        {
            lock (_waitersLock)
            {
                _waiters.Remove(id);
            }
        }
    }

    private void Complete(ulong id, object? result)
    {
        TaskCompletionSource<object?>? waiter;
        lock (_waitersLock)
        {
            _waiters.Remove(id, out waiter);
        }

        waiter?.TrySetResult(result);
    }

    private void Post(object input)
    {
        if (_stopped.Task.IsCompleted || !_inputs.Writer.TryWrite(input))
        {
            throw EtcdErrors.Stopped;
        }
    }

    // ---- peer side ----

    public void Deliver(Message message) => _inputs.Writer.TryWrite(message);

    public string? SnapshotDirectory => _snapshots?.Directory;

    public Wire.MembersResponse Members()
    {
        var response = new Wire.MembersResponse { ClusterId = ClusterId };
        response.Members.AddRange(Membership.List());
        return response;
    }

    public void ReportUnreachable(ulong peer) => _inputs.Writer.TryWrite(new UnreachableInput(peer));

    public void ReportSnapshot(ulong peer, SnapshotStatus status) => _inputs.Writer.TryWrite(new SnapshotStatusInput(peer, status));

    // ---- the loop (only here is _node touched) ----

    private async Task RunAsync()
    {
        var ct = _stopping.Token;
        var reader = _inputs.Reader;
        try
        {
            PublishState();
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (reader.TryRead(out var input))
                {
                    Handle(input);
                }

                ProposeWaiting();
                StartReadRound();
                while (_node.HasReady)
                {
                    await HandleReadyAsync(_node.GetReady(), ct).ConfigureAwait(false);
                }

                PublishState();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            LogLoopFailed(_logger, e);
            _stopped.TrySetException(e);
        }
        finally
        {
            _inputs.Writer.TryComplete();
            FailAll(EtcdErrors.Stopped);
            _stopped.TrySetResult();
        }
    }

    private void Handle(object input)
    {
        switch (input)
        {
            case Message m:
                _node.Step(m);
                break;
            case TickInput:
                _ticks++;
                _node.Tick();
                RetryStaleReadRound();
                ForgetAbandonedWaiting();
                break;
            case ProposalInput proposal:
                Propose(proposal);
                break;
            case ReadInput r:
                _readsWaitingForRound.Add(r.Waiter);
                break;
            case TransferInput t:
                _node.TransferLeadership(t.Target);
                break;
            case UnreachableInput u:
                _node.ReportUnreachable(u.Peer);
                break;
            case SnapshotStatusInput s:
                _node.ReportSnapshot(s.Peer, s.Status);
                break;
            case TimingInput timing:
                try
                {
                    _node.SetTiming(1, ElectionTicks(timing.HeartbeatMs, timing.ElectionMs));
                    Volatile.Write(ref _heartbeatMs, timing.HeartbeatMs);
                    Volatile.Write(ref _electionMs, timing.ElectionMs);
                    var tick = TimeSpan.FromMilliseconds(timing.HeartbeatMs);
                    _ticker.Change(tick, tick);
                    timing.Done.TrySetResult();
                }
                catch (ArgumentException e)
                {
                    timing.Done.TrySetException(e);
                }

                break;
            case CampaignInput:
                _node.Campaign();
                break;
            case StatusInput s:
                s.Done.TrySetResult(_node.Status);
                break;
            default:
                throw new InvalidOperationException($"unknown loop input {input.GetType().Name}");
        }
    }

    /// <summary>
    /// Proposes a client request or membership change. Without a known leader it waits (see <see cref="ProposeWaiting"/>)
    /// instead of failing at once, as etcd's proposals wait for a leader within the request timeout; so does a membership
    /// change while the leader still has one to apply (a new leader's own term start counts: it may hold the bootstrap or
    /// an earlier change), which etcd drops silently and lets time out.
    /// </summary>
    private void Propose(ProposalInput input)
    {
        try
        {
            input.ProposeTo(_node);
        }
        catch (ProposalDroppedException e) when (e.Reason is ProposalDropReason.NoLeader or ProposalDropReason.ConfChangePending)
        {
            _waitingToPropose.Add(input);
        }
        catch (ProposalDroppedException e)
        {
            Complete(input.Id, Dropped(e));
        }
    }

    /// <summary>
    /// Once a leader is known, proposes again what waited (nothing of it was appended): for a leader, a membership change
    /// goes in once the pending one is applied. Requests whose client gave up meanwhile (request timeout: "request timed
    /// out, possibly due to previous leader failure") are not proposed any more.
    /// </summary>
    private void ProposeWaiting()
    {
        if (_waitingToPropose.Count == 0 || _node.Leader == 0)
        {
            return;
        }

        ForgetAbandonedWaiting();
        var waiting = _waitingToPropose.ToList();
        _waitingToPropose.Clear();
        foreach (var input in waiting)
        {
            Propose(input);
        }
    }

    /// <summary>Drops what waited to be proposed and whose client gave up (keeps the list bounded by the request timeout).</summary>
    private void ForgetAbandonedWaiting()
    {
        if (_waitingToPropose.Count == 0)
        {
            return;
        }

        lock (_waitersLock)
        {
            _waitingToPropose.RemoveAll(input => !_waiters.ContainsKey(input.Id));
        }
    }

    private static RpcException Dropped(ProposalDroppedException e) => e.Reason switch
    {
        ProposalDropReason.NoLeader => EtcdErrors.NoLeader,
        ProposalDropReason.LeadershipTransferInProgress => EtcdErrors.LeaderChanged,
        ProposalDropReason.UncommittedSizeLimit => EtcdErrors.TooManyRequests,
        ProposalDropReason.NotAMember => EtcdErrors.Stopped,
        _ => new RpcException(new Status(StatusCode.FailedPrecondition, "etcdserver: " + e.Message)),
    };

    private async Task HandleReadyAsync(Ready rd, CancellationToken ct)
    {
        if (rd.SoftState is { } soft)
        {
            OnSoftState(soft);
        }

        SendMessages(rd.Messages);
        FailDroppedProposals(rd.DroppedProposals);
        if (rd.Snapshot is { } snapshot)
        {
            await _log.ApplySnapshotAsync(snapshot, ct).ConfigureAwait(false);
        }

        if (rd.Entries.Count > 0 || rd.HardState is not null)
        {
            await _log.SaveAsync(rd.Entries, rd.HardState, ct).ConfigureAwait(false);
        }

        SendMessages(rd.MessagesAfterPersist);
        if (rd.Snapshot is { } s)
        {
            RestoreSnapshot(s);
        }

        if (rd.CommittedEntries.Count > 0)
        {
            Apply(rd.CommittedEntries);
        }

        foreach (var rs in rd.ReadStates)
        {
            if (rs.Context.Length == 8 && BinaryPrimitives.ReadUInt64BigEndian(rs.Context.Span) == _readRoundContext && _readRound is { } round)
            {
                _readsWaitingForApply.Add((rs.Index, round));
                _readRound = null;
            }
        }

        ServeReads();
        _node.Advance(rd);
        if (rd.HardState is { } hs)
        {
            Volatile.Write(ref _term, hs.Term);
            Volatile.Write(ref _commit, hs.Commit);
            _metrics.ProposalsCommitted.Set(hs.Commit);
        }

        var applied = Volatile.Read(ref _applied);
        if (_snapshots is { } snapshots && snapshots.IsDue(applied))
        {
            await snapshots.CreateAsync(applied, _node.ConfState, Membership.ToState(), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Fails the waiters of proposals this member forwarded and the receiver dropped: nothing was appended, so they never
    /// commit; the client hears it now (as from a leader that refuses proposals while it hands over) instead of timing out.
    /// </summary>
    private void FailDroppedProposals(IReadOnlyList<DroppedProposal> dropped)
    {
        foreach (var d in dropped)
        {
            var error = ForwardedDropped(d.Reason);
            foreach (var entry in d.Entries)
            {
                if (RequestIdOf(entry) is { } id)
                {
                    Complete(id, error);
                }
            }
        }
    }

    /// <summary>The waiter id a proposed entry carries (a client request's id, or a membership change's context), if any.</summary>
    private static ulong? RequestIdOf(Entry entry)
    {
        try
        {
            switch (entry.Type)
            {
                case EntryType.Normal when entry.Data.Length > 0:
                    return InternalRequest.Parser.ParseFrom(entry.Data.Span).Id;
                case EntryType.ConfChange:
                    var change = ConfChange.Decode(entry.Data);
                    return change.Context.Length > 0 ? ConfChangeContext.Parser.ParseFrom(change.Context.Span).RequestId : null;
                default:
                    return null;
            }
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// What a client hears when the member its proposal was forwarded to dropped it. The leader this member knew is handing
    /// over, was removed, or is no leader any more: etcd's "leader changed" (Unavailable; clients retry).
    /// </summary>
    private static RpcException ForwardedDropped(ProposalDropReason reason) => reason switch
    {
        ProposalDropReason.LeadershipTransferInProgress or ProposalDropReason.NoLeader or ProposalDropReason.NotAMember => EtcdErrors.LeaderChanged,
        ProposalDropReason.UncommittedSizeLimit => EtcdErrors.TooManyRequests,
        _ => new RpcException(new Status(StatusCode.FailedPrecondition, $"etcdserver: raft proposal dropped ({reason})")),
    };

    /// <summary>Sends a Ready's messages; a snapshot goes with a copy of the store as applied now, on a call of its own.</summary>
    private void SendMessages(IReadOnlyList<Message> messages)
    {
        if (_snapshots is not { } snapshots || !messages.Any(m => m.Type == MessageType.MsgSnap))
        {
            _transport.Send(messages);
            return;
        }

        _transport.Send([.. messages.Where(m => m.Type != MessageType.MsgSnap)]);
        foreach (var m in messages.Where(m => m.Type == MessageType.MsgSnap))
        {
            try
            {
                var (message, image) = snapshots.PrepareOutgoing(m, _node.ConfState, Membership.ToState());
                _transport.SendSnapshot(message, image);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or LightningDB.LightningException)
            {
                LogSnapshotCopyFailed(_logger, m.To, e);
                ReportSnapshot(m.To, SnapshotStatus.Failure);
            }
        }
    }

    private void OnSoftState(SoftState soft)
    {
        var previous = Volatile.Read(ref _leader);
        Volatile.Write(ref _leader, soft.Leader);
        _metrics.HasLeader.Set(soft.Leader == 0 ? 0 : 1);
        _metrics.IsLeader.Set(soft.Role == StateRole.Leader ? 1 : 0);
        if (soft.Leader != previous)
        {
            if (soft.Leader != 0)
            {
                _metrics.LeaderChanges.Inc();
            }

            LogLeader(_logger, MemberId, soft.Leader, _node.Term);
            LeaderChanged?.Invoke(soft.Leader);
        }
    }

    private void Apply(IReadOnlyList<Entry> entries)
    {
        var started = _time.GetTimestamp();
        var batch = new List<CommittedRequest>(entries.Count);
        foreach (var entry in entries)
        {
            switch (entry.Type)
            {
                case EntryType.Normal when entry.Data.Length > 0:
                    batch.Add(new CommittedRequest(entry.Index, entry.Term, ApplyMembershipOrPass(entry)));
                    break;
                case EntryType.ConfChange:
                    ApplyConfChange(entry);
                    batch.Add(new CommittedRequest(entry.Index, entry.Term, null));
                    break;
                default:
                    batch.Add(new CommittedRequest(entry.Index, entry.Term, null));
                    break;
            }
        }

        var results = _applier?.Apply(batch);
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch[i].Request is { } request)
            {
                Complete(request.Id, results is null ? EtcdErrors.NotCapable : results[i]);
            }
        }

        Volatile.Write(ref _applied, entries[^1].Index);
        _metrics.ProposalsApplied.Set(entries[^1].Index);
        if (_time.GetElapsedTime(started) > TimeSpan.FromMilliseconds(100))
        {
            _metrics.SlowApply.Inc();
        }
    }

    /// <summary>Applies a membership request here (completing its waiter) and returns null; returns a client request for the state machine.</summary>
    private InternalRequest? ApplyMembershipOrPass(Entry entry)
    {
        InternalRequest request;
        try
        {
            request = InternalRequest.Parser.ParseFrom(entry.Data.Span);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"committed entry {entry.Index} is not a raftkv request: {e.Message}", e);
        }

        switch (request.RequestCase)
        {
            case InternalRequest.RequestOneofCase.MemberAttributes:
                var attributes = request.MemberAttributes;
                Membership.Update(attributes.Id, m =>
                {
                    m.Name = attributes.Name;
                    m.ClientUrls.Clear();
                    m.ClientUrls.AddRange(attributes.ClientUrls);
                });
                SaveMembership();
                Complete(request.Id, null);
                return null;
            case InternalRequest.RequestOneofCase.MemberUpdate:
                var update = request.MemberUpdate;
                Membership.Update(update.Id, m =>
                {
                    m.PeerUrls.Clear();
                    m.PeerUrls.AddRange(update.PeerUrls);
                });
                _transport.AddOrUpdatePeer(update.Id, [.. update.PeerUrls.Select(u => new Uri(u))]);
                SaveMembership();
                Complete(request.Id, null);
                return null;
            default:
                return request;
        }
    }

    private void ApplyConfChange(Entry entry)
    {
        var change = ConfChange.Decode(entry.Data);
        ConfChangeContext? context = null;
        if (change.Context.Length > 0)
        {
            context = ConfChangeContext.Parser.ParseFrom(change.Context.Span);
        }

        ConfState confState;
        try
        {
            confState = _node.ApplyConfChange(change);
        }
        catch (InvalidOperationException e)
        {
            if (context is not null)
            {
                Complete(context.RequestId, new RpcException(new Status(StatusCode.FailedPrecondition, "etcdserver: " + e.Message)));
            }

            return;
        }

        if (entry.Index > Membership.AppliedIndex)
        {
            switch (change.Type)
            {
                case ConfChangeType.AddNode or ConfChangeType.AddLearnerNode:
                    var member = context?.Member ?? _initialMembers.GetValueOrDefault(change.NodeId)
                        ?? Membership.Get(change.NodeId) ?? new Member { Id = change.NodeId };
                    member = member.Clone();
                    member.IsLearner = change.Type == ConfChangeType.AddLearnerNode;
                    Membership.Upsert(member, entry.Index);
                    _transport.AddOrUpdatePeer(member.Id, [.. member.PeerUrls.Select(u => new Uri(u))]);
                    break;
                case ConfChangeType.RemoveNode:
                    Membership.Remove(change.NodeId, entry.Index);
                    _ = _transport.RemovePeerAsync(change.NodeId);
                    break;
            }

            SaveMembership();
        }

        _isLearner = confState.Learners.Contains(MemberId);
        if (context is not null)
        {
            Complete(context.RequestId, null);
        }

        if (change.Type == ConfChangeType.RemoveNode && change.NodeId == MemberId)
        {
            LogRemoved(_logger, MemberId);
            _stopping.Cancel();
        }
    }

    private void RestoreSnapshot(Snapshot snapshot)
    {
        _snapshots?.InstallReceived(snapshot.Metadata);
        _isLearner = snapshot.Metadata.ConfState.Learners.Contains(MemberId);
        if (snapshot.Data.Length > 0 && StateSnapshot.Parser.ParseFrom(snapshot.Data.Span).Membership is { } state)
        {
            foreach (var m in state.Members)
            {
                Membership.Upsert(m, state.AppliedIndex);
                _transport.AddOrUpdatePeer(m.Id, [.. m.PeerUrls.Select(u => new Uri(u))]);
            }

            foreach (var id in state.Removed.Where(id => !Membership.IsRemoved(id)))
            {
                Membership.Remove(id, state.AppliedIndex);
                _ = _transport.RemovePeerAsync(id);
            }

            SaveMembership();
        }

        Volatile.Write(ref _applied, snapshot.Metadata.Index);
    }

    private void SaveMembership()
    {
        if (_settings.MemberDir is { } dir)
        {
            Membership.Save(dir);
        }
    }

    private void StartReadRound()
    {
        if (_readRound is not null || _readsWaitingForRound.Count == 0 || _node.Leader == 0)
        {
            // Without a known leader the reads wait for one (asked again on the next tick or input), within their request
            // timeout, as etcd's linearizable reads do.
            return;
        }

        var context = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(context, ++_readRoundContext);
        try
        {
            _node.ReadIndex(context);
        }
        catch (ProposalDroppedException)
        {
            return; // as above
        }

        _readRound = [.. _readsWaitingForRound];
        _readRoundStartedTick = _ticks;
        _readsWaitingForRound.Clear();
    }

    /// <summary>A read round whose answer was lost (leader change, dropped message) is started again after an election timeout.</summary>
    private void RetryStaleReadRound()
    {
        if (_readRound is { } round && _ticks - _readRoundStartedTick > ElectionTicks(_heartbeatMs, _electionMs))
        {
            _readRound = null;
            _readsWaitingForRound.InsertRange(0, round);
        }
    }

    private void ServeReads()
    {
        var applied = Volatile.Read(ref _applied);
        for (var i = _readsWaitingForApply.Count - 1; i >= 0; i--)
        {
            if (_readsWaitingForApply[i].Index <= applied)
            {
                foreach (var w in _readsWaitingForApply[i].Waiters)
                {
                    w.TrySetResult();
                }

                _readsWaitingForApply.RemoveAt(i);
            }
        }
    }

    private void PublishState()
    {
        Volatile.Write(ref _lastIndex, _node.LastIndex);
        Volatile.Write(ref _term, _node.Term);
        Volatile.Write(ref _commit, _node.Commit);
    }

    private void FailAll(RpcException error)
    {
        List<TaskCompletionSource<object?>> waiters;
        lock (_waitersLock)
        {
            waiters = [.. _waiters.Values];
            _waiters.Clear();
        }

        foreach (var w in waiters)
        {
            w.TrySetResult(error);
        }

        foreach (var w in _readsWaitingForRound.Concat(_readRound ?? []).Concat(_readsWaitingForApply.SelectMany(r => r.Waiters)))
        {
            w.TrySetException(error);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _ticker.DisposeAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Debug.WriteLine(e);
        }

        await _transport.DisposeAsync().ConfigureAwait(false);
        _log.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "member {Member:x} sees leader {Leader:x} at term {Term}")]
    private static partial void LogLeader(ILogger logger, ulong member, ulong leader, ulong term);

    [LoggerMessage(Level = LogLevel.Warning, Message = "member {Member:x} was removed from the cluster; it stops taking part")]
    private static partial void LogRemoved(ILogger logger, ulong member);

    [LoggerMessage(Level = LogLevel.Warning, Message = "could not copy the store for a snapshot to {Peer:x}; Raft retries later")]
    private static partial void LogSnapshotCopyFailed(ILogger logger, ulong peer, Exception error);

    [LoggerMessage(Level = LogLevel.Critical, Message = "the Raft loop failed; the member stops")]
    private static partial void LogLoopFailed(ILogger logger, Exception error);

    private sealed record TickInput
    {
        public static TickInput Instance { get; } = new();
    }

    private sealed record CampaignInput
    {
        public static CampaignInput Instance { get; } = new();
    }

    /// <summary>Something to propose to Raft; <paramref name="Id"/> is the id its waiter is registered under.</summary>
    private abstract record ProposalInput(ulong Id)
    {
        /// <exception cref="ProposalDroppedException">The node refused it (no leader, a transfer, limits).</exception>
        public abstract void ProposeTo(RaftNode node);
    }

    private sealed record ProposeInput(ulong Id, byte[] Data) : ProposalInput(Id)
    {
        public override void ProposeTo(RaftNode node) => node.Propose(Data);
    }

    private sealed record ConfChangeInput(ulong Id, ConfChange Change) : ProposalInput(Id)
    {
        public override void ProposeTo(RaftNode node) => node.ProposeConfChange(Change);
    }

    private sealed record ReadInput(TaskCompletionSource Waiter);

    private sealed record TransferInput(ulong Target);

    private sealed record UnreachableInput(ulong Peer);

    private sealed record SnapshotStatusInput(ulong Peer, SnapshotStatus Status);

    private sealed record TimingInput(int HeartbeatMs, int ElectionMs, TaskCompletionSource Done);

    private sealed record StatusInput(TaskCompletionSource<RaftStatus> Done);
}
