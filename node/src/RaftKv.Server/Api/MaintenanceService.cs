using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Server.Node;

namespace RaftKv.Server.Api;

/// <summary>etcd's Maintenance service: Status and MoveLeader from the Raft member; store operations come with the store.</summary>
internal sealed class MaintenanceService : Maintenance.MaintenanceBase
{
    private readonly RaftMember _member;
    private readonly Headers _headers;
    private readonly long _quotaBytes;

    public MaintenanceService(RaftMember member, Headers headers, long quotaBytes)
    {
        _member = member;
        _headers = headers;
        _quotaBytes = quotaBytes;
    }

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var response = new StatusResponse
        {
            Header = _headers.Make(),
            Version = EtcdVersion.Server,
            Leader = _member.Leader,
            RaftIndex = _member.CommitIndex,
            RaftTerm = _member.Term,
            RaftAppliedIndex = _member.AppliedIndex,
            IsLearner = _member.IsLearner,
            DbSizeQuota = _quotaBytes,
        };
        return Task.FromResult(response);
    }

    public override async Task<MoveLeaderResponse> MoveLeader(MoveLeaderRequest request, ServerCallContext context)
    {
        if (_member.Leader != _member.MemberId)
        {
            throw EtcdErrors.NotLeader;
        }

        var target = _member.Membership.Get(request.TargetID);
        if (target is null || target.IsLearner || target.Id == _member.MemberId)
        {
            throw EtcdErrors.BadLeaderTransferee;
        }

        await _member.TransferLeadershipAsync(request.TargetID, context.CancellationToken).ConfigureAwait(false);
        return new MoveLeaderResponse { Header = _headers.Make() };
    }
}
