using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Kv;
using RaftKv.Server.Node;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Api;

/// <summary>etcd's Maintenance service: Status, alarms, hashes, defragment, snapshot stream, leadership transfer.</summary>
internal sealed class MaintenanceService : Maintenance.MaintenanceBase
{
    /// <summary>Bytes per snapshot message, as etcd sends them.</summary>
    private const int SnapshotChunkBytes = 32 * 1024;

    private readonly RaftMember _member;
    private readonly KvStateMachine _kv;
    private readonly Headers _headers;
    private readonly long _quotaBytes;
    private readonly Auth.AuthGate _gate;

    /// <param name="member">The member served.</param>
    /// <param name="kv">Its store.</param>
    /// <param name="headers">Response headers.</param>
    /// <param name="quotaBytes">The backend quota reported by Status.</param>
    /// <param name="gate">With auth enabled, Hash, HashKV, Defragment and Snapshot need the root role (etcd's authMaintenanceServer).</param>
    public MaintenanceService(RaftMember member, KvStateMachine kv, Headers headers, long quotaBytes, Auth.AuthGate gate)
    {
        _gate = gate;
        _member = member;
        _kv = kv;
        _headers = headers;
        _quotaBytes = quotaBytes;
    }

    public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context)
    {
        var size = _kv.Store.SizeBytes;
        var response = new StatusResponse
        {
            Header = _headers.Make(),
            Version = EtcdVersion.Server,
            DbSize = size,
            DbSizeInUse = size,
            Leader = _member.Leader,
            RaftIndex = _member.CommitIndex,
            RaftTerm = _member.Term,
            RaftAppliedIndex = _member.AppliedIndex,
            IsLearner = _member.IsLearner,
            DbSizeQuota = _quotaBytes,
        };
        if (_kv.Store.NoSpaceAlarm)
        {
            response.Errors.Add($"memberID:{_member.MemberId} alarm:NOSPACE ");
        }

        if (_kv.Store.CorruptAlarmMember is not 0 and var corrupt)
        {
            response.Errors.Add($"memberID:{corrupt} alarm:CORRUPT ");
        }

        return Task.FromResult(response);
    }

    public override async Task<AlarmResponse> Alarm(AlarmRequest request, ServerCallContext context)
    {
        if (request.Action != AlarmRequest.Types.AlarmAction.Get && request.Alarm is AlarmType.Nospace or AlarmType.Corrupt)
        {
            await _member.ProposeAsync(new InternalRequest { Alarm = request }, context.CancellationToken).ConfigureAwait(false);
        }

        var response = new AlarmResponse { Header = _headers.Make() };
        if (_kv.Store.NoSpaceAlarm && request.Action == AlarmRequest.Types.AlarmAction.Get)
        {
            // The alarm is cluster-wide state in the store; it is reported for the member that answers.
            response.Alarms.Add(new AlarmMember { MemberID = _member.MemberId, Alarm = AlarmType.Nospace });
        }

        if (_kv.Store.CorruptAlarmMember is not 0 and var corruptMember && request.Action == AlarmRequest.Types.AlarmAction.Get)
        {
            // etcd's CORRUPT alarm names the member whose store differs (raised by the leader's periodic check).
            response.Alarms.Add(new AlarmMember { MemberID = corruptMember, Alarm = AlarmType.Corrupt });
        }

        return response;
    }

    public override async Task<HashResponse> Hash(HashRequest request, ServerCallContext context)
    {
        await _gate.RequireRootForMaintenanceAsync(context).ConfigureAwait(false);
        var (hash, revision) = _kv.Store.Hash();
        return new HashResponse { Header = _headers.Make(revision), Hash = hash };
    }

    public override async Task<HashKVResponse> HashKV(HashKVRequest request, ServerCallContext context)
    {
        await _gate.RequireRootForMaintenanceAsync(context).ConfigureAwait(false);
        try
        {
            var r = _kv.Store.HashKv(request.Revision);
            return new HashKVResponse { Header = _headers.Make(r.Revision), Hash = r.Hash, CompactRevision = r.CompactRevision, HashRevision = r.HashRevision };
        }
        catch (S.StoreException e)
        {
            throw StoreMapping.ToRpc(e);
        }
    }

    public override async Task<DefragmentResponse> Defragment(DefragmentRequest request, ServerCallContext context)
    {
        await _gate.RequireRootForMaintenanceAsync(context).ConfigureAwait(false);
        _kv.Store.Defragment();
        return new DefragmentResponse { Header = _headers.Make() };
    }

    /// <summary>
    /// The store as one consistent copy, in chunks with the bytes remaining, followed by its SHA-256 (the 32 bytes etcdctl
    /// checks when restoring), as etcd sends it.
    /// </summary>
    public override async Task Snapshot(SnapshotRequest request, IServerStreamWriter<SnapshotResponse> responseStream, ServerCallContext context)
    {
        await _gate.RequireRootForMaintenanceAsync(context).ConfigureAwait(false);
        var path = Path.Combine(Path.GetTempPath(), $"raftkv-snapshot-{Guid.NewGuid():N}.db");
        try
        {
            var header = _headers.Make();
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                _kv.Store.WriteSnapshot(file);
            }

            await using var source = new FileStream(path, FileMode.Open, FileAccess.Read);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var remaining = source.Length;
            var buffer = new byte[SnapshotChunkBytes];
            while (remaining > 0)
            {
                var read = await source.ReadAsync(buffer, context.CancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                sha.AppendData(buffer, 0, read);
                remaining -= read;
                await responseStream.WriteAsync(new SnapshotResponse
                {
                    Header = header,
                    RemainingBytes = (ulong)remaining + 32,
                    Blob = ByteString.CopyFrom(buffer, 0, read),
                }, context.CancellationToken).ConfigureAwait(false);
            }

            await responseStream.WriteAsync(new SnapshotResponse
            {
                Header = header,
                RemainingBytes = 0,
                Blob = ByteString.CopyFrom(sha.GetHashAndReset()),
            }, context.CancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(path);
        }
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
