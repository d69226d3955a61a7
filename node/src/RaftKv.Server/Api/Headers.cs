using RaftKv.Protocol.Etcd;
using RaftKv.Server.Node;

namespace RaftKv.Server.Api;

/// <summary>Fills etcd's response header: cluster_id, member_id, raft_term, revision.</summary>
internal sealed class Headers
{
    private readonly RaftMember _member;
    private readonly Func<long> _revision;

    public Headers(RaftMember member, Func<long> revision)
    {
        _member = member;
        _revision = revision;
    }

    public ResponseHeader Make(long? revision = null) => new()
    {
        ClusterId = _member.ClusterId,
        MemberId = _member.MemberId,
        RaftTerm = _member.Term,
        Revision = revision ?? _revision(),
    };
}
