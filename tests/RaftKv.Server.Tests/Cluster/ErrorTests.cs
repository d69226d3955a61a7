using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's limits and error texts, and watch cancellation on a compacted start, over the generated gRPC client.</summary>
public sealed class ErrorTests
{
    [Fact]
    public async Task Limits_and_txn_checks_answer_with_etcds_codes_and_texts()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(0)}");
        var kv = new KV.KVClient(channel);

        var tooLarge = await Assert.ThrowsAsync<RpcException>(() =>
            kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("big"), Value = ByteString.CopyFrom(new byte[1_600_000]) }).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "etcdserver: request is too large"), (tooLarge.StatusCode, tooLarge.Status.Detail));

        var manyOps = new TxnRequest();
        manyOps.Success.AddRange(Enumerable.Range(0, 129).Select(i => new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8($"k{i}") } }));
        var tooMany = await Assert.ThrowsAsync<RpcException>(() => kv.TxnAsync(manyOps).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "etcdserver: too many operations in txn request"), (tooMany.StatusCode, tooMany.Status.Detail));

        var duplicate = new TxnRequest();
        duplicate.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8("same") } });
        duplicate.Success.Add(new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = ByteString.CopyFromUtf8("same") } });
        var dup = await Assert.ThrowsAsync<RpcException>(() => kv.TxnAsync(duplicate).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request"), (dup.StatusCode, dup.Status.Detail));

        // Nothing of the refused requests was written.
        var range = await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFrom([0]), RangeEnd = ByteString.CopyFrom([0]) });
        Assert.Equal(0, range.Count);
    }

    [Fact]
    public async Task A_body_that_is_not_the_methods_protobuf_is_INTERNAL_with_etcds_unmarshalling_text()
    {
        await using var cluster = await TestCluster.StartAsync(size: 1);
        await cluster.WaitForLeaderAsync();
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(0)}");
        var invoker = channel.CreateCallInvoker();
        var raw = Marshallers.Create<byte[]>(b => b, b => b);

        // The same bytes against etcd 3.4.23 gave these statuses (grpc-go's codec error, gogo protobuf's texts).
        var cases = new (string Service, string Method, byte[] Body, string Detail)[]
        {
            ("etcdserverpb.KV", "Put", [0x00, 0x01, 0x02], "grpc: error unmarshalling request: proto: PutRequest: illegal tag 0 (wire type 0)"),
            ("etcdserverpb.KV", "Range", [0x0A, 0x7F, 0x61], "grpc: error unmarshalling request: unexpected EOF"),
            ("etcdserverpb.Cluster", "MemberRemove", [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], "grpc: error unmarshalling request: proto: integer overflow"),
        };
        foreach (var (service, method, body, detail) in cases)
        {
            var m = new Method<byte[], byte[]>(MethodType.Unary, service, method, raw, raw);
            var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(m, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)), body).ResponseAsync);
            Assert.Equal((StatusCode.Internal, detail), (e.StatusCode, e.Status.Detail));
        }

        // A bad message on the Watch stream ends that stream the same way.
        var watch = new Method<byte[], byte[]>(MethodType.DuplexStreaming, "etcdserverpb.Watch", "Watch", raw, raw);
        using var call = invoker.AsyncDuplexStreamingCall(watch, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
        await call.RequestStream.WriteAsync([0x0A, 0x7F, 0x61]);
        var streamError = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Internal, streamError.StatusCode);

        // The member still serves well-formed requests.
        await new KV.KVClient(channel).PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("after-garbage"), Value = ByteString.CopyFromUtf8("ok") });
    }

    [Fact]
    public async Task A_watch_from_a_compacted_revision_is_canceled_with_the_compact_revision()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(1)}");
        var kv = new KV.KVClient(channel);
        for (var i = 0; i < 4; i++)
        {
            await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("w"), Value = ByteString.CopyFromUtf8($"{i}") });
        }

        await kv.CompactAsync(new CompactionRequest { Revision = 4 });
        using var call = new Watch.WatchClient(channel).Watch();
        await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("w"), StartRevision = 2, WatchId = 7 } });

        var responses = new List<WatchResponse>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!responses.Any(r => r.Canceled) && await call.ResponseStream.MoveNext(timeout.Token))
        {
            responses.Add(call.ResponseStream.Current);
        }

        Assert.True(responses[0].Created && responses[0].WatchId == 7, string.Join("; ", responses));
        var canceled = responses.Single(r => r.Canceled);
        Assert.Equal((7L, 4L), (canceled.WatchId, canceled.CompactRevision));
        Assert.Empty(responses.SelectMany(r => r.Events));
        await call.RequestStream.CompleteAsync();
    }
}
