using Grpc.Core;

namespace RaftKv.Server.Api;

/// <summary>
/// etcd's server errors: gRPC status code and exact message (etcd's <c>api/v3rpc/rpctypes</c>). Clients match on the
/// message text, so these strings must never change.
/// </summary>
internal static class EtcdErrors
{
    public static RpcException EmptyKey => Make(StatusCode.InvalidArgument, "etcdserver: key is not provided");
    public static RpcException KeyNotFound => Make(StatusCode.InvalidArgument, "etcdserver: key not found");
    public static RpcException ValueProvided => Make(StatusCode.InvalidArgument, "etcdserver: value is provided");
    public static RpcException LeaseProvided => Make(StatusCode.InvalidArgument, "etcdserver: lease is provided");
    public static RpcException TooManyOps => Make(StatusCode.InvalidArgument, "etcdserver: too many operations in txn request");
    public static RpcException DuplicateKey => Make(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request");
    public static RpcException Compacted => Make(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted");
    public static RpcException FutureRevision => Make(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision");
    public static RpcException NoSpace => Make(StatusCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded");
    public static RpcException LeaseNotFound => Make(StatusCode.NotFound, "etcdserver: requested lease not found");
    public static RpcException LeaseExists => Make(StatusCode.FailedPrecondition, "etcdserver: lease already exists");
    public static RpcException LeaseTtlTooLarge => Make(StatusCode.OutOfRange, "etcdserver: too large lease TTL");
    public static RpcException MemberExists => Make(StatusCode.FailedPrecondition, "etcdserver: member ID already exist");
    public static RpcException PeerUrlExists => Make(StatusCode.FailedPrecondition, "etcdserver: Peer URLs already exists");
    public static RpcException MemberNotEnoughStarted => Make(StatusCode.FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members");
    public static RpcException MemberBadUrls => Make(StatusCode.InvalidArgument, "etcdserver: given member URLs are invalid");
    public static RpcException MemberNotFound => Make(StatusCode.NotFound, "etcdserver: member not found");
    public static RpcException MemberNotLearner => Make(StatusCode.FailedPrecondition, "etcdserver: can only promote a learner member");
    public static RpcException LearnerNotReady => Make(StatusCode.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader");
    public static RpcException TooManyLearners => Make(StatusCode.FailedPrecondition, "etcdserver: too many learner members in cluster");
    public static RpcException RequestTooLarge => Make(StatusCode.InvalidArgument, "etcdserver: request is too large");
    public static RpcException TooManyRequests => Make(StatusCode.ResourceExhausted, "etcdserver: too many requests");
    public static RpcException NoLeader => Make(StatusCode.Unavailable, "etcdserver: no leader");
    public static RpcException NotLeader => Make(StatusCode.FailedPrecondition, "etcdserver: not leader");
    public static RpcException LeaderChanged => Make(StatusCode.Unavailable, "etcdserver: leader changed");
    public static RpcException NotCapable => Make(StatusCode.Unavailable, "etcdserver: not capable");
    public static RpcException Stopped => Make(StatusCode.Unavailable, "etcdserver: server stopped");
    public static RpcException Timeout => Make(StatusCode.Unavailable, "etcdserver: request timed out");
    public static RpcException TimeoutDueToLeaderFail => Make(StatusCode.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure");
    public static RpcException NotSupportedForLearner => Make(StatusCode.Unavailable, "etcdserver: rpc not supported for learner");
    public static RpcException Corrupt => Make(StatusCode.DataLoss, "etcdserver: corrupt cluster");
    public static RpcException BadLeaderTransferee => Make(StatusCode.FailedPrecondition, "etcdserver: bad leader transferee");

    // Auth (rpctypes ErrGRPC*; NoPasswordUser is not mapped by etcd, so it reaches clients as Unknown with auth's own text).
    public static RpcException RootUserNotExist => Make(StatusCode.FailedPrecondition, "etcdserver: root user does not exist");
    public static RpcException RootRoleNotExist => Make(StatusCode.FailedPrecondition, "etcdserver: root user does not have root role");
    public static RpcException UserAlreadyExist => Make(StatusCode.FailedPrecondition, "etcdserver: user name already exists");
    public static RpcException UserEmpty => Make(StatusCode.InvalidArgument, "etcdserver: user name is empty");
    public static RpcException UserNotFound => Make(StatusCode.FailedPrecondition, "etcdserver: user name not found");
    public static RpcException RoleAlreadyExist => Make(StatusCode.FailedPrecondition, "etcdserver: role name already exists");
    public static RpcException RoleNotFound => Make(StatusCode.FailedPrecondition, "etcdserver: role name not found");
    public static RpcException RoleEmpty => Make(StatusCode.InvalidArgument, "etcdserver: role name is empty");
    public static RpcException AuthFailed => Make(StatusCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password");
    public static RpcException PermissionDenied => Make(StatusCode.PermissionDenied, "etcdserver: permission denied");
    public static RpcException RoleNotGranted => Make(StatusCode.FailedPrecondition, "etcdserver: role is not granted to the user");
    public static RpcException PermissionNotGranted => Make(StatusCode.FailedPrecondition, "etcdserver: permission is not granted to the role");
    public static RpcException AuthNotEnabled => Make(StatusCode.FailedPrecondition, "etcdserver: authentication is not enabled");
    public static RpcException InvalidAuthToken => Make(StatusCode.Unauthenticated, "etcdserver: invalid auth token");
    public static RpcException InvalidAuthMgmt => Make(StatusCode.InvalidArgument, "etcdserver: invalid auth management");
    public static RpcException AuthOldRevision => Make(StatusCode.InvalidArgument, "etcdserver: revision of auth store is old");
    public static RpcException NoPasswordUser => Make(StatusCode.Unknown, "auth: authentication failed, password was given for no password user");

    private static RpcException Make(StatusCode code, string message) => new(new Status(code, message), message);
}
