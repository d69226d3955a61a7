namespace RaftKv.Storage.Mvcc;

/// <summary>The etcd errors the store raises; the server maps each to its gRPC status code.</summary>
public enum StoreErrorCode
{
    /// <summary>mvcc.ErrCompacted (gRPC OutOfRange).</summary>
    Compacted,

    /// <summary>mvcc.ErrFutureRev (gRPC OutOfRange).</summary>
    FutureRevision,

    /// <summary>etcdserver ErrKeyNotFound (gRPC InvalidArgument).</summary>
    KeyNotFound,

    /// <summary>rpctypes ErrGRPCEmptyKey (gRPC InvalidArgument).</summary>
    EmptyKey,

    /// <summary>rpctypes ErrGRPCValueProvided (gRPC InvalidArgument).</summary>
    ValueProvided,

    /// <summary>rpctypes ErrGRPCLeaseProvided (gRPC InvalidArgument).</summary>
    LeaseProvided,

    /// <summary>rpctypes ErrGRPCTooManyOps (gRPC InvalidArgument).</summary>
    TooManyOps,

    /// <summary>rpctypes ErrGRPCDuplicateKey (gRPC InvalidArgument).</summary>
    DuplicateKey,

    /// <summary>rpctypes ErrGRPCNoSpace (gRPC ResourceExhausted).</summary>
    NoSpace,

    /// <summary>rpctypes ErrGRPCLeaseNotFound (gRPC NotFound).</summary>
    LeaseNotFound,

    /// <summary>rpctypes ErrGRPCLeaseExist (gRPC FailedPrecondition).</summary>
    LeaseExists,

    /// <summary>rpctypes ErrGRPCLeaseTTLTooLarge (gRPC OutOfRange).</summary>
    LeaseTtlTooLarge,

    /// <summary>rpctypes ErrGRPCCorrupt (gRPC DataLoss): a write while the CORRUPT alarm is active.</summary>
    Corrupt,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: root user does not exist".</summary>
    RootUserNotExist,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: root user does not have root role".</summary>
    RootRoleNotExist,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: user name already exists".</summary>
    UserAlreadyExist,

    /// <summary>etcd auth error (gRPC InvalidArgument): "etcdserver: user name is empty".</summary>
    UserEmpty,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: user name not found".</summary>
    UserNotFound,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: role name already exists".</summary>
    RoleAlreadyExist,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: role name not found".</summary>
    RoleNotFound,

    /// <summary>etcd auth error (gRPC InvalidArgument): "etcdserver: role name is empty".</summary>
    RoleEmpty,

    /// <summary>etcd auth error (gRPC InvalidArgument): "etcdserver: authentication failed, invalid user ID or password".</summary>
    AuthFailed,

    /// <summary>etcd auth error (gRPC PermissionDenied): "etcdserver: permission denied".</summary>
    PermissionDenied,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: role is not granted to the user".</summary>
    RoleNotGranted,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: permission is not granted to the role".</summary>
    PermissionNotGranted,

    /// <summary>etcd auth error (gRPC FailedPrecondition): "etcdserver: authentication is not enabled".</summary>
    AuthNotEnabled,

    /// <summary>etcd auth error (gRPC Unauthenticated): "etcdserver: invalid auth token".</summary>
    InvalidAuthToken,

    /// <summary>etcd auth error (gRPC InvalidArgument): "etcdserver: invalid auth management".</summary>
    InvalidAuthMgmt,

    /// <summary>etcd auth error (gRPC InvalidArgument): "etcdserver: revision of auth store is old".</summary>
    AuthOldRevision,

    /// <summary>etcd auth error (gRPC Unknown): "auth: authentication failed, password was given for no password user".</summary>
    NoPasswordUser,
}

/// <summary>An etcd request error, with etcd's exact texts (clients match on them).</summary>
public sealed class StoreException : Exception
{
    public StoreException(StoreErrorCode code)
        : base(MessageOf(code))
    {
        Code = code;
    }

    public StoreException()
        : this(StoreErrorCode.KeyNotFound)
    {
    }

    public StoreException(string message)
        : base(message)
    {
    }

    public StoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public StoreErrorCode Code { get; }

    /// <summary>The text etcd's gRPC layer sends for this error.</summary>
    public string GrpcMessage => GrpcMessageOf(Code);

    /// <summary>The text of the error where etcd raises it (mvcc's own texts lack the "etcdserver: " prefix).</summary>
    public static string MessageOf(StoreErrorCode code) => code switch
    {
        StoreErrorCode.Compacted => "mvcc: required revision has been compacted",
        StoreErrorCode.FutureRevision => "mvcc: required revision is a future revision",
        _ => GrpcMessageOf(code),
    };

    public static string GrpcMessageOf(StoreErrorCode code) => code switch
    {
        StoreErrorCode.Compacted => "etcdserver: mvcc: required revision has been compacted",
        StoreErrorCode.FutureRevision => "etcdserver: mvcc: required revision is a future revision",
        StoreErrorCode.KeyNotFound => "etcdserver: key not found",
        StoreErrorCode.EmptyKey => "etcdserver: key is not provided",
        StoreErrorCode.ValueProvided => "etcdserver: value is provided",
        StoreErrorCode.LeaseProvided => "etcdserver: lease is provided",
        StoreErrorCode.TooManyOps => "etcdserver: too many operations in txn request",
        StoreErrorCode.DuplicateKey => "etcdserver: duplicate key given in txn request",
        StoreErrorCode.NoSpace => "etcdserver: mvcc: database space exceeded",
        StoreErrorCode.LeaseNotFound => "etcdserver: requested lease not found",
        StoreErrorCode.LeaseExists => "etcdserver: lease already exists",
        StoreErrorCode.LeaseTtlTooLarge => "etcdserver: too large lease TTL",
        StoreErrorCode.Corrupt => "etcdserver: corrupt cluster",
        StoreErrorCode.RootUserNotExist => "etcdserver: root user does not exist",
        StoreErrorCode.RootRoleNotExist => "etcdserver: root user does not have root role",
        StoreErrorCode.UserAlreadyExist => "etcdserver: user name already exists",
        StoreErrorCode.UserEmpty => "etcdserver: user name is empty",
        StoreErrorCode.UserNotFound => "etcdserver: user name not found",
        StoreErrorCode.RoleAlreadyExist => "etcdserver: role name already exists",
        StoreErrorCode.RoleNotFound => "etcdserver: role name not found",
        StoreErrorCode.RoleEmpty => "etcdserver: role name is empty",
        StoreErrorCode.AuthFailed => "etcdserver: authentication failed, invalid user ID or password",
        StoreErrorCode.PermissionDenied => "etcdserver: permission denied",
        StoreErrorCode.RoleNotGranted => "etcdserver: role is not granted to the user",
        StoreErrorCode.PermissionNotGranted => "etcdserver: permission is not granted to the role",
        StoreErrorCode.AuthNotEnabled => "etcdserver: authentication is not enabled",
        StoreErrorCode.InvalidAuthToken => "etcdserver: invalid auth token",
        StoreErrorCode.InvalidAuthMgmt => "etcdserver: invalid auth management",
        StoreErrorCode.AuthOldRevision => "etcdserver: revision of auth store is old",
        StoreErrorCode.NoPasswordUser => "auth: authentication failed, password was given for no password user",
        _ => code.ToString(),
    };
}
