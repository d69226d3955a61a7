using System.Diagnostics;
using Grpc.Core;
using RaftKv.Raft;
using RaftKv.Server.Kv;
using RaftKv.Server.Observability;
using RaftKv.Storage.Mvcc;
using Etcd = RaftKv.Protocol.Etcd;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>What the inbound side of the peer transport hands messages to.</summary>
internal interface IPeerInbox
{
    ulong ClusterId { get; }

    ulong MemberId { get; }

    /// <summary>A message from a peer for the local Raft node; must not block.</summary>
    void Deliver(Message message);

    /// <summary>Where received snapshot images are written (<c>member/snap</c>); null: snapshots with an image are refused.</summary>
    string? SnapshotDirectory { get; }

    /// <summary>The membership as this member knows it (for members joining an existing cluster).</summary>
    Wire.MembersResponse Members();
}

/// <summary>
/// Inbound half of the peer transport (served on the peer URLs): streams of message batches, snapshots, RTT echo,
/// membership for joiners, the store's HashKV for the corruption checks. Traffic from another cluster or meant for another member is refused with FailedPrecondition.
/// </summary>
internal sealed class PeerService : Wire.Peer.PeerBase
{
    private readonly IPeerInbox _inbox;
    private readonly NodeMetrics _metrics;
    private readonly CancellationToken _stopping;
    private readonly Func<long, HashKvResponse>? _hashKv;
    private readonly Func<Etcd.MemberPromoteRequest, CancellationToken, Task<Etcd.MemberPromoteResponse>>? _promote;

    /// <param name="inbox">Receives the messages.</param>
    /// <param name="metrics">Byte and failure counters.</param>
    /// <param name="stopping">Ends open streams when the member shuts down (otherwise the server would wait for peers to hang up).</param>
    /// <param name="hashKv">The store's HashKV at a revision (0: current); null answers HashKV with UNIMPLEMENTED.</param>
    /// <param name="promote">The leader's part of a learner promotion a follower forwards; null answers Promote with UNIMPLEMENTED.</param>
    public PeerService(IPeerInbox inbox, NodeMetrics metrics, CancellationToken stopping, Func<long, HashKvResponse>? hashKv = null,
        Func<Etcd.MemberPromoteRequest, CancellationToken, Task<Etcd.MemberPromoteResponse>>? promote = null)
    {
        _promote = promote;
        _inbox = inbox;
        _metrics = metrics;
        _stopping = stopping;
        _hashKv = hashKv;
    }

    public override async Task<Wire.StreamClosed> Stream(IAsyncStreamReader<Wire.MessageBatch> requestStream, ServerCallContext context)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _stopping);
        try
        {
            await ReceiveAsync(requestStream, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "member is stopping"));
        }

        return new Wire.StreamClosed();
    }

    private async Task ReceiveAsync(IAsyncStreamReader<Wire.MessageBatch> requestStream, CancellationToken cancellationToken)
    {
        // One sender per stream: its counter is looked up once, not per batch.
        (ulong From, Prometheus.Counter.Child Bytes)? received = null;
        await foreach (var batch in requestStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            Check(batch.ClusterId, batch.From, batch.To);
            if (received?.From != batch.From)
            {
                received = (batch.From, _metrics.PeerReceivedBytes.WithLabels(NodeMetrics.IdLabel(batch.From)));
            }

            received.Value.Bytes.Inc(batch.CalculateSize());
            foreach (var m in batch.Messages)
            {
                Message decoded;
                try
                {
                    decoded = PeerCodec.Decode(m);
                }
                catch (InvalidDataException e)
                {
                    _metrics.PeerReceivedFailures.WithLabels(NodeMetrics.IdLabel(batch.From)).Inc();
                    throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
                }

                _inbox.Deliver(decoded);
            }
        }
    }

    public override async Task<Wire.SnapshotReceived> SendSnapshot(IAsyncStreamReader<Wire.SnapshotChunk> requestStream, ServerCallContext context)
    {
        var started = Stopwatch.GetTimestamp();
        ulong from = 0;
        try
        {
            var (message, bytes) = await SnapshotReceiver.ReceiveAsync(requestStream, first =>
            {
                Check(first.ClusterId, first.From, first.To);
                from = first.From;
            }, _inbox.SnapshotDirectory, context.CancellationToken).ConfigureAwait(false);
            _inbox.Deliver(message);
            _metrics.SnapshotReceiveSuccess.WithLabels(NodeMetrics.IdLabel(from)).Inc();
            _metrics.SnapshotReceiveDuration.WithLabels(NodeMetrics.IdLabel(from)).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            return new Wire.SnapshotReceived { Bytes = bytes };
        }
        catch (Exception e) when (from != 0 && e is RpcException or IOException)
        {
            _metrics.SnapshotReceiveFailures.WithLabels(NodeMetrics.IdLabel(from)).Inc();
            throw e is RpcException ? e : new RpcException(new Status(StatusCode.Internal, "storing the snapshot image failed: " + e.Message));
        }
    }

    public override Task<Wire.ProbeReply> Echo(Wire.Probe request, ServerCallContext context)
    {
        if (request.ClusterId != _inbox.ClusterId)
        {
            throw ClusterMismatch(request.ClusterId, request.From);
        }

        return Task.FromResult(new Wire.ProbeReply { MemberId = _inbox.MemberId, Sequence = request.Sequence });
    }

    public override Task<Wire.MembersResponse> Members(Wire.MembersRequest request, ServerCallContext context) =>
        Task.FromResult(_inbox.Members());

    public override Task<Wire.HashKVResponse> HashKV(Wire.HashKVRequest request, ServerCallContext context)
    {
        if (request.ClusterId != _inbox.ClusterId)
        {
            throw ClusterMismatch(request.ClusterId, request.From);
        }

        if (_hashKv is null)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "this member serves no store hash"));
        }

        try
        {
            var r = _hashKv(request.Revision);
            return Task.FromResult(new Wire.HashKVResponse
            {
                MemberId = _inbox.MemberId,
                Revision = r.Revision,
                Hash = r.Hash,
                CompactRevision = r.CompactRevision,
                HashRevision = r.HashRevision,
            });
        }
        catch (StoreException e)
        {
            throw StoreMapping.ToRpc(e);
        }
    }

    public override Task<Etcd.MemberPromoteResponse> Promote(Wire.PromoteRequest request, ServerCallContext context)
    {
        if (request.ClusterId != _inbox.ClusterId)
        {
            throw ClusterMismatch(request.ClusterId, request.From);
        }

        return _promote is null
            ? throw new RpcException(new Status(StatusCode.Unimplemented, "this member does not take forwarded promotions"))
            : _promote(request.Request ?? new Etcd.MemberPromoteRequest(), context.CancellationToken);
    }

    private void Check(ulong clusterId, ulong from, ulong to)
    {
        if (clusterId != _inbox.ClusterId)
        {
            throw ClusterMismatch(clusterId, from);
        }

        if (to != _inbox.MemberId)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"member {from:x} sent to member {to:x}, but this is member {_inbox.MemberId:x}; check --initial-cluster on both members"));
        }
    }

    private RpcException ClusterMismatch(ulong clusterId, ulong from) =>
        new(new Status(StatusCode.FailedPrecondition,
            $"request cluster ID mismatch: member {from:x} belongs to cluster {clusterId:x}, this member to cluster {_inbox.ClusterId:x}"));
}
