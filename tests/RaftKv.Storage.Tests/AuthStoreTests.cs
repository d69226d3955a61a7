using System.Text;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

/// <summary>
/// Auth in the MVCC store: etcd 3.4's range permission rules (table-driven), the rules of each change and the auth revision,
/// the permission checks made when a client write is applied, and durability (reopen, file copy as in a Raft snapshot).
/// </summary>
public sealed class AuthStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private MvccStore Open(string name = "db") => MvccStore.Open(_dir.Sub("member", "snap", name), new MvccOptions { UnsafeNoSync = true });

    public void Dispose() => _dir.Dispose();

    private static KeyGrant Perm(KeyPermissionKind kind, string key, string end = "") => new(kind, B(key), end == "\\0" ? [0] : B(end));

    /// <summary>
    /// Permissions of a role (a: READWRITE [/a/, /a0) i.e. prefix /a/; k: READ on the key /k; z: WRITE from /z on;
    /// m: READ [/m, /n) and READ [/n, /p) adjacent; g: READ [/g, /h) and READ [/i, /j) with a gap) against asked ranges.
    /// </summary>
    public static TheoryData<string, string, bool, bool> RangeCases() => new()
    {
        // key, range end ("" one key, "\0" from key), write?, permitted?
        { "/a/x", "", false, true },
        { "/a/x", "", true, true },
        { "/a/", "/a0", false, true },        // exactly the prefix
        { "/a/b", "/a/c", true, true },       // inside
        { "/a/", "/a1", false, false },       // runs past the end
        { "/a", "/a/z", false, false },       // starts before
        { "/a0", "", false, false },          // the range end itself is outside
        { "/b", "", false, false },
        { "/k", "", false, true },
        { "/k", "", true, false },            // READ only
        { "/k", "/l", false, false },         // a key permission does not cover a range past the key
        { "/k", "/k\0", false, true },        // ...but covers the range of just that key
        { "/z", "", true, true },
        { "/zzzz", "", true, true },
        { "/z", "\\0", true, true },          // from-key inside a from-key permission
        { "/y", "\\0", true, false },
        { "/z", "", false, false },           // WRITE only
        { "/m", "/p", false, true },          // adjacent permissions join
        { "/m5", "/o", false, true },
        { "/m", "/q", false, false },
        { "/g", "/j", false, false },         // a gap between [/g,/h) and [/i,/j)
        { "/g", "/h", false, true },
        { "/h", "", false, false },
        { "", "\\0", false, false },          // everything
    };

    [Theory]
    [MemberData(nameof(RangeCases))]
    public void Range_permissions_follow_etcds_interval_rules(string key, string rangeEnd, bool write, bool permitted)
    {
        KeyGrant[] perms =
        [
            Perm(KeyPermissionKind.ReadWrite, "/a/", "/a0"), Perm(KeyPermissionKind.Read, "/k"), Perm(KeyPermissionKind.Write, "/z", "\\0"),
            Perm(KeyPermissionKind.Read, "/m", "/n"), Perm(KeyPermissionKind.Read, "/n", "/p"), Perm(KeyPermissionKind.Read, "/g", "/h"),
            Perm(KeyPermissionKind.Read, "/i", "/j"),
        ];
        var end = rangeEnd == "\\0" ? new byte[] { 0 } : B(rangeEnd);
        Assert.Equal(permitted, RangePermissions.Permitted(perms, B(key), end, write));
    }

    [Fact]
    public void A_from_key_permission_on_the_empty_key_covers_nothing_as_in_etcd()
    {
        // pkg/adt treats an empty bound as +infinity, begin included: etcd's [ "", "\0") permission grants no key.
        Assert.False(RangePermissions.Permitted([Perm(KeyPermissionKind.Read, "", "\\0")], B("a"), [], write: false));
        Assert.True(RangePermissions.Permitted([Perm(KeyPermissionKind.Read, "\0", "\\0")], B("a"), [], write: false));
    }

    [Fact]
    public void Changes_follow_etcds_rules_and_bump_the_revision()
    {
        var s = AuthState.Empty;
        Assert.Equal(StoreErrorCode.RootUserNotExist, Assert.Throws<StoreException>(() => s.Enable()).Code);
        s = s.UserAdd("root", "hash", noPassword: false);
        Assert.Equal(1ul, s.Revision);
        Assert.Equal(StoreErrorCode.UserAlreadyExist, Assert.Throws<StoreException>(() => s.UserAdd("root", "h", false)).Code);
        Assert.Equal(StoreErrorCode.UserEmpty, Assert.Throws<StoreException>(() => s.UserAdd("", "h", false)).Code);
        Assert.Equal(StoreErrorCode.RootRoleNotExist, Assert.Throws<StoreException>(() => s.Enable()).Code);
        s = s.UserGrantRole("root", "root"); // the root role need not exist
        Assert.Equal(2ul, s.Revision);
        Assert.Same(s, s.UserGrantRole("root", "root")); // granted twice: ignored, no revision
        Assert.Equal(StoreErrorCode.RoleNotFound, Assert.Throws<StoreException>(() => s.UserGrantRole("root", "r")).Code);
        s = s.RoleAdd("r").RoleGrantPermission("r", Perm(KeyPermissionKind.Read, "/b")).RoleGrantPermission("r", Perm(KeyPermissionKind.Read, "/a"));
        Assert.Equal(["/a", "/b"], s.Roles["r"].Permissions.Select(p => Encoding.UTF8.GetString(p.Key)));
        s = s.RoleGrantPermission("r", Perm(KeyPermissionKind.Write, "/a")); // same key and end: the type changes
        Assert.Equal(KeyPermissionKind.Write, s.Roles["r"].Permissions[0].Type);
        Assert.Equal(2, s.Roles["r"].Permissions.Length);
        Assert.Equal(StoreErrorCode.PermissionNotGranted, Assert.Throws<StoreException>(() => s.RoleRevokePermission("r", B("/c"), [])).Code);
        s = s.UserAdd("alice", null, noPassword: true).UserGrantRole("alice", "r");
        Assert.Equal(StoreErrorCode.RoleNotGranted, Assert.Throws<StoreException>(() => s.UserRevokeRole("alice", "x")).Code);
        var enabled = s.Enable();
        Assert.True(enabled.Enabled);
        Assert.Equal(s.Revision, enabled.Revision); // enabling does not move the revision
        Assert.Equal(StoreErrorCode.InvalidAuthMgmt, Assert.Throws<StoreException>(() => enabled.UserRevokeRole("root", "root")).Code);
        Assert.Equal(StoreErrorCode.InvalidAuthMgmt, Assert.Throws<StoreException>(() => enabled.UserDelete("root")).Code);
        Assert.Equal(StoreErrorCode.InvalidAuthMgmt, Assert.Throws<StoreException>(() => enabled.RoleDelete("root")).Code);
        var deleted = enabled.RoleDelete("r");
        Assert.Empty(deleted.Users["alice"].Roles); // a deleted role leaves its users
        var disabled = enabled.Disable();
        Assert.Equal(enabled.Revision + 1, disabled.Revision);
        Assert.Same(disabled, disabled.Disable());
        Assert.Equal(AuthState.Decode(disabled.Encode()).Encode(), disabled.Encode());
    }

    [Fact]
    public void Checks_refuse_no_user_old_revisions_and_missing_permissions()
    {
        var s = AuthState.Empty.UserAdd("root", "h", false).UserGrantRole("root", "root").RoleAdd("r")
            .RoleGrantPermission("r", Perm(KeyPermissionKind.ReadWrite, "/a/", "/a0")).UserAdd("alice", "h", false).UserGrantRole("alice", "r");
        Assert.Null(s.CheckOp("", 0, B("/x"), [], write: true)); // auth disabled: everything passes
        s = s.Enable();
        Assert.Equal(StoreErrorCode.UserEmpty, s.CheckOp("", 0, B("/a/x"), [], write: false));
        Assert.Equal(StoreErrorCode.AuthOldRevision, s.CheckOp("alice", s.Revision - 1, B("/a/x"), [], write: false));
        Assert.Null(s.CheckOp("alice", s.Revision, B("/a/x"), [], write: true));
        Assert.Equal(StoreErrorCode.PermissionDenied, s.CheckOp("alice", s.Revision, B("/b"), [], write: true));
        Assert.Equal(StoreErrorCode.PermissionDenied, s.CheckOp("bob", s.Revision, B("/a/x"), [], write: true));
        Assert.Null(s.CheckOp("root", s.Revision, B("/anything"), B("\0"), write: true));
        Assert.Null(s.CheckAdmin("root"));
        Assert.Equal(StoreErrorCode.PermissionDenied, s.CheckAdmin("alice"));
        Assert.Equal(StoreErrorCode.UserNotFound, s.CheckAdmin("bob"));
        Assert.Equal(StoreErrorCode.UserEmpty, s.CheckAdmin(null));
    }

    private static ApplyCommand As(ulong index, string user, ulong revision, object request) => new(index, 1, new AuthorizedRequest(user, revision, request));

    [Fact]
    public void Client_writes_are_checked_when_applied_and_the_auth_state_survives_reopen_and_copy()
    {
        var copy = _dir.Sub("copy.db");
        using (var store = Open())
        {
            ulong i = 0;
            object? Apply(object request, string user = "root")
            {
                var r = store.Apply([As(++i, user, store.Auth.Revision, request)])[0];
                return r.Error is { } e ? e.Code : r.Response;
            }

            Apply(new AuthRequest(AuthOp.UserAdd, "root", PasswordHash: "h"));
            Apply(new AuthRequest(AuthOp.UserGrantRole, "root", "root"));
            Apply(new AuthRequest(AuthOp.RoleAdd, "r"));
            Apply(new AuthRequest(AuthOp.RoleGrantPermission, "r", Permission: Perm(KeyPermissionKind.ReadWrite, "/a/", "/a0")));
            Apply(new AuthRequest(AuthOp.UserAdd, "alice", PasswordHash: "h"));
            Apply(new AuthRequest(AuthOp.UserGrantRole, "alice", "r"));
            Assert.IsType<AuthResponse>(Apply(new AuthRequest(AuthOp.Enable)));
            Assert.True(store.Auth.Enabled);

            Assert.IsType<PutResponse>(Apply(new PutRequest { Key = B("/a/x"), Value = B("1") }, "alice"));
            Assert.Equal(StoreErrorCode.PermissionDenied, Apply(new PutRequest { Key = B("/b"), Value = B("1") }, "alice"));
            Assert.Equal(StoreErrorCode.PermissionDenied, Apply(new DeleteRangeRequest { Key = B("/a/"), RangeEnd = B("/b") }, "alice"));
            var txn = new TxnRequest
            {
                Compare = [new Compare { Key = B("/a/x"), Target = CompareTarget.Version, Result = CompareResult.Greater, Version = 0 }],
                Success = [RequestOp.Of(new TxnRequest { Success = [RequestOp.Of(new PutRequest { Key = B("/b"), Value = B("2") })] })],
            };
            Assert.Equal(StoreErrorCode.PermissionDenied, Apply(txn, "alice")); // a nested txn is checked too
            Assert.Equal(StoreErrorCode.PermissionDenied, Apply(new AuthRequest(AuthOp.UserList), "alice"));
            Assert.IsType<AuthResponse>(Apply(new AuthRequest(AuthOp.UserGet, "alice"), "alice")); // itself
            Assert.IsType<AuthResponse>(Apply(new AuthRequest(AuthOp.RoleGet, "r"), "alice")); // a role it has
            Assert.Equal(StoreErrorCode.UserEmpty, store.Apply([As(++i, "", 0, new PutRequest { Key = B("/a/x"), Value = B("1") })])[0].Error?.Code);

            // A request checked at an older auth revision than the one it is applied at is refused.
            var old = store.Auth.Revision;
            Apply(new AuthRequest(AuthOp.RoleAdd, "other"));
            Assert.Equal(StoreErrorCode.AuthOldRevision, store.Apply([As(++i, "alice", old, new PutRequest { Key = B("/a/y"), Value = B("1") })])[0].Error?.Code);

            // Revoked: refused at once.
            Apply(new AuthRequest(AuthOp.RoleRevokePermission, "r", Permission: Perm(KeyPermissionKind.Read, "/a/", "/a0")));
            Assert.Equal(StoreErrorCode.PermissionDenied, Apply(new PutRequest { Key = B("/a/x"), Value = B("2") }, "alice"));

            // Requests the cluster makes itself are not wrapped and not checked (lease expiry, alarms).
            Assert.Null(store.Apply([new ApplyCommand(++i, 1, new PutRequest { Key = B("/sys"), Value = B("1") })])[0].Error);
            store.CopyTo(copy);
        }

        foreach (var path in new[] { _dir.Sub("member", "snap", "db"), copy })
        {
            using var reopened = MvccStore.Open(path, new MvccOptions { UnsafeNoSync = true });
            var auth = reopened.Auth;
            Assert.True(auth.Enabled);
            Assert.Equal(["alice", "root"], auth.Users.Keys);
            Assert.Equal(["other", "r"], auth.Roles.Keys);
            Assert.Equal("h", auth.Users["alice"].PasswordHash);
            Assert.Empty(auth.Roles["r"].Permissions);
        }
    }

    [Fact]
    public void A_failed_auth_change_changes_nothing()
    {
        using var store = Open();
        var r = store.Apply([new ApplyCommand(1, 1, new AuthRequest(AuthOp.UserGrantRole, "nobody", "r"))])[0];
        Assert.Equal(StoreErrorCode.UserNotFound, r.Error?.Code);
        Assert.True(store.Auth.IsEmpty);
        Assert.Equal(1ul, store.ConsistentIndex);
    }
}
