using System.Threading.Channels;
using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Server.Kv;
using EtcdKv = RaftKv.Protocol.Mvcc;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Api;

/// <summary>
/// Tells watch streams that the store moved on. Raised from the apply path, it only sets a flag per stream, so a slow
/// watcher never holds up a write; each stream then reads the new events from the store at its own pace.
/// </summary>
internal sealed class WatchHub
{
    private readonly Lock _lock = new();
    private readonly HashSet<Action> _listeners = [];

    public void Notify()
    {
        Action[] listeners;
        lock (_lock)
        {
            listeners = [.. _listeners];
        }

        foreach (var l in listeners)
        {
            l();
        }
    }

    public IDisposable Subscribe(Action listener)
    {
        lock (_lock)
        {
            _listeners.Add(listener);
        }

        return new Subscription(this, listener);
    }

    private sealed class Subscription(WatchHub hub, Action listener) : IDisposable
    {
        public void Dispose()
        {
            lock (hub._lock)
            {
                hub._listeners.Remove(listener);
            }
        }
    }
}

/// <summary>
/// etcd's Watch service: many watchers per stream, history from a start revision (read from the store), prev_kv,
/// NOPUT/NODELETE filters, client-chosen watch ids, progress requests and progress notifications, and cancellation with
/// compact_revision when the start revision was compacted away.
/// </summary>
internal sealed class WatchService : Watch.WatchBase
{
    /// <summary>etcd's default interval of progress notifications to idle watchers that asked for them.</summary>
    public static readonly TimeSpan ProgressNotifyInterval = TimeSpan.FromMinutes(10);

    /// <summary>Events read from the store per round and stream (bounds memory per slow watcher).</summary>
    private const int EventsPerRound = 1000;

    private readonly KvStateMachine _kv;
    private readonly WatchHub _hub;
    private readonly Headers _headers;
    private readonly TimeProvider _time;
    private readonly Auth.AuthGate _gate;

    public WatchService(KvStateMachine kv, WatchHub hub, Headers headers, TimeProvider time, Auth.AuthGate gate)
    {
        _kv = kv;
        _gate = gate;
        _hub = hub;
        _headers = headers;
        _time = time;
    }

    public override async Task Watch(IAsyncStreamReader<WatchRequest> requestStream, IServerStreamWriter<WatchResponse> responseStream, ServerCallContext context)
    {
        using var session = new Session(this, context.CancellationToken);
        using var subscription = _hub.Subscribe(session.Wake);
        var writer = session.WriteAllAsync(responseStream);
        var pump = session.PumpAsync();
        try
        {
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (request.RequestUnionCase == WatchRequest.RequestUnionOneofCase.CreateRequest
                    && await RefusalAsync(request.CreateRequest, context).ConfigureAwait(false) is { } reason)
                {
                    session.Refuse(reason);
                    continue;
                }

                session.Handle(request);
            }
        }
        finally
        {
            session.Stop();
            try
            {
                await Task.WhenAll(pump, writer).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>etcd's isWatchPermitted: READ on the watched range; the reason a refused watch is canceled with, or null.</summary>
    private async Task<string?> RefusalAsync(WatchCreateRequest create, ServerCallContext context)
    {
        Auth.Caller? caller;
        try
        {
            caller = await _gate.IdentifyAsync(context).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            return e.Status.Detail; // etcdserver: invalid auth token
        }

        return _gate.State.CheckOp(caller?.User ?? "", caller?.Revision ?? 0, create.Key.Span, create.RangeEnd.Span, write: false) switch
        {
            null => null,
            S.StoreErrorCode.UserEmpty => EtcdErrors.UserEmpty.Status.Detail,
            S.StoreErrorCode.AuthOldRevision => EtcdErrors.AuthOldRevision.Status.Detail,
            _ => EtcdErrors.PermissionDenied.Status.Detail,
        };
    }

    private sealed class Watcher
    {
        public required long Id { get; init; }

        public required byte[] Key { get; init; }

        public required byte[] RangeEnd { get; init; }

        public required bool PrevKv { get; init; }

        public required bool NoPut { get; init; }

        public required bool NoDelete { get; init; }

        public required bool ProgressNotify { get; init; }

        /// <summary>The next revision this watcher has not seen yet.</summary>
        public long Next { get; set; }

        public long LastSentTimestamp { get; set; }

        public bool Matches(byte[] key)
        {
            if (RangeEnd.Length == 0)
            {
                return key.AsSpan().SequenceEqual(Key);
            }

            if (key.AsSpan().SequenceCompareTo(Key) < 0)
            {
                return false;
            }

            return RangeEnd is [0] || key.AsSpan().SequenceCompareTo(RangeEnd) < 0;
        }
    }

    private sealed class Session : IDisposable
    {
        private readonly WatchService _service;
        private readonly CancellationTokenSource _stop;
        private readonly Channel<WatchResponse> _out = Channel.CreateUnbounded<WatchResponse>(new UnboundedChannelOptions { SingleReader = true });
        private readonly SemaphoreSlim _wake = new(0);
        private readonly Lock _lock = new();
        private readonly Dictionary<long, Watcher> _watchers = [];
        private long _nextId;
        private bool _progressRequested;

        public Session(WatchService service, CancellationToken cancellationToken)
        {
            _service = service;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        }

        public void Wake()
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }

        public void Stop()
        {
            _stop.Cancel();
            _out.Writer.TryComplete();
        }

        public void Dispose()
        {
            _wake.Dispose();
            _stop.Dispose();
        }

        public void Handle(WatchRequest request)
        {
            switch (request.RequestUnionCase)
            {
                case WatchRequest.RequestUnionOneofCase.CreateRequest:
                    Create(request.CreateRequest);
                    break;
                case WatchRequest.RequestUnionOneofCase.CancelRequest:
                    bool removed;
                    lock (_lock)
                    {
                        removed = _watchers.Remove(request.CancelRequest.WatchId);
                    }

                    if (removed)
                    {
                        Send(new WatchResponse { Header = _service._headers.Make(), WatchId = request.CancelRequest.WatchId, Canceled = true });
                    }

                    break;
                case WatchRequest.RequestUnionOneofCase.ProgressRequest:
                    lock (_lock)
                    {
                        _progressRequested = true;
                    }

                    Wake();
                    break;
            }
        }

        private void Create(WatchCreateRequest create)
        {
            var store = _service._kv.Store;
            long id;
            lock (_lock)
            {
                id = create.WatchId != 0 ? create.WatchId : _nextId;
                if (create.WatchId == 0)
                {
                    while (_watchers.ContainsKey(id))
                    {
                        id++;
                    }

                    _nextId = id + 1;
                }
                else if (_watchers.ContainsKey(id))
                {
                    // etcd answers a duplicate id with a created-and-canceled response.
                    Send(new WatchResponse { Header = _service._headers.Make(), WatchId = id, Created = true, Canceled = true, CancelReason = "etcdserver: duplicate watch ID provided on the WatchStream" });
                    return;
                }
            }

            var current = store.CurrentRevision;
            var watcher = new Watcher
            {
                Id = id,
                Key = create.Key.ToByteArray(),
                RangeEnd = create.RangeEnd.ToByteArray(),
                PrevKv = create.PrevKv,
                NoPut = create.Filters.Contains(WatchCreateRequest.Types.FilterType.Noput),
                NoDelete = create.Filters.Contains(WatchCreateRequest.Types.FilterType.Nodelete),
                ProgressNotify = create.ProgressNotify,
                Next = create.StartRevision > 0 ? create.StartRevision : current + 1,
                LastSentTimestamp = _service._time.GetTimestamp(),
            };
            Send(new WatchResponse { Header = _service._headers.Make(current), WatchId = id, Created = true });
            lock (_lock)
            {
                _watchers[id] = watcher;
            }

            Wake();
        }

        private void Send(WatchResponse response) => _out.Writer.TryWrite(response);

        /// <summary>A watch refused by auth: created and canceled at once, with id -1 (clientv3.InvalidWatchID), as etcd answers.</summary>
        public void Refuse(string reason) =>
            Send(new WatchResponse { Header = _service._headers.Make(), WatchId = -1, Created = true, Canceled = true, CancelReason = reason });

        public async Task WriteAllAsync(IServerStreamWriter<WatchResponse> stream)
        {
            try
            {
                await foreach (var response in _out.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                {
                    await stream.WriteAsync(response, _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or IOException)
            {
                // client gone
            }
        }

        /// <summary>Sends each watcher what the store holds beyond what it has seen; runs whenever the store moves or a request arrives.</summary>
        public async Task PumpAsync()
        {
            var ct = _stop.Token;
            var time = _service._time;
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await _wake.WaitAsync(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Watcher[] watchers;
                bool progress;
                lock (_lock)
                {
                    watchers = [.. _watchers.Values];
                    progress = _progressRequested;
                    _progressRequested = false;
                }

                var store = _service._kv.Store;
                var allCaughtUp = true;
                foreach (var w in watchers)
                {
                    allCaughtUp &= CatchUp(store, w);
                }

                if (progress && allCaughtUp)
                {
                    // etcd answers a progress request with a header-only response once every watcher is synced.
                    Send(new WatchResponse { Header = _service._headers.Make(store.CurrentRevision), WatchId = -1 });
                }
                else if (progress)
                {
                    lock (_lock)
                    {
                        _progressRequested = true;
                    }

                    Wake();
                }

                var now = time.GetTimestamp();
                foreach (var w in watchers.Where(w => w.ProgressNotify && time.GetElapsedTime(w.LastSentTimestamp, now) >= ProgressNotifyInterval))
                {
                    w.LastSentTimestamp = now;
                    Send(new WatchResponse { Header = _service._headers.Make(store.CurrentRevision), WatchId = w.Id });
                }
            }
        }

        /// <summary>Returns true when the watcher has seen everything up to the current revision.</summary>
        private bool CatchUp(S.MvccStore store, Watcher w)
        {
            lock (_lock)
            {
                if (!_watchers.ContainsKey(w.Id))
                {
                    return true;
                }
            }

            var current = store.CurrentRevision;
            if (w.Next > current)
            {
                return true;
            }

            IReadOnlyList<S.StoreEvent> events;
            try
            {
                events = store.ReadEvents(w.Next, EventsPerRound);
            }
            catch (S.StoreException e) when (e.Code == S.StoreErrorCode.Compacted)
            {
                lock (_lock)
                {
                    _watchers.Remove(w.Id);
                }

                Send(new WatchResponse
                {
                    Header = _service._headers.Make(current),
                    WatchId = w.Id,
                    Canceled = true,
                    CompactRevision = store.CompactRevision,
                    CancelReason = "mvcc: required revision has been compacted",
                });
                return true;
            }

            var response = new WatchResponse { WatchId = w.Id };
            var last = w.Next - 1;
            foreach (var e in events)
            {
                last = Math.Max(last, e.Kv.ModRevision);
                if (!w.Matches(e.Kv.Key) || (e.IsDelete ? w.NoDelete : w.NoPut))
                {
                    continue;
                }

                var ev = new EtcdKv.Event { Type = e.IsDelete ? EtcdKv.Event.Types.EventType.Delete : EtcdKv.Event.Types.EventType.Put, Kv = StoreMapping.ToWire(e.Kv) };
                if (w.PrevKv && e.Kv.ModRevision > 1)
                {
                    ev.PrevKv = PreviousValue(store, e.Kv);
                }

                response.Events.Add(ev);
            }

            var done = events.Count < EventsPerRound;
            if (done)
            {
                last = Math.Max(last, current);
            }

            w.Next = last + 1;
            if (response.Events.Count > 0)
            {
                response.Header = _service._headers.Make(done ? current : last);
                w.LastSentTimestamp = _service._time.GetTimestamp();
                Send(response);
            }

            if (!done)
            {
                Wake();
            }

            return done;
        }

        private static EtcdKv.KeyValue? PreviousValue(S.MvccStore store, S.KeyValue kv)
        {
            try
            {
                var before = store.Range(new S.RangeRequest { Key = kv.Key, Revision = kv.ModRevision - 1 });
                return before.Kvs.Count > 0 ? StoreMapping.ToWire(before.Kvs[0]) : null;
            }
            catch (S.StoreException)
            {
                return null; // the previous revision was compacted away
            }
        }
    }
}
