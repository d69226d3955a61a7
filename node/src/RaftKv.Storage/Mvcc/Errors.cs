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
        _ => code.ToString(),
    };
}
