using System.Collections.Immutable;
using System.Text;

namespace RaftKv.Storage.Mvcc;

/// <summary>etcd's authpb.Permission.Type.</summary>
public enum KeyPermissionKind
{
    Read = 0,
    Write = 1,
    ReadWrite = 2,
}

/// <summary>
/// A key permission of a role: one key (empty <see cref="RangeEnd"/>), the range [Key, RangeEnd), or every key from Key on
/// (RangeEnd = "\0"), as etcd's authpb.Permission.
/// </summary>
public sealed record KeyGrant(KeyPermissionKind Type, byte[] Key, byte[] RangeEnd)
{
    public bool SameRange(byte[] key, byte[] rangeEnd) => Key.AsSpan().SequenceEqual(key) && RangeEnd.AsSpan().SequenceEqual(rangeEnd);
}

/// <summary>A user: bcrypt hash of the password (null for a user added with no_password), its roles sorted.</summary>
public sealed record AuthUser(string Name, string? PasswordHash, ImmutableArray<string> Roles, bool NoPassword)
{
    public bool HasRole(string role) => Roles.BinarySearch(role, StringComparer.Ordinal) >= 0;
}

/// <summary>A role and its key permissions, sorted by key as etcd keeps them.</summary>
public sealed record AuthRole(string Name, ImmutableArray<KeyGrant> Permissions);

/// <summary>
/// The replicated auth state (etcd's auth store): users, roles, the enabled flag and the auth revision, which every change
/// bumps. Immutable: the store swaps in a new state when a change commits, so checks read one consistent state without locks.
/// The rules (what each change refuses, when the revision moves, which ranges a role's permissions cover) are etcd 3.4's.
/// </summary>
public sealed class AuthState
{
    public const string RootUser = "root";
    public const string RootRole = "root";

    public static AuthState Empty { get; } = new(ImmutableSortedDictionary.Create<string, AuthUser>(StringComparer.Ordinal),
        ImmutableSortedDictionary.Create<string, AuthRole>(StringComparer.Ordinal), false, 0);

    public AuthState(ImmutableSortedDictionary<string, AuthUser> users, ImmutableSortedDictionary<string, AuthRole> roles, bool enabled, ulong revision)
    {
        Users = users;
        Roles = roles;
        Enabled = enabled;
        Revision = revision;
    }

    public ImmutableSortedDictionary<string, AuthUser> Users { get; }

    public ImmutableSortedDictionary<string, AuthRole> Roles { get; }

    public bool Enabled { get; }

    public ulong Revision { get; }

    public bool IsEmpty => Users.IsEmpty && Roles.IsEmpty && !Enabled && Revision == 0;

    private AuthState With(ImmutableSortedDictionary<string, AuthUser>? users = null, ImmutableSortedDictionary<string, AuthRole>? roles = null,
        bool? enabled = null, bool bump = true) =>
        new(users ?? Users, roles ?? Roles, enabled ?? Enabled, bump ? Revision + 1 : Revision);

    // ---------------------------------------------------------------- checks (etcd's isOpPermitted and IsAdminPermitted)

    /// <summary>
    /// etcd's permission check of one operation by <paramref name="user"/>, who was authenticated at auth revision
    /// <paramref name="checkedRevision"/> (0: no user at all). Returns null when permitted, else the error.
    /// </summary>
    public StoreErrorCode? CheckOp(string user, ulong checkedRevision, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, bool write)
    {
        if (!Enabled)
        {
            return null;
        }

        if (checkedRevision == 0)
        {
            return StoreErrorCode.UserEmpty;
        }

        if (checkedRevision < Revision)
        {
            return StoreErrorCode.AuthOldRevision;
        }

        if (!Users.TryGetValue(user, out var u))
        {
            return StoreErrorCode.PermissionDenied;
        }

        if (u.HasRole(RootRole))
        {
            return null;
        }

        return RangePermissions.Permitted(PermissionsOf(u), key, rangeEnd, write) ? null : StoreErrorCode.PermissionDenied;
    }

    /// <summary>etcd's IsAdminPermitted: with auth enabled only a user with the root role.</summary>
    public StoreErrorCode? CheckAdmin(string? user)
    {
        if (!Enabled)
        {
            return null;
        }

        if (string.IsNullOrEmpty(user))
        {
            return StoreErrorCode.UserEmpty;
        }

        if (!Users.TryGetValue(user, out var u))
        {
            return StoreErrorCode.UserNotFound;
        }

        return u.HasRole(RootRole) ? null : StoreErrorCode.PermissionDenied;
    }

    /// <summary>The permissions of every role of <paramref name="user"/> (roles that no longer exist give none).</summary>
    public IEnumerable<KeyGrant> PermissionsOf(AuthUser user) =>
        user.Roles.SelectMany(r => Roles.TryGetValue(r, out var role) ? role.Permissions : []);

    // ---------------------------------------------------------------- changes (etcd's authStore methods)

    public AuthState Enable()
    {
        if (Enabled)
        {
            return this; // etcd: already enabled, ignored
        }

        if (!Users.TryGetValue(RootUser, out var root))
        {
            throw new StoreException(StoreErrorCode.RootUserNotExist);
        }

        if (!root.HasRole(RootRole))
        {
            throw new StoreException(StoreErrorCode.RootRoleNotExist);
        }

        return With(enabled: true, bump: false);
    }

    public AuthState Disable() => Enabled ? With(enabled: false) : this;

    public AuthState UserAdd(string name, string? passwordHash, bool noPassword)
    {
        if (name.Length == 0)
        {
            throw new StoreException(StoreErrorCode.UserEmpty);
        }

        if (Users.ContainsKey(name))
        {
            throw new StoreException(StoreErrorCode.UserAlreadyExist);
        }

        return With(users: Users.Add(name, new AuthUser(name, noPassword ? null : passwordHash, [], noPassword)));
    }

    public AuthState UserDelete(string name)
    {
        if (Enabled && name == RootUser)
        {
            throw new StoreException(StoreErrorCode.InvalidAuthMgmt);
        }

        return Users.ContainsKey(name) ? With(users: Users.Remove(name)) : throw new StoreException(StoreErrorCode.UserNotFound);
    }

    public AuthState UserChangePassword(string name, string passwordHash)
    {
        var user = Users.GetValueOrDefault(name) ?? throw new StoreException(StoreErrorCode.UserNotFound);
        return With(users: Users.SetItem(name, user with { PasswordHash = passwordHash }));
    }

    public AuthState UserGrantRole(string name, string role)
    {
        var user = Users.GetValueOrDefault(name) ?? throw new StoreException(StoreErrorCode.UserNotFound);
        if (role != RootRole && !Roles.ContainsKey(role))
        {
            throw new StoreException(StoreErrorCode.RoleNotFound);
        }

        if (user.HasRole(role))
        {
            return this; // etcd: already granted, ignored (the revision does not move)
        }

        var roles = user.Roles.Add(role).Sort(StringComparer.Ordinal);
        return With(users: Users.SetItem(name, user with { Roles = roles }));
    }

    public AuthState UserRevokeRole(string name, string role)
    {
        if (Enabled && name == RootUser && role == RootRole)
        {
            throw new StoreException(StoreErrorCode.InvalidAuthMgmt);
        }

        var user = Users.GetValueOrDefault(name) ?? throw new StoreException(StoreErrorCode.UserNotFound);
        if (!user.HasRole(role))
        {
            throw new StoreException(StoreErrorCode.RoleNotGranted);
        }

        return With(users: Users.SetItem(name, user with { Roles = user.Roles.RemoveAll(r => r == role) }));
    }

    public AuthState RoleAdd(string name)
    {
        if (name.Length == 0)
        {
            throw new StoreException(StoreErrorCode.RoleEmpty);
        }

        if (Roles.ContainsKey(name))
        {
            throw new StoreException(StoreErrorCode.RoleAlreadyExist);
        }

        return With(roles: Roles.Add(name, new AuthRole(name, [])));
    }

    /// <summary>Deletes the role and takes it from every user that has it.</summary>
    public AuthState RoleDelete(string name)
    {
        if (Enabled && name == RootRole)
        {
            throw new StoreException(StoreErrorCode.InvalidAuthMgmt);
        }

        if (!Roles.ContainsKey(name))
        {
            throw new StoreException(StoreErrorCode.RoleNotFound);
        }

        var users = Users;
        foreach (var user in Users.Values.Where(u => u.HasRole(name)))
        {
            users = users.SetItem(user.Name, user with { Roles = user.Roles.RemoveAll(r => r == name) });
        }

        return With(users: users, roles: Roles.Remove(name));
    }

    /// <summary>
    /// Adds a permission, or changes the type of the one with the same key and range end. As etcd, only the first permission
    /// whose key is not below the new key is compared; the list stays sorted by key (stable for equal keys).
    /// </summary>
    public AuthState RoleGrantPermission(string name, KeyGrant permission)
    {
        var role = Roles.GetValueOrDefault(name) ?? throw new StoreException(StoreErrorCode.RoleNotFound);
        var perms = role.Permissions;
        var idx = 0;
        while (idx < perms.Length && perms[idx].Key.AsSpan().SequenceCompareTo(permission.Key) < 0)
        {
            idx++;
        }

        if (idx < perms.Length && perms[idx].SameRange(permission.Key, permission.RangeEnd))
        {
            perms = perms.SetItem(idx, perms[idx] with { Type = permission.Type });
        }
        else
        {
            perms = [.. perms.Add(permission).OrderBy(p => p.Key, ByteKeyComparer.Instance)]; // OrderBy is stable
        }

        return With(roles: Roles.SetItem(name, role with { Permissions = perms }));
    }

    public AuthState RoleRevokePermission(string name, byte[] key, byte[] rangeEnd)
    {
        var role = Roles.GetValueOrDefault(name) ?? throw new StoreException(StoreErrorCode.RoleNotFound);
        var kept = role.Permissions.RemoveAll(p => p.SameRange(key, rangeEnd));
        if (kept.Length == role.Permissions.Length)
        {
            throw new StoreException(StoreErrorCode.PermissionNotGranted);
        }

        return With(roles: Roles.SetItem(name, role with { Permissions = kept }));
    }

    // ---------------------------------------------------------------- encoding (the "auth" table of the store file)

    private const byte FormatVersion = 1;

    public byte[] Encode()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(FormatVersion);
            w.Write(Enabled);
            w.Write(Revision);
            w.Write(Users.Count);
            foreach (var u in Users.Values)
            {
                w.Write(u.Name);
                w.Write(u.PasswordHash ?? "");
                w.Write(u.NoPassword);
                w.Write(u.Roles.Length);
                foreach (var r in u.Roles)
                {
                    w.Write(r);
                }
            }

            w.Write(Roles.Count);
            foreach (var r in Roles.Values)
            {
                w.Write(r.Name);
                w.Write(r.Permissions.Length);
                foreach (var p in r.Permissions)
                {
                    w.Write((byte)p.Type);
                    w.Write(p.Key.Length);
                    w.Write(p.Key);
                    w.Write(p.RangeEnd.Length);
                    w.Write(p.RangeEnd);
                }
            }
        }

        return ms.ToArray();
    }

    /// <summary>Reads what <see cref="Encode"/> wrote; a record that does not decode throws <see cref="FormatException"/>.</summary>
    public static AuthState Decode(ReadOnlySpan<byte> data)
    {
        try
        {
            using var r = new BinaryReader(new MemoryStream(data.ToArray()), Encoding.UTF8);
            var version = r.ReadByte();
            if (version != FormatVersion)
            {
                throw new FormatException($"the auth record has format {version}; this raftkv reads format {FormatVersion} (a newer raftkv wrote it)");
            }

            var enabled = r.ReadBoolean();
            var revision = r.ReadUInt64();
            var users = ImmutableSortedDictionary.CreateBuilder<string, AuthUser>(StringComparer.Ordinal);
            for (int i = 0, n = r.ReadInt32(); i < n; i++)
            {
                var name = r.ReadString();
                var hash = r.ReadString();
                var noPassword = r.ReadBoolean();
                var roles = ImmutableArray.CreateBuilder<string>();
                for (int j = 0, m = r.ReadInt32(); j < m; j++)
                {
                    roles.Add(r.ReadString());
                }

                users[name] = new AuthUser(name, noPassword ? null : hash, roles.ToImmutable(), noPassword);
            }

            var rolesMap = ImmutableSortedDictionary.CreateBuilder<string, AuthRole>(StringComparer.Ordinal);
            for (int i = 0, n = r.ReadInt32(); i < n; i++)
            {
                var name = r.ReadString();
                var perms = ImmutableArray.CreateBuilder<KeyGrant>();
                for (int j = 0, m = r.ReadInt32(); j < m; j++)
                {
                    var type = (KeyPermissionKind)r.ReadByte();
                    var key = r.ReadBytes(r.ReadInt32());
                    var end = r.ReadBytes(r.ReadInt32());
                    perms.Add(new KeyGrant(type, key, end));
                }

                rolesMap[name] = new AuthRole(name, perms.ToImmutable());
            }

            return new AuthState(users.ToImmutable(), rolesMap.ToImmutable(), enabled, revision);
        }
        catch (EndOfStreamException e)
        {
            throw new FormatException("the auth record is cut short", e);
        }
    }
}

/// <summary>
/// etcd's range permission check (auth/range_perm_cache.go over pkg/adt's interval tree): a permission covers one key, the
/// range [key, range_end), or all keys from key on (range_end "\0"); an empty bound counts as +infinity. A single key is
/// permitted when some permission of the asked type contains it; a range when the permissions that overlap it join without
/// a gap from at or before its start to at or past its end.
/// </summary>
public static class RangePermissions
{
    public static bool Permitted(IEnumerable<KeyGrant> permissions, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, bool write)
    {
        var intervals = new List<(byte[] Begin, byte[] End)>();
        foreach (var p in permissions)
        {
            var applies = p.Type == KeyPermissionKind.ReadWrite || p.Type == (write ? KeyPermissionKind.Write : KeyPermissionKind.Read);
            if (!applies)
            {
                continue;
            }

            if (p.RangeEnd.Length == 0)
            {
                intervals.Add((p.Key, PointEnd(p.Key)));
            }
            else
            {
                intervals.Add((p.Key, p.RangeEnd is [0] ? [] : p.RangeEnd));
            }
        }

        if (rangeEnd.Length == 0)
        {
            // A point: etcd asks whether any interval intersects [key, key+"\0").
            var point = (key.ToArray(), PointEnd(key));
            return intervals.Exists(i => Overlaps(point, i));
        }

        var asked = (Begin: key.ToArray(), End: rangeEnd is [0] ? [] : rangeEnd.ToArray());
        byte[]? minBegin = null;
        byte[]? maxEnd = null;
        foreach (var i in intervals.Where(i => Overlaps(asked, i)).OrderBy(i => i.Begin, AffineComparer.Instance))
        {
            if (minBegin is null)
            {
                minBegin = i.Begin;
                maxEnd = i.End;
                continue;
            }

            if (AffineComparer.Instance.Compare(maxEnd, i.Begin) < 0)
            {
                return false; // a gap
            }

            if (AffineComparer.Instance.Compare(i.End, maxEnd) > 0)
            {
                maxEnd = i.End;
            }
        }

        return minBegin is not null && AffineComparer.Instance.Compare(maxEnd, asked.End) >= 0 && AffineComparer.Instance.Compare(minBegin, asked.Begin) <= 0;
    }

    private static byte[] PointEnd(ReadOnlySpan<byte> key)
    {
        var end = new byte[key.Length + 1];
        key.CopyTo(end);
        return end;
    }

    /// <summary>pkg/adt's Interval.Compare(...) == 0: <paramref name="a"/> is neither left nor right of <paramref name="b"/>.</summary>
    private static bool Overlaps((byte[] Begin, byte[] End) a, (byte[] Begin, byte[] End) b)
    {
        var c = AffineComparer.Instance;
        var leftOf = c.Compare(a.Begin, b.Begin) < 0 && c.Compare(a.End, b.Begin) <= 0;
        var rightOf = c.Compare(a.Begin, b.End) >= 0;
        return !leftOf && !rightOf;
    }

    /// <summary>Bytewise order where the empty array is above every other (pkg/adt's BytesAffineComparable).</summary>
    private sealed class AffineComparer : IComparer<byte[]>
    {
        public static AffineComparer Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y)
        {
            var xe = x is null || x.Length == 0;
            var ye = y is null || y.Length == 0;
            if (xe || ye)
            {
                return xe && ye ? 0 : xe ? 1 : -1;
            }

            return x.AsSpan().SequenceCompareTo(y);
        }
    }
}
