using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Node;
using RaftKv.Server.Observability;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Kv;

/// <summary>
/// The key-value state machine: committed client requests applied to the MVCC store in one store transaction per batch,
/// together with the applied index (so a restart replays the WAL from exactly there). Changes go to <see cref="Applied"/>
/// for watchers after the commit.
/// <para>
/// With a store opened with <see cref="MvccOptions.DeferSync"/> (the server's), an apply commits without a disk sync, as etcd's
/// backend does: the store is synced every <see cref="FlushInterval"/> when something changed (etcd's batch interval), before
/// a snapshot lets the WAL go (<see cref="Flush"/>), and when it is closed. Each such sync is what
/// <c>etcd_disk_backend_commit_duration_seconds</c> measures, as etcd's backend commit (with its fsync) is.
/// </para>
/// </summary>
internal sealed partial class KvStateMachine : IRequestApplier, ISnapshotStore, IDisposable
{
    /// <summary>etcd's default backend batch interval.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(100);

    private readonly NodeMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _flushGate = new();
    private ITimer? _flusher;
    private bool _flushFailed;

    public KvStateMachine(MvccStore store, NodeMetrics metrics, TimeProvider time, ILogger? logger = null)
    {
        Store = store;
        _metrics = metrics;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    public MvccStore Store { get; }

    /// <summary>Lease counters (etcd_debugging_lease_*), counted as grants and revokes are applied.</summary>
    public Leases.LeaseMetrics? LeaseMetrics { get; set; }

    /// <summary>Simple auth tokens: issued here when an Authenticate entry is applied, dropped when auth changes make them invalid.</summary>
    public Auth.SimpleTokens? Tokens { get; set; }

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
        if (!Store.DefersSync)
        {
            // Every commit syncs: it is the backend commit.
            _metrics.BackendCommit.Observe(_time.GetElapsedTime(started).TotalSeconds);
        }

        var answers = new object?[results.Count];
        List<StoreEvent>? events = null;
        for (var i = 0; i < results.Count; i++)
        {
            var r = results[i];
            answers[i] = r.Skipped ? null : r.Error is { } error ? StoreMapping.ToRpc(error) : r.Response;
            if (!r.Skipped && r.Response is AuthResponse auth)
            {
                answers[i] = ApplyToTokens(auth, r.Index);
            }

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

    /// <summary>
    /// What an applied auth operation means for the tokens: Authenticate issues <c>prefix.index</c> (the answer becomes the
    /// token); a deleted user or a changed password loses its tokens; auth disabled drops them all (as etcd's token provider).
    /// </summary>
    private object ApplyToTokens(AuthResponse auth, ulong index)
    {
        var request = auth.Request;
        switch (request.Op)
        {
            case AuthOp.Authenticate:
                var token = Auth.SimpleTokens.Token(request.Other, index);
                Tokens?.Assign(token, request.Name);
                return new IssuedToken(token, auth.Revision);
            case AuthOp.UserDelete or AuthOp.UserChangePassword:
                Tokens?.InvalidateUser(request.Name);
                break;
            case AuthOp.Disable:
                Tokens?.Retain(_ => false);
                break;
        }

        return auth;
    }

    private static object? ToStoreRequest(InternalRequest request)
    {
        var inner = ToStoreRequestCore(request);
        return request.Auth is { } who ? new AuthorizedRequest(who.Username, who.AuthRevision, inner) : inner;
    }

    private static object? ToStoreRequestCore(InternalRequest request) => request.RequestCase switch
    {
        InternalRequest.RequestOneofCase.Put => StoreMapping.ToStore(request.Put),
        InternalRequest.RequestOneofCase.DeleteRange => StoreMapping.ToStore(request.DeleteRange),
        InternalRequest.RequestOneofCase.Txn => StoreMapping.ToStore(request.Txn),
        InternalRequest.RequestOneofCase.Compaction => new CompactionRequest(request.Compaction.Revision, request.Compaction.Physical),
        InternalRequest.RequestOneofCase.LeaseGrant => new LeaseGrantRequest(request.LeaseGrant.ID, request.LeaseGrant.TTL),
        InternalRequest.RequestOneofCase.LeaseRevoke => new LeaseRevokeRequest(request.LeaseRevoke.ID),
        InternalRequest.RequestOneofCase.Alarm when request.Alarm.Alarm == RaftKv.Protocol.Etcd.AlarmType.Corrupt =>
            new CorruptAlarmRequest(request.Alarm.Action != RaftKv.Protocol.Etcd.AlarmRequest.Types.AlarmAction.Deactivate, request.Alarm.MemberID),
        InternalRequest.RequestOneofCase.Alarm when request.Alarm.Alarm == RaftKv.Protocol.Etcd.AlarmType.Nospace =>
            request.Alarm.Action == RaftKv.Protocol.Etcd.AlarmRequest.Types.AlarmAction.Deactivate ? AlarmAction.Deactivate : AlarmAction.Activate,
        InternalRequest.RequestOneofCase.AuthEnable => new AuthRequest(AuthOp.Enable),
        InternalRequest.RequestOneofCase.AuthDisable => new AuthRequest(AuthOp.Disable),
        InternalRequest.RequestOneofCase.AuthUserAdd => new AuthRequest(AuthOp.UserAdd, request.AuthUserAdd.Name,
            PasswordHash: request.AuthUserAdd.HashedPassword, NoPassword: request.AuthUserAdd.Options?.NoPassword == true),
        InternalRequest.RequestOneofCase.AuthUserDelete => new AuthRequest(AuthOp.UserDelete, request.AuthUserDelete.Name),
        InternalRequest.RequestOneofCase.AuthUserChangePassword => new AuthRequest(AuthOp.UserChangePassword, request.AuthUserChangePassword.Name,
            PasswordHash: request.AuthUserChangePassword.HashedPassword),
        InternalRequest.RequestOneofCase.AuthUserGrantRole => new AuthRequest(AuthOp.UserGrantRole, request.AuthUserGrantRole.User, request.AuthUserGrantRole.Role),
        InternalRequest.RequestOneofCase.AuthUserRevokeRole => new AuthRequest(AuthOp.UserRevokeRole, request.AuthUserRevokeRole.Name, request.AuthUserRevokeRole.Role),
        InternalRequest.RequestOneofCase.AuthRoleAdd => new AuthRequest(AuthOp.RoleAdd, request.AuthRoleAdd.Name),
        InternalRequest.RequestOneofCase.AuthRoleDelete => new AuthRequest(AuthOp.RoleDelete, request.AuthRoleDelete.Role),
        InternalRequest.RequestOneofCase.AuthRoleGrantPermission => new AuthRequest(AuthOp.RoleGrantPermission, request.AuthRoleGrantPermission.Name,
            Permission: request.AuthRoleGrantPermission.Perm is { } p
                ? new KeyGrant((KeyPermissionKind)(int)p.PermType, p.Key.ToByteArray(), p.RangeEnd.ToByteArray())
                : null),
        InternalRequest.RequestOneofCase.AuthRoleRevokePermission => new AuthRequest(AuthOp.RoleRevokePermission, request.AuthRoleRevokePermission.Role,
            Permission: new KeyGrant(KeyPermissionKind.Read, request.AuthRoleRevokePermission.Key.ToByteArray(), request.AuthRoleRevokePermission.RangeEnd.ToByteArray())),
        InternalRequest.RequestOneofCase.AuthUserGet => new AuthRequest(AuthOp.UserGet, request.AuthUserGet.Name),
        InternalRequest.RequestOneofCase.AuthRoleGet => new AuthRequest(AuthOp.RoleGet, request.AuthRoleGet.Role),
        InternalRequest.RequestOneofCase.AuthUserList => new AuthRequest(AuthOp.UserList),
        InternalRequest.RequestOneofCase.AuthRoleList => new AuthRequest(AuthOp.RoleList),
        InternalRequest.RequestOneofCase.Authenticate => new AuthRequest(AuthOp.Authenticate, request.Authenticate.Name, request.Authenticate.SimpleToken),
        _ => null,
    };

    /// <summary>Syncs the store now (before a snapshot releases WAL entries) and returns the consistent index now on disk.</summary>
    public ulong Flush()
    {
        lock (_flushGate)
        {
            var started = _time.GetTimestamp();
            var durable = Store.Flush();
            _metrics.BackendCommit.Observe(_time.GetElapsedTime(started).TotalSeconds);
            return durable;
        }
    }

    /// <summary>Starts the periodic sync of a store that defers its syncs (no-op otherwise).</summary>
    public void StartFlushing()
    {
        if (Store.DefersSync && _flusher is null)
        {
            _flusher = _time.CreateTimer(_ => FlushIfChanged(), null, FlushInterval, FlushInterval);
        }
    }

    private void FlushIfChanged()
    {
        if (!_flushGate.TryEnter())
        {
            return; // a flush is running; the next tick catches up
        }

        try
        {
            var started = _time.GetTimestamp();
            if (Store.FlushIfChanged())
            {
                _metrics.BackendCommit.Observe(_time.GetElapsedTime(started).TotalSeconds);
                _flushFailed = false;
            }
        }
        catch (ObjectDisposedException)
        {
            // closing: Dispose syncs
        }
        catch (LightningDB.LightningException e)
        {
            // Nothing is lost (the WAL keeps every entry after the store's durable index); a snapshot's flush will fail hard.
            if (!_flushFailed)
            {
                LogFlushFailed(_logger, e);
            }

            _flushFailed = true;
        }
        finally
        {
            _flushGate.Exit();
        }
    }

    public (ulong Index, ulong Term) CopyTo(string path) => Store.CopyTo(path);

    /// <summary>Swaps in a store received in a snapshot; watchers are woken to read on from their revision, <see cref="Restored"/> is raised.</summary>
    public void ReplaceWith(string path)
    {
        Store.ReplaceWith(path);
        var auth = Store.Auth;
        Tokens?.Retain(user => auth.Enabled && auth.Users.ContainsKey(user)); // the snapshot may have disabled auth or deleted users
        Restored?.Invoke();
        Applied?.Invoke([]);
    }

    /// <summary>Raised on the apply path after the whole store was replaced by a snapshot (state kept outside the store must reload).</summary>
    public event Action? Restored;

    /// <summary>The answer to an applied Authenticate: the token every member now knows.</summary>
    public sealed record IssuedToken(string Token, long Revision);

    /// <summary>Size of a request as etcd measures it against --max-request-bytes.</summary>
    public static int Size(IMessage request) => request.CalculateSize();

    public void Dispose()
    {
        _flusher?.Dispose();
        lock (_flushGate)
        {
            Store.Dispose(); // syncs a store that defers its syncs
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "the periodic sync of the store failed; retrying every 100 ms (the WAL keeps what the store has not synced)")]
    private static partial void LogFlushFailed(ILogger logger, Exception error);
}
