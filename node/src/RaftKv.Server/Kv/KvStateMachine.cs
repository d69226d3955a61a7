using Google.Protobuf;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Node;
using RaftKv.Server.Observability;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Kv;

/// <summary>
/// The key-value state machine: committed client requests applied to the MVCC store in one store transaction per batch,
/// together with the applied index (so a restart replays the WAL from exactly there). Changes go to <see cref="Applied"/>
/// for watchers after the commit.
/// </summary>
internal sealed class KvStateMachine : IRequestApplier, ISnapshotStore, IDisposable
{
    private readonly NodeMetrics _metrics;
    private readonly TimeProvider _time;

    public KvStateMachine(MvccStore store, NodeMetrics metrics, TimeProvider time)
    {
        Store = store;
        _metrics = metrics;
        _time = time;
    }

    public MvccStore Store { get; }

    /// <summary>Lease counters (etcd_debugging_lease_*), counted as grants and revokes are applied.</summary>
    public Leases.LeaseMetrics? LeaseMetrics { get; set; }

    /// <summary>Raised on the apply path with the events of each committed batch, in revision order.</summary>
    public event Action<IReadOnlyList<StoreEvent>>? Applied;

    public IReadOnlyList<object?> Apply(IReadOnlyList<CommittedRequest> batch)
    {
        var commands = new List<ApplyCommand>(batch.Count);
        foreach (var item in batch)
        {
            commands.Add(new ApplyCommand(item.Index, item.Term, item.Request is { } r ? ToStoreRequest(r) : null));
        }

        var started = _time.GetTimestamp();
        var results = Store.Apply(commands);
        _metrics.BackendCommit.Observe(_time.GetElapsedTime(started).TotalSeconds);
        var answers = new object?[results.Count];
        List<StoreEvent>? events = null;
        for (var i = 0; i < results.Count; i++)
        {
            var r = results[i];
            answers[i] = r.Skipped ? null : r.Error is { } error ? StoreMapping.ToRpc(error) : r.Response;
            LeaseMetrics?.Applied(r.Response);
            if (r.Events.Count > 0)
            {
                (events ??= []).AddRange(r.Events);
            }
        }

        if (events is not null)
        {
            Applied?.Invoke(events);
        }

        return answers;
    }

    private static object? ToStoreRequest(InternalRequest request) => request.RequestCase switch
    {
        InternalRequest.RequestOneofCase.Put => StoreMapping.ToStore(request.Put),
        InternalRequest.RequestOneofCase.DeleteRange => StoreMapping.ToStore(request.DeleteRange),
        InternalRequest.RequestOneofCase.Txn => StoreMapping.ToStore(request.Txn),
        InternalRequest.RequestOneofCase.Compaction => new CompactionRequest(request.Compaction.Revision, request.Compaction.Physical),
        InternalRequest.RequestOneofCase.LeaseGrant => new LeaseGrantRequest(request.LeaseGrant.ID, request.LeaseGrant.TTL),
        InternalRequest.RequestOneofCase.LeaseRevoke => new LeaseRevokeRequest(request.LeaseRevoke.ID),
        InternalRequest.RequestOneofCase.Alarm when request.Alarm.Alarm == RaftKv.Protocol.Etcd.AlarmType.Nospace =>
            request.Alarm.Action == RaftKv.Protocol.Etcd.AlarmRequest.Types.AlarmAction.Deactivate ? AlarmAction.Deactivate : AlarmAction.Activate,
        _ => null,
    };

    public void Flush() => Store.Flush();

    public (ulong Index, ulong Term) CopyTo(string path) => Store.CopyTo(path);

    /// <summary>Swaps in a store received in a snapshot; watchers are woken to read on from their revision, <see cref="Restored"/> is raised.</summary>
    public void ReplaceWith(string path)
    {
        Store.ReplaceWith(path);
        Restored?.Invoke();
        Applied?.Invoke([]);
    }

    /// <summary>Raised on the apply path after the whole store was replaced by a snapshot (state kept outside the store must reload).</summary>
    public event Action? Restored;

    /// <summary>Size of a request as etcd measures it against --max-request-bytes.</summary>
    public static int Size(IMessage request) => request.CalculateSize();

    public void Dispose() => Store.Dispose();
}
