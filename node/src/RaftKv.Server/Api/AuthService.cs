using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Auth;
using RaftKv.Server.Kv;
using RaftKv.Server.Node;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Api;

/// <summary>
/// etcd's Auth service. Every change, and the user/role reads, go through Raft stamped with the caller, and the state
/// machine checks the root role where etcd does (users may read themselves and their roles). Passwords are hashed with
/// bcrypt here, on the member that receives them, before proposing (etcd 3.5): the log never holds a password.
/// </summary>
internal sealed class AuthService : Protocol.Etcd.Auth.AuthBase
{
    private readonly RaftMember _member;
    private readonly AuthGate _gate;
    private readonly Headers _headers;
    private readonly int _bcryptCost;

    public AuthService(RaftMember member, AuthGate gate, Headers headers, int bcryptCost)
    {
        _member = member;
        _gate = gate;
        _headers = headers;
        _bcryptCost = bcryptCost;
    }

    public override async Task<AuthEnableResponse> AuthEnable(AuthEnableRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthEnable = request }, context).ConfigureAwait(false) };

    public override async Task<AuthDisableResponse> AuthDisable(AuthDisableRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthDisable = request }, context).ConfigureAwait(false) };

    public override async Task<AuthStatusResponse> AuthStatus(AuthStatusRequest request, ServerCallContext context)
    {
        await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
        var state = _gate.State;
        return new AuthStatusResponse { Header = _headers.Make(), Enabled = state.Enabled, AuthRevision = state.Revision };
    }

    /// <summary>
    /// etcd's Authenticate: the password is checked here against the applied state, then an entry issues the token on every
    /// member; if the auth state changed between the check and the issue, the check is done again.
    /// </summary>
    public override async Task<AuthenticateResponse> Authenticate(AuthenticateRequest request, ServerCallContext context)
    {
        await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
        while (true)
        {
            var state = _gate.State;
            if (!state.Enabled)
            {
                throw EtcdErrors.AuthNotEnabled;
            }

            if (!state.Users.TryGetValue(request.Name, out var user))
            {
                throw EtcdErrors.AuthFailed;
            }

            if (user.NoPassword || user.PasswordHash is null)
            {
                throw EtcdErrors.NoPasswordUser;
            }

            if (!VerifyPassword(request.Password, user.PasswordHash))
            {
                throw EtcdErrors.AuthFailed;
            }

            var proposal = new InternalRequest { Authenticate = new InternalAuthenticate { Name = request.Name, SimpleToken = SimpleTokens.NewPrefix() } };
            var result = await _member.ProposeAsync(proposal, context.CancellationToken).ConfigureAwait(false);
            var issued = (KvStateMachine.IssuedToken)Answer(result);
            if (_gate.State.Revision == state.Revision)
            {
                return new AuthenticateResponse { Header = _headers.Make(issued.Revision), Token = issued.Token };
            }
        }
    }

    public override async Task<AuthUserAddResponse> UserAdd(AuthUserAddRequest request, ServerCallContext context)
    {
        var proposed = request.Clone();
        if (proposed.Options?.NoPassword != true)
        {
            proposed.HashedPassword = HashPassword(request.Password);
        }

        proposed.Password = "";
        return new() { Header = await ProposeAsync(new InternalRequest { AuthUserAdd = proposed }, context).ConfigureAwait(false) };
    }

    public override async Task<AuthUserGetResponse> UserGet(AuthUserGetRequest request, ServerCallContext context)
    {
        var r = await ProposeForAnswerAsync(new InternalRequest { AuthUserGet = request }, context).ConfigureAwait(false);
        var response = new AuthUserGetResponse { Header = _headers.Make(r.Revision) };
        response.Roles.AddRange(r.Names);
        return response;
    }

    public override async Task<AuthUserListResponse> UserList(AuthUserListRequest request, ServerCallContext context)
    {
        var r = await ProposeForAnswerAsync(new InternalRequest { AuthUserList = request }, context).ConfigureAwait(false);
        var response = new AuthUserListResponse { Header = _headers.Make(r.Revision) };
        response.Users.AddRange(r.Names);
        return response;
    }

    public override async Task<AuthUserDeleteResponse> UserDelete(AuthUserDeleteRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthUserDelete = request }, context).ConfigureAwait(false) };

    public override async Task<AuthUserChangePasswordResponse> UserChangePassword(AuthUserChangePasswordRequest request, ServerCallContext context)
    {
        var proposed = new AuthUserChangePasswordRequest { Name = request.Name, HashedPassword = HashPassword(request.Password) };
        return new() { Header = await ProposeAsync(new InternalRequest { AuthUserChangePassword = proposed }, context).ConfigureAwait(false) };
    }

    public override async Task<AuthUserGrantRoleResponse> UserGrantRole(AuthUserGrantRoleRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthUserGrantRole = request }, context).ConfigureAwait(false) };

    public override async Task<AuthUserRevokeRoleResponse> UserRevokeRole(AuthUserRevokeRoleRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthUserRevokeRole = request }, context).ConfigureAwait(false) };

    public override async Task<AuthRoleAddResponse> RoleAdd(AuthRoleAddRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthRoleAdd = request }, context).ConfigureAwait(false) };

    public override async Task<AuthRoleGetResponse> RoleGet(AuthRoleGetRequest request, ServerCallContext context)
    {
        var r = await ProposeForAnswerAsync(new InternalRequest { AuthRoleGet = request }, context).ConfigureAwait(false);
        var response = new AuthRoleGetResponse { Header = _headers.Make(r.Revision) };
        response.Perm.AddRange(r.Permissions.Select(p => new Protocol.Auth.Permission
        {
            PermType = (Protocol.Auth.Permission.Types.Type)(int)p.Type,
            Key = Google.Protobuf.ByteString.CopyFrom(p.Key),
            RangeEnd = Google.Protobuf.ByteString.CopyFrom(p.RangeEnd),
        }));
        return response;
    }

    public override async Task<AuthRoleListResponse> RoleList(AuthRoleListRequest request, ServerCallContext context)
    {
        var r = await ProposeForAnswerAsync(new InternalRequest { AuthRoleList = request }, context).ConfigureAwait(false);
        var response = new AuthRoleListResponse { Header = _headers.Make(r.Revision) };
        response.Roles.AddRange(r.Names);
        return response;
    }

    public override async Task<AuthRoleDeleteResponse> RoleDelete(AuthRoleDeleteRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthRoleDelete = request }, context).ConfigureAwait(false) };

    public override async Task<AuthRoleGrantPermissionResponse> RoleGrantPermission(AuthRoleGrantPermissionRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthRoleGrantPermission = request }, context).ConfigureAwait(false) };

    public override async Task<AuthRoleRevokePermissionResponse> RoleRevokePermission(AuthRoleRevokePermissionRequest request, ServerCallContext context) =>
        new() { Header = await ProposeAsync(new InternalRequest { AuthRoleRevokePermission = request }, context).ConfigureAwait(false) };

    private string HashPassword(string password) => BCrypt.Net.BCrypt.HashPassword(password, _bcryptCost);

    private static bool VerifyPassword(string password, string hash)
    {
        try
        {
            return BCrypt.Net.BCrypt.Verify(password, hash);
        }
        catch (BCrypt.Net.SaltParseException)
        {
            return false; // a hash that is not bcrypt's (never written by raftkv): no password matches it
        }
    }

    private async Task<ResponseHeader> ProposeAsync(InternalRequest request, ServerCallContext context) =>
        _headers.Make((await ProposeForAnswerAsync(request, context).ConfigureAwait(false)).Revision);

    private async Task<S.AuthResponse> ProposeForAnswerAsync(InternalRequest request, ServerCallContext context)
    {
        var stamped = await _gate.StampAsync(request, context).ConfigureAwait(false);
        return (S.AuthResponse)Answer(await _member.ProposeAsync(stamped, context.CancellationToken).ConfigureAwait(false));
    }

    /// <summary>An apply result: an error from the state machine is thrown; none at all means it could not be applied here.</summary>
    private static object Answer(object? result) => result switch
    {
        RpcException e => throw e,
        null => throw EtcdErrors.NotCapable,
        _ => result,
    };
}
