using LightningDB;

namespace RaftKv.Storage.Mvcc;

/// <summary>The auth operations that go through the log (etcd's InternalRaftRequest auth members).</summary>
public enum AuthOp
{
    Enable,
    Disable,
    UserAdd,
    UserDelete,
    UserChangePassword,
    UserGrantRole,
    UserRevokeRole,
    RoleAdd,
    RoleDelete,
    RoleGrantPermission,
    RoleRevokePermission,
    UserGet,
    RoleGet,
    UserList,
    RoleList,

    /// <summary>Issues a simple token: <see cref="AuthRequest.Other"/> is the token's random part; the password was checked before proposing.</summary>
    Authenticate,
}

/// <summary>
/// One auth operation as applied. Name: the user (or role for role operations); Other: the role granted or revoked (or the
/// token prefix); PasswordHash: bcrypt hash made by the member that received the request (never the password).
/// </summary>
public sealed record AuthRequest(AuthOp Op, string Name = "", string Other = "", string? PasswordHash = null, bool NoPassword = false,
    KeyGrant? Permission = null)
{
    public bool ChangesState => Op is not (AuthOp.UserGet or AuthOp.RoleGet or AuthOp.UserList or AuthOp.RoleList or AuthOp.Authenticate);

    /// <summary>etcd's needAdminPermission.</summary>
    public bool NeedsAdmin => Op is not (AuthOp.UserGet or AuthOp.RoleGet or AuthOp.Authenticate);
}

/// <summary>
/// What an auth operation answered: Names are roles (user get), users (user list) or roles (role list); Permissions those of
/// a role (role get). Revision is the key-value store's.
/// </summary>
public sealed record AuthResponse(long Revision, AuthRequest Request, IReadOnlyList<string> Names, IReadOnlyList<KeyGrant> Permissions);

/// <summary>
/// A client request with who sent it (etcd's RequestHeader username and auth_revision): with auth enabled the store checks its
/// permissions when it applies it, against the auth state of that moment. Requests the cluster makes itself (lease expiry,
/// the NOSPACE alarm) are not wrapped and are not checked. AuthRevision 0: the client gave no credentials.
/// </summary>
public sealed record AuthorizedRequest(string User, ulong AuthRevision, object? Request);

/// <summary>
/// Auth state: LMDB table "auth" holds the whole <see cref="AuthState"/> as one record, written in the same transaction as the
/// data and the consistent index, so restarts and Raft snapshots (copies of the file) carry users, roles and the enabled flag.
/// </summary>
public sealed partial class MvccStore
{
    private static readonly byte[] AuthStateKey = "state"u8.ToArray();

    private LightningDatabase _authDb = null!;

    // Published after the commit that made it true (readers); the writer works on _authWorking during a batch.
    private volatile AuthState _auth = AuthState.Empty;
    private AuthState _authWorking = AuthState.Empty;

    /// <summary>The committed auth state (users, roles, enabled flag, auth revision).</summary>
    public AuthState Auth => _auth;

    private void RebuildAuth(LightningTransaction tx)
    {
        var (rc, _, v) = tx.Get(_authDb, AuthStateKey);
        var state = rc == MDBResultCode.Success ? AuthState.Decode(v.AsSpan()) : AuthState.Empty;
        _auth = state;
        _authWorking = state;
    }

    private object? ApplyAuthorized(WriteContext ctx, AuthorizedRequest a, ref bool alarm, ref ulong corrupt, ref long compact)
    {
        var auth = _authWorking;
        if (auth.Enabled)
        {
            var denied = a.Request switch
            {
                AuthRequest r => CheckAuthRequest(auth, a, r),
                PutRequest put => auth.CheckOp(a.User, a.AuthRevision, put.Key, [], write: true)
                    ?? CheckLeaseKeys(auth, a, put.Lease)
                    ?? (put.PrevKv ? auth.CheckOp(a.User, a.AuthRevision, put.Key, [], write: false) : null),
                DeleteRangeRequest del => auth.CheckOp(a.User, a.AuthRevision, del.Key, del.RangeEnd, write: true)
                    ?? (del.PrevKv ? auth.CheckOp(a.User, a.AuthRevision, del.Key, del.RangeEnd, write: false) : null),
                TxnRequest txn => CheckTxn(auth, a, txn),
                LeaseRevokeRequest revoke => CheckLeaseKeys(auth, a, revoke.Id),
                _ => null,
            };
            if (denied is { } code)
            {
                throw new StoreException(code);
            }
        }

        return ApplyOne(ctx, a.Request, ref alarm, ref corrupt, ref compact);
    }

    private static StoreErrorCode? CheckAuthRequest(AuthState auth, AuthorizedRequest a, AuthRequest r)
    {
        if (r.NeedsAdmin)
        {
            return auth.CheckAdmin(a.User);
        }

        return r.Op switch
        {
            // etcd's authApplierV3.UserGet / RoleGet: an admin, or the user asking about itself / a role it has.
            AuthOp.UserGet when r.Name != a.User => auth.CheckAdmin(a.User),
            AuthOp.RoleGet when !(auth.Users.TryGetValue(a.User, out var u) && u.HasRole(r.Name)) => auth.CheckAdmin(a.User),
            _ => null,
        };
    }

    /// <summary>etcd's checkTxnAuth: READ on every compare, each operation's own permission (nested txns too).</summary>
    private static StoreErrorCode? CheckTxn(AuthState auth, AuthorizedRequest a, TxnRequest txn)
    {
        foreach (var c in txn.Compare)
        {
            if (auth.CheckOp(a.User, a.AuthRevision, c.Key, c.RangeEnd, write: false) is { } e)
            {
                return e;
            }
        }

        foreach (var op in txn.Success.Concat(txn.Failure))
        {
            var e = op switch
            {
                { Range: { } r } => auth.CheckOp(a.User, a.AuthRevision, r.Key, r.RangeEnd, write: false),
                { Put: { } p } => auth.CheckOp(a.User, a.AuthRevision, p.Key, [], write: true),
                { DeleteRange: { } d } => (d.PrevKv ? auth.CheckOp(a.User, a.AuthRevision, d.Key, d.RangeEnd, write: false) : null)
                    ?? auth.CheckOp(a.User, a.AuthRevision, d.Key, d.RangeEnd, write: true),
                { Txn: { } t } => CheckTxn(auth, a, t),
                _ => null,
            };
            if (e is not null)
            {
                return e;
            }
        }

        return null;
    }

    /// <summary>etcd's checkLeasePuts: the user must be allowed to write every key attached to the lease.</summary>
    private StoreErrorCode? CheckLeaseKeys(AuthState auth, AuthorizedRequest a, long lease)
    {
        if (lease == 0 || !_leases.TryGetValue(lease, out var entry))
        {
            return null;
        }

        foreach (var key in entry.Keys)
        {
            if (auth.CheckOp(a.User, a.AuthRevision, key, [], write: true) is { } e)
            {
                return e;
            }
        }

        return null;
    }

    private AuthResponse ApplyAuth(WriteContext ctx, AuthRequest r)
    {
        var auth = _authWorking;
        IReadOnlyList<string> names = [];
        IReadOnlyList<KeyGrant> perms = [];
        var next = auth;
        switch (r.Op)
        {
            case AuthOp.Enable:
                next = auth.Enable();
                break;
            case AuthOp.Disable:
                next = auth.Disable();
                break;
            case AuthOp.UserAdd:
                next = auth.UserAdd(r.Name, r.PasswordHash, r.NoPassword);
                break;
            case AuthOp.UserDelete:
                next = auth.UserDelete(r.Name);
                break;
            case AuthOp.UserChangePassword:
                next = auth.UserChangePassword(r.Name, r.PasswordHash ?? "");
                break;
            case AuthOp.UserGrantRole:
                next = auth.UserGrantRole(r.Name, r.Other);
                break;
            case AuthOp.UserRevokeRole:
                next = auth.UserRevokeRole(r.Name, r.Other);
                break;
            case AuthOp.RoleAdd:
                next = auth.RoleAdd(r.Name);
                break;
            case AuthOp.RoleDelete:
                next = auth.RoleDelete(r.Name);
                break;
            case AuthOp.RoleGrantPermission:
                next = auth.RoleGrantPermission(r.Name, r.Permission ?? new KeyGrant(KeyPermissionKind.Read, [], []));
                break;
            case AuthOp.RoleRevokePermission:
                next = auth.RoleRevokePermission(r.Name, r.Permission?.Key ?? [], r.Permission?.RangeEnd ?? []);
                break;
            case AuthOp.UserGet:
                names = auth.Users.TryGetValue(r.Name, out var user) ? user.Roles : throw new StoreException(StoreErrorCode.UserNotFound);
                break;
            case AuthOp.RoleGet:
                perms = auth.Roles.TryGetValue(r.Name, out var role) ? role.Permissions : throw new StoreException(StoreErrorCode.RoleNotFound);
                break;
            case AuthOp.UserList:
                names = [.. auth.Users.Keys];
                break;
            case AuthOp.RoleList:
                names = [.. auth.Roles.Keys];
                break;
            case AuthOp.Authenticate:
                // etcd's authStore.Authenticate at apply: the token is issued on every member under the same name.
                if (!auth.Enabled)
                {
                    throw new StoreException(StoreErrorCode.AuthNotEnabled);
                }

                if (!auth.Users.TryGetValue(r.Name, out var who) || who.NoPassword)
                {
                    throw new StoreException(StoreErrorCode.AuthFailed);
                }

                break;
            default:
                throw new ArgumentException($"Unknown auth operation {r.Op}.", nameof(r));
        }

        if (!ReferenceEquals(next, auth))
        {
            ctx.Tx.Put(_authDb, AuthStateKey, next.Encode()).ThrowOnError();
            _authWorking = next;
        }

        return new AuthResponse(ctx.ReadRevision, r, names, perms);
    }
}
