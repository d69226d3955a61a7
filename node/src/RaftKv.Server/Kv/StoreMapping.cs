using Google.Protobuf;
using Grpc.Core;
using RaftKv.Server.Api;
using EtcdKv = RaftKv.Protocol.Mvcc;
using EtcdPb = RaftKv.Protocol.Etcd;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Kv;

/// <summary>Converts between etcd's wire messages and the MVCC store's request and response records.</summary>
internal static class StoreMapping
{
    public static S.RangeRequest ToStore(EtcdPb.RangeRequest r) => new()
    {
        Key = r.Key.ToByteArray(),
        RangeEnd = r.RangeEnd.ToByteArray(),
        Limit = r.Limit,
        Revision = r.Revision,
        SortOrder = (S.SortOrder)r.SortOrder,
        SortTarget = (S.SortTarget)r.SortTarget,
        Serializable = r.Serializable,
        KeysOnly = r.KeysOnly,
        CountOnly = r.CountOnly,
        MinModRevision = r.MinModRevision,
        MaxModRevision = r.MaxModRevision,
        MinCreateRevision = r.MinCreateRevision,
        MaxCreateRevision = r.MaxCreateRevision,
    };

    public static S.PutRequest ToStore(EtcdPb.PutRequest r) => new()
    {
        Key = r.Key.ToByteArray(),
        Value = r.Value.ToByteArray(),
        Lease = r.Lease,
        PrevKv = r.PrevKv,
        IgnoreValue = r.IgnoreValue,
        IgnoreLease = r.IgnoreLease,
    };

    public static S.DeleteRangeRequest ToStore(EtcdPb.DeleteRangeRequest r) => new()
    {
        Key = r.Key.ToByteArray(),
        RangeEnd = r.RangeEnd.ToByteArray(),
        PrevKv = r.PrevKv,
    };

    public static S.TxnRequest ToStore(EtcdPb.TxnRequest r) => new()
    {
        Compare = [.. r.Compare.Select(ToStore)],
        Success = [.. r.Success.Select(ToStore)],
        Failure = [.. r.Failure.Select(ToStore)],
    };

    private static S.Compare ToStore(EtcdPb.Compare c) => new()
    {
        Result = (S.CompareResult)c.Result,
        Target = (S.CompareTarget)c.Target,
        Key = c.Key.ToByteArray(),
        RangeEnd = c.RangeEnd.ToByteArray(),
        Version = c.Version,
        CreateRevision = c.CreateRevision,
        ModRevision = c.ModRevision,
        Value = c.Value.ToByteArray(),
        Lease = c.Lease,
    };

    private static S.RequestOp ToStore(EtcdPb.RequestOp op) => op.RequestCase switch
    {
        EtcdPb.RequestOp.RequestOneofCase.RequestRange => S.RequestOp.Of(ToStore(op.RequestRange)),
        EtcdPb.RequestOp.RequestOneofCase.RequestPut => S.RequestOp.Of(ToStore(op.RequestPut)),
        EtcdPb.RequestOp.RequestOneofCase.RequestDeleteRange => S.RequestOp.Of(ToStore(op.RequestDeleteRange)),
        EtcdPb.RequestOp.RequestOneofCase.RequestTxn => S.RequestOp.Of(ToStore(op.RequestTxn)),
        _ => throw new RpcException(new Status(StatusCode.InvalidArgument, "etcdserver: a txn operation carries no request")),
    };

    public static EtcdKv.KeyValue ToWire(S.KeyValue kv) => new()
    {
        Key = UnsafeByteOperations.UnsafeWrap(kv.Key),
        CreateRevision = kv.CreateRevision,
        ModRevision = kv.ModRevision,
        Version = kv.Version,
        Value = UnsafeByteOperations.UnsafeWrap(kv.Value),
        Lease = kv.Lease,
    };

    public static EtcdPb.RangeResponse ToWire(S.RangeResponse r, Headers headers)
    {
        var w = new EtcdPb.RangeResponse { Header = headers.Make(r.Revision), More = r.More, Count = r.Count };
        w.Kvs.AddRange(r.Kvs.Select(ToWire));
        return w;
    }

    public static EtcdPb.PutResponse ToWire(S.PutResponse r, Headers headers) =>
        new() { Header = headers.Make(r.Revision), PrevKv = r.PrevKv is { } p ? ToWire(p) : null };

    public static EtcdPb.DeleteRangeResponse ToWire(S.DeleteRangeResponse r, Headers headers)
    {
        var w = new EtcdPb.DeleteRangeResponse { Header = headers.Make(r.Revision), Deleted = r.Deleted };
        w.PrevKvs.AddRange(r.PrevKvs.Select(ToWire));
        return w;
    }

    public static EtcdPb.TxnResponse ToWire(S.TxnResponse r, Headers headers)
    {
        var w = new EtcdPb.TxnResponse { Header = headers.Make(r.Revision), Succeeded = r.Succeeded };
        foreach (var op in r.Responses)
        {
            w.Responses.Add(ToWire(op, headers));
        }

        return w;
    }

    /// <summary>Nested responses carry a header with the revision (etcd fills them the same way).</summary>
    private static EtcdPb.ResponseOp ToWire(S.ResponseOp op, Headers headers)
    {
        if (op.Range is { } range)
        {
            return new EtcdPb.ResponseOp { ResponseRange = ToWire(range, headers) };
        }

        if (op.Put is { } put)
        {
            return new EtcdPb.ResponseOp { ResponsePut = ToWire(put, headers) };
        }

        if (op.DeleteRange is { } del)
        {
            return new EtcdPb.ResponseOp { ResponseDeleteRange = ToWire(del, headers) };
        }

        return new EtcdPb.ResponseOp { ResponseTxn = ToWire(op.Txn!, headers) };
    }

    /// <summary>An etcd error from the store as the gRPC status etcd answers with.</summary>
    public static RpcException ToRpc(S.StoreException e) => e.Code switch
    {
        S.StoreErrorCode.Compacted => EtcdErrors.Compacted,
        S.StoreErrorCode.FutureRevision => EtcdErrors.FutureRevision,
        S.StoreErrorCode.KeyNotFound => EtcdErrors.KeyNotFound,
        S.StoreErrorCode.EmptyKey => EtcdErrors.EmptyKey,
        S.StoreErrorCode.ValueProvided => EtcdErrors.ValueProvided,
        S.StoreErrorCode.LeaseProvided => EtcdErrors.LeaseProvided,
        S.StoreErrorCode.TooManyOps => EtcdErrors.TooManyOps,
        S.StoreErrorCode.DuplicateKey => EtcdErrors.DuplicateKey,
        S.StoreErrorCode.NoSpace => EtcdErrors.NoSpace,
        S.StoreErrorCode.LeaseNotFound => EtcdErrors.LeaseNotFound,
        S.StoreErrorCode.LeaseExists => EtcdErrors.LeaseExists,
        S.StoreErrorCode.LeaseTtlTooLarge => EtcdErrors.LeaseTtlTooLarge,
        S.StoreErrorCode.Corrupt => EtcdErrors.Corrupt,
        S.StoreErrorCode.RootUserNotExist => EtcdErrors.RootUserNotExist,
        S.StoreErrorCode.RootRoleNotExist => EtcdErrors.RootRoleNotExist,
        S.StoreErrorCode.UserAlreadyExist => EtcdErrors.UserAlreadyExist,
        S.StoreErrorCode.UserEmpty => EtcdErrors.UserEmpty,
        S.StoreErrorCode.UserNotFound => EtcdErrors.UserNotFound,
        S.StoreErrorCode.RoleAlreadyExist => EtcdErrors.RoleAlreadyExist,
        S.StoreErrorCode.RoleNotFound => EtcdErrors.RoleNotFound,
        S.StoreErrorCode.RoleEmpty => EtcdErrors.RoleEmpty,
        S.StoreErrorCode.AuthFailed => EtcdErrors.AuthFailed,
        S.StoreErrorCode.PermissionDenied => EtcdErrors.PermissionDenied,
        S.StoreErrorCode.RoleNotGranted => EtcdErrors.RoleNotGranted,
        S.StoreErrorCode.PermissionNotGranted => EtcdErrors.PermissionNotGranted,
        S.StoreErrorCode.AuthNotEnabled => EtcdErrors.AuthNotEnabled,
        S.StoreErrorCode.InvalidAuthToken => EtcdErrors.InvalidAuthToken,
        S.StoreErrorCode.InvalidAuthMgmt => EtcdErrors.InvalidAuthMgmt,
        S.StoreErrorCode.AuthOldRevision => EtcdErrors.AuthOldRevision,
        S.StoreErrorCode.NoPasswordUser => EtcdErrors.NoPasswordUser,
        _ => new RpcException(new Status(StatusCode.Unknown, e.GrpcMessage)),
    };
}
