using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Api;
using RaftKv.Server.Kv;
using RaftKv.Server.Node;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Auth;

/// <summary>Who a client call comes from (etcd's AuthInfo): the user and the auth revision when it was identified.</summary>
internal sealed record Caller(string User, ulong Revision);

/// <summary>
/// Identifies the caller of a client RPC and checks what the API layer checks in etcd: a simple token in gRPC metadata
/// <c>token</c> (or <c>authorization</c>), else with --client-cert-auth the common name of the client certificate; read
/// permissions for ranges and watches, the root role for maintenance and membership calls. Writes are checked where they
/// are applied (<see cref="S.AuthorizedRequest"/>), so a permission revoked before a write is applied refuses it.
/// </summary>
internal sealed class AuthGate
{
    private readonly RaftMember _member;
    private readonly KvStateMachine _kv;
    private readonly bool _clientCertAuth;

    public AuthGate(RaftMember member, KvStateMachine kv, SimpleTokens tokens, bool clientCertAuth)
    {
        _member = member;
        _kv = kv;
        Tokens = tokens;
        _clientCertAuth = clientCertAuth;
    }

    public SimpleTokens Tokens { get; }

    public S.AuthState State => _kv.Store.Auth;

    /// <summary>etcd's AuthInfoFromCtx (then AuthInfoFromTLS): null when the call carries no credentials.</summary>
    public async ValueTask<Caller?> IdentifyAsync(ServerCallContext context)
    {
        var token = context.RequestHeaders.GetValue("token") ?? context.RequestHeaders.GetValue("authorization");
        if (token is not null)
        {
            if (!SimpleTokens.TryParseIndex(token, out var index))
            {
                throw EtcdErrors.InvalidAuthToken;
            }

            if (index > _member.AppliedIndex)
            {
                // Issued through an entry this member has not applied yet (the token came from another member): wait for it.
                await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
            }

            return Tokens.Use(token) is { } user ? new Caller(user, State.Revision) : throw EtcdErrors.InvalidAuthToken;
        }

        if (_clientCertAuth && context.GetHttpContext().Connection.ClientCertificate is { } certificate)
        {
            var commonName = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
            if (!string.IsNullOrEmpty(commonName))
            {
                return new Caller(commonName, State.Revision);
            }
        }

        return null;
    }

    /// <summary>Identifies the caller and stamps a request to propose with it (checked when applied).</summary>
    public async ValueTask<InternalRequest> StampAsync(InternalRequest request, ServerCallContext context)
    {
        var caller = await IdentifyAsync(context).ConfigureAwait(false);
        request.Auth = new RequestAuth { Username = caller?.User ?? "", AuthRevision = caller?.Revision ?? 0 };
        return request;
    }

    /// <summary>etcd's IsRangePermitted for a read served here; returns the caller for <see cref="EnsureCurrent"/>.</summary>
    public async ValueTask<Caller?> CheckReadAsync(ServerCallContext context, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> rangeEnd)
    {
        var caller = await IdentifyAsync(context).ConfigureAwait(false);
        Throw(State.CheckOp(caller?.User ?? "", caller?.Revision ?? 0, key.Span, rangeEnd.Span, write: false));
        return caller;
    }

    /// <summary>Read checks of a read-only txn: every compare and every range (nested txns too).</summary>
    public async ValueTask<Caller?> CheckReadTxnAsync(ServerCallContext context, RaftKv.Protocol.Etcd.TxnRequest txn)
    {
        var caller = await IdentifyAsync(context).ConfigureAwait(false);
        var state = State;
        if (state.Enabled)
        {
            CheckReadTxn(state, caller, txn);
        }

        return caller;
    }

    private static void CheckReadTxn(S.AuthState state, Caller? caller, RaftKv.Protocol.Etcd.TxnRequest txn)
    {
        foreach (var c in txn.Compare)
        {
            Throw(state.CheckOp(caller?.User ?? "", caller?.Revision ?? 0, c.Key.Span, c.RangeEnd.Span, write: false));
        }

        foreach (var op in txn.Success.Concat(txn.Failure))
        {
            if (op.RequestRange is { } r)
            {
                Throw(state.CheckOp(caller?.User ?? "", caller?.Revision ?? 0, r.Key.Span, r.RangeEnd.Span, write: false));
            }
            else if (op.RequestTxn is { } nested)
            {
                CheckReadTxn(state, caller, nested);
            }
        }
    }

    /// <summary>etcd's doSerialize: a read answered while the auth state changed under it is refused (the client retries).</summary>
    public void EnsureCurrent(Caller? caller)
    {
        if (caller is { Revision: not 0 } && caller.Revision != State.Revision)
        {
            throw EtcdErrors.AuthOldRevision;
        }
    }

    /// <summary>etcd's IsAdminPermitted for membership changes, which do not go through the auth applier.</summary>
    public async Task RequireRootAsync(ServerCallContext context)
    {
        var caller = await IdentifyAsync(context).ConfigureAwait(false);
        Throw(State.CheckAdmin(caller?.User));
    }

    /// <summary>
    /// etcd 3.4's authMaintenanceServer (hash, hashkv, defragment, snapshot): the root role, with the auth package's own
    /// error passed through unmapped, so clients see code Unknown and "auth: ..." texts (etcdctl prints them).
    /// </summary>
    public async Task RequireRootForMaintenanceAsync(ServerCallContext context)
    {
        Caller? caller;
        try
        {
            caller = await IdentifyAsync(context).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated)
        {
            throw Unmapped("auth: invalid auth token");
        }

        switch (State.CheckAdmin(caller?.User))
        {
            case null:
                return;
            case S.StoreErrorCode.UserEmpty:
                throw Unmapped("auth: user name is empty");
            case S.StoreErrorCode.UserNotFound:
                throw Unmapped("auth: user not found");
            default:
                throw Unmapped("auth: permission denied");
        }
    }

    private static RpcException Unmapped(string message) => new(new Status(StatusCode.Unknown, message), message);

    private static void Throw(S.StoreErrorCode? error)
    {
        if (error is { } code)
        {
            throw StoreMapping.ToRpc(new S.StoreException(code));
        }
    }
}
