using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Kv;
using RaftKv.Server.Node;
using S = RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Api;

/// <summary>
/// etcd's KV service: writes go through Raft and are answered from the apply result; linearizable reads wait for a
/// ReadIndex barrier and then read the local store; serializable reads read it at once.
/// </summary>
internal sealed class KvService : KV.KVBase
{
    private readonly RaftMember _member;
    private readonly KvStateMachine _kv;
    private readonly Headers _headers;
    private readonly int _maxRequestBytes;
    private readonly Auth.AuthGate _gate;

    public KvService(RaftMember member, KvStateMachine kv, Headers headers, int maxRequestBytes, Auth.AuthGate gate)
    {
        _gate = gate;
        _member = member;
        _kv = kv;
        _headers = headers;
        _maxRequestBytes = maxRequestBytes;
    }

    public override async Task<RangeResponse> Range(RangeRequest request, ServerCallContext context)
    {
        if (request.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }

        if (!request.Serializable)
        {
            await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
        }

        var caller = await _gate.CheckReadAsync(context, request.Key.Memory, request.RangeEnd.Memory).ConfigureAwait(false);
        var response = StoreCall(() => StoreMapping.ToWire(_kv.Store.Range(StoreMapping.ToStore(request)), _headers));
        _gate.EnsureCurrent(caller);
        return response;
    }

    public override async Task<PutResponse> Put(PutRequest request, ServerCallContext context)
    {
        if (request.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }

        if (request.IgnoreValue && !request.Value.IsEmpty)
        {
            throw EtcdErrors.ValueProvided;
        }

        if (request.IgnoreLease && request.Lease != 0)
        {
            throw EtcdErrors.LeaseProvided;
        }

        var result = await ProposeWriteAsync(new InternalRequest { Put = request }, StoreMapping.ToStore(request), context).ConfigureAwait(false);
        return StoreMapping.ToWire((S.PutResponse)result!, _headers);
    }

    public override async Task<DeleteRangeResponse> DeleteRange(DeleteRangeRequest request, ServerCallContext context)
    {
        if (request.Key.IsEmpty)
        {
            throw EtcdErrors.EmptyKey;
        }

        var result = await ProposeWriteAsync(new InternalRequest { DeleteRange = request }, null, context).ConfigureAwait(false);
        return StoreMapping.ToWire((S.DeleteRangeResponse)result!, _headers);
    }

    public override async Task<TxnResponse> Txn(TxnRequest request, ServerCallContext context)
    {
        var storeRequest = StoreMapping.ToStore(request);
        if (IsReadOnly(request))
        {
            if (!IsSerializable(request))
            {
                await _member.ReadBarrierAsync(context.CancellationToken).ConfigureAwait(false);
            }

            var caller = await _gate.CheckReadTxnAsync(context, request).ConfigureAwait(false);
            var response = StoreCall(() => StoreMapping.ToWire(_kv.Store.ReadTxn(storeRequest), _headers));
            _gate.EnsureCurrent(caller);
            return response;
        }

        var result = await ProposeWriteAsync(new InternalRequest { Txn = request }, storeRequest, context).ConfigureAwait(false);
        return StoreMapping.ToWire((S.TxnResponse)result!, _headers);
    }

    public override async Task<CompactionResponse> Compact(CompactionRequest request, ServerCallContext context)
    {
        var result = await ProposeWriteAsync(new InternalRequest { Compaction = request }, null, context).ConfigureAwait(false);
        return new CompactionResponse { Header = _headers.Make(((S.CompactionResponse)result!).Revision) };
    }

    /// <summary>
    /// Size limit, quota (raising the NOSPACE alarm through Raft as etcd does), then the proposal, stamped with the caller:
    /// permissions are checked when it is applied.
    /// </summary>
    private async Task<object?> ProposeWriteAsync(InternalRequest request, object? storeRequest, ServerCallContext context)
    {
        await _gate.StampAsync(request, context).ConfigureAwait(false);
        if (request.CalculateSize() > _maxRequestBytes)
        {
            throw EtcdErrors.RequestTooLarge;
        }

        if (storeRequest is not null && S.MvccStore.Cost(storeRequest) > 0)
        {
            if (_kv.Store.NoSpaceAlarm)
            {
                throw EtcdErrors.NoSpace;
            }

            if (!_kv.Store.QuotaAvailable(storeRequest))
            {
                var alarm = new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Activate, MemberID = _member.MemberId, Alarm = AlarmType.Nospace };
                await _member.ProposeAsync(new InternalRequest { Alarm = alarm }, context.CancellationToken).ConfigureAwait(false);
                throw EtcdErrors.NoSpace;
            }
        }

        return await _member.ProposeAsync(request, context.CancellationToken).ConfigureAwait(false);
    }

    private static T StoreCall<T>(Func<T> read)
    {
        try
        {
            return read();
        }
        catch (S.StoreException e)
        {
            throw StoreMapping.ToRpc(e);
        }
    }

    private static bool IsReadOnly(TxnRequest txn) =>
        txn.Success.Concat(txn.Failure).All(op => op.RequestCase switch
        {
            RequestOp.RequestOneofCase.RequestRange => true,
            RequestOp.RequestOneofCase.RequestTxn => IsReadOnly(op.RequestTxn),
            _ => false,
        });

    private static bool IsSerializable(TxnRequest txn) =>
        txn.Success.Concat(txn.Failure).All(op => op.RequestCase switch
        {
            RequestOp.RequestOneofCase.RequestRange => op.RequestRange.Serializable,
            RequestOp.RequestOneofCase.RequestTxn => IsSerializable(op.RequestTxn),
            _ => false,
        });
}
