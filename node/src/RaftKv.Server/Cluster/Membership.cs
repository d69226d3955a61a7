using Google.Protobuf;
using RaftKv.Protocol.Internal;

namespace RaftKv.Server.Cluster;

/// <summary>
/// The cluster's members as the applied log says (names, peer and client URLs, learner flag) plus ids removed for good.
/// Changed only by the apply path; read from anywhere (thread-safe). Kept in <c>DATA_DIR/member/raftkv-members</c> and in
/// snapshots, so a restarted member knows its peers before replaying the log.
/// </summary>
internal sealed class Membership
{
    public const string FileName = "raftkv-members";

    private readonly Lock _lock = new();
    private readonly SortedDictionary<ulong, Member> _members = [];
    private readonly HashSet<ulong> _removed = [];

    public Membership(ulong clusterId) => ClusterId = clusterId;

    public ulong ClusterId { get; }

    /// <summary>Raft index of the last membership change applied here; changes at or below it are not applied again.</summary>
    public ulong AppliedIndex { get; private set; }

    public event Action? Changed;

    public IReadOnlyList<Member> List()
    {
        lock (_lock)
        {
            return [.. _members.Values.Select(m => m.Clone())];
        }
    }

    public Member? Get(ulong id)
    {
        lock (_lock)
        {
            return _members.TryGetValue(id, out var m) ? m.Clone() : null;
        }
    }

    public bool IsRemoved(ulong id)
    {
        lock (_lock)
        {
            return _removed.Contains(id);
        }
    }

    /// <summary>Adds or replaces a member (a learner being promoted keeps its attributes).</summary>
    public void Upsert(Member member, ulong index)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(member.Id, out var existing))
            {
                if (member.Name.Length == 0)
                {
                    member.Name = existing.Name;
                }

                if (member.ClientUrls.Count == 0)
                {
                    member.ClientUrls.AddRange(existing.ClientUrls);
                }
            }

            _members[member.Id] = member.Clone();
            AppliedIndex = Math.Max(AppliedIndex, index);
        }

        Changed?.Invoke();
    }

    public void Remove(ulong id, ulong index)
    {
        lock (_lock)
        {
            _members.Remove(id);
            _removed.Add(id);
            AppliedIndex = Math.Max(AppliedIndex, index);
        }

        Changed?.Invoke();
    }

    /// <summary>Applies a change that does not touch Raft's configuration (attributes, URL update).</summary>
    public void Update(ulong id, Action<Member> change)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(id, out var m))
            {
                change(m);
            }
        }

        Changed?.Invoke();
    }

    public MembershipState ToState()
    {
        lock (_lock)
        {
            var s = new MembershipState { ClusterId = ClusterId, AppliedIndex = AppliedIndex };
            s.Members.AddRange(_members.Values.Select(m => m.Clone()));
            s.Removed.AddRange(_removed.Order());
            return s;
        }
    }

    public static Membership FromState(MembershipState state)
    {
        var m = new Membership(state.ClusterId) { AppliedIndex = state.AppliedIndex };
        foreach (var member in state.Members)
        {
            m._members[member.Id] = member;
        }

        m._removed.UnionWith(state.Removed);
        return m;
    }

    /// <summary>Writes the state to <paramref name="memberDir"/> atomically (temp file, fsync, rename).</summary>
    public void Save(string memberDir)
    {
        var bytes = ToState().ToByteArray();
        var path = Path.Combine(memberDir, FileName);
        var temp = path + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    public static Membership? Load(string memberDir)
    {
        var path = Path.Combine(memberDir, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return FromState(MembershipState.Parser.ParseFrom(File.ReadAllBytes(path)));
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new IOException($"'{path}' is damaged ({e.Message}); restore the member from a snapshot or remove and re-add it.", e);
        }
    }
}
