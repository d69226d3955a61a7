using System.Net;
using Google.Protobuf;
using Grpc.Core;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>
/// Feeds the client API random and malformed requests while the workload runs: garbage bytes and messages of the
/// wrong type as gRPC bodies, broken gRPC framing, huge sizes, inverted ranges, unknown lease and member ids. Every
/// one must get an answer (an error, or an empty result where etcd gives one); an answer of gRPC status UNKNOWN or
/// INTERNAL to a well-formed request means a raftkv handler threw, and fails the scenario. The runner then checks every
/// member is still up, the cluster healthy and the workload's history intact.
/// </summary>
internal static class BadInput
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    // Methods that change nothing whatever body they get (random bytes may parse as a valid request).
    private static readonly (string Service, string Method)[] ReadOnly =
    [
        ("etcdserverpb.KV", "Range"), ("etcdserverpb.Maintenance", "Status"), ("etcdserverpb.Maintenance", "HashKV"),
        ("etcdserverpb.Cluster", "MemberList"), ("etcdserverpb.Lease", "LeaseLeases"), ("etcdserverpb.Lease", "LeaseTimeToLive"),
        ("raftkv.admin.Admin", "Measurements"),
    ];

    // Methods that write; they only get bodies that cannot parse.
    private static readonly (string Service, string Method)[] Writing =
    [
        ("etcdserverpb.KV", "Put"), ("etcdserverpb.KV", "DeleteRange"), ("etcdserverpb.KV", "Txn"), ("etcdserverpb.KV", "Compact"),
        ("etcdserverpb.Lease", "LeaseGrant"), ("etcdserverpb.Lease", "LeaseRevoke"), ("etcdserverpb.Cluster", "MemberAdd"),
        ("etcdserverpb.Cluster", "MemberRemove"), ("etcdserverpb.Maintenance", "MoveLeader"), ("etcdserverpb.Maintenance", "Alarm"),
    ];

    public static async Task RunAsync(ScenarioContext c)
    {
        var requests = 0;
        while (c.Running)
        {
            var member = c.Pick([.. c.Cluster.Current]);
            requests += await GarbageBodiesAsync(c, member);
            requests += await BrokenFramingAsync(c, member);
            requests += await SemanticAsync(c, member);
            await c.PauseAsync(100, 300);
        }

        c.Notes.Add($"{requests} bad requests answered");
    }

    private static async Task<int> GarbageBodiesAsync(ScenarioContext c, ChaosMember member)
    {
        var invoker = member.Channel.CreateCallInvoker();
        var count = 0;
        for (var i = 0; i < 10; i++)
        {
            var (service, method) = ReadOnly[c.Random.Next(ReadOnly.Length)];
            var body = new byte[c.Random.Next(0, 300)];
            c.Random.NextBytes(body);
            await SendRawAsync(invoker, service, method, body, mustFail: false, c);
            count++;
        }

        // Bodies that cannot be parsed: field number 0, a length running past the end, a varint that never ends.
        byte[][] unparsable = [[0x00, 0x01, 0x02], [0x0A, 0x7F, 0x61], [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [0x0F]];
        foreach (var (service, method) in Writing)
        {
            await SendRawAsync(invoker, service, method, unparsable[c.Random.Next(unparsable.Length)], mustFail: true, c, unmarshalError: true);
            count++;
        }

        // A message of another type whose fields clash in wire type: a PutRequest (bytes field 1) where a uint64 id is expected.
        var put = new PutRequest { Key = ByteString.CopyFromUtf8("bad/wrong-type"), Value = ByteString.CopyFromUtf8("x") }.ToByteArray();
        await SendRawAsync(invoker, "etcdserverpb.Maintenance", "MoveLeader", put, mustFail: true, c);
        await SendRawAsync(invoker, "etcdserverpb.Cluster", "MemberRemove", put, mustFail: true, c);
        await SendRawAsync(invoker, "etcdserverpb.Lease", "LeaseRevoke", put, mustFail: true, c);
        return count + 3;
    }

    private static async Task SendRawAsync(CallInvoker invoker, string service, string method, byte[] body, bool mustFail, ScenarioContext c, bool unmarshalError = false)
    {
        var m = new Method<byte[], byte[]>(MethodType.Unary, service, method, Raw, Raw);
        try
        {
            await invoker.AsyncUnaryCall(m, null, new CallOptions(deadline: ChaosCluster.Deadline(), cancellationToken: c.Cancellation), body);
            if (mustFail)
            {
                throw new ChaosFailure($"{service}/{method} accepted an unparsable body {Convert.ToHexString(body)}");
            }
        }
        catch (RpcException e) when (unmarshalError)
        {
            // etcd (grpc-go) answers a body that does not parse with INTERNAL "grpc: error unmarshalling request: ...".
            if (e.StatusCode != StatusCode.Internal || !e.Status.Detail.StartsWith("grpc: error unmarshalling request: ", StringComparison.Ordinal))
            {
                throw new ChaosFailure($"{service}/{method} answered an unparsable body {Convert.ToHexString(body)} with {e.StatusCode} '{e.Status.Detail}', " +
                    "not INTERNAL 'grpc: error unmarshalling request: ...' as etcd does");
            }
        }
        catch (RpcException)
        {
            // Any error will do: a message of another type may parse (unknown fields are skipped) and be refused by raftkv.
        }
    }

    private static async Task<int> BrokenFramingAsync(ScenarioContext c, ChaosMember member)
    {
        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        byte[] valid = new RangeRequest { Key = ByteString.CopyFromUtf8("bad/x") }.ToByteArray();
        var cases = new (string What, byte[] Body, string ContentType)[]
        {
            ("length prefix beyond the body", [0, 0, 0, 0x10, 0, .. valid], "application/grpc"),
            ("compressed flag without an encoding", [1, 0, 0, 0, (byte)valid.Length, .. valid], "application/grpc"),
            ("short frame header", [0, 0, 0], "application/grpc"),
            ("4 GiB length prefix", [0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], "application/grpc"),
            ("two messages for a unary call", [0, 0, 0, 0, (byte)valid.Length, .. valid, 0, 0, 0, 0, (byte)valid.Length, .. valid], "application/grpc"),
            ("not a gRPC content type", [0, 0, 0, 0, (byte)valid.Length, .. valid], "text/plain"),
        };
        foreach (var (what, body, contentType) in cases)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{member.ClientUrl}/etcdserverpb.KV/Range")
            {
                Content = new ByteArrayContent(body),
            };
            request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            request.Headers.TryAddWithoutValidation("TE", "trailers");
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(c.Cancellation);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                using var response = await http.SendAsync(request, timeout.Token);
                _ = await response.Content.ReadAsByteArrayAsync(timeout.Token);
                var status = response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First()
                    : response.Headers.TryGetValues("grpc-status", out var h) ? h.First() : null;
                if (response.StatusCode == HttpStatusCode.OK && status == "0")
                {
                    throw new ChaosFailure($"Range with {what} was answered as a success");
                }
            }
            catch (HttpRequestException e)
            {
                // The server reset the stream or the connection: also a refusal.
                c.Log.Add($"Range with {what}: {e.Message}");
            }
        }

        return cases.Length;
    }

    private static async Task<int> SemanticAsync(ScenarioContext c, ChaosMember member)
    {
        var kv = new KV.KVClient(member.Channel);
        var lease = new Lease.LeaseClient(member.Channel);
        var cluster = new Cluster.ClusterClient(member.Channel);
        var maintenance = new Maintenance.MaintenanceClient(member.Channel);
        var unknownId = (long)(c.Random.NextInt64(1, long.MaxValue) | 0x4000_0000_0000_0000);
        var count = 0;

        async Task Expect(string what, Func<Task> call, params StatusCode[] allowed)
        {
            count++;
            try
            {
                await call();
                if (allowed.Length > 0 && !allowed.Contains(StatusCode.OK))
                {
                    throw new ChaosFailure($"{what}: succeeded, expected {string.Join(" or ", allowed)}");
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                // The cluster is busy (a leader change under load); not an answer about the input.
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unknown or StatusCode.Internal)
            {
                throw new ChaosFailure($"{what}: answered {e.StatusCode} '{e.Status.Detail}' (a handler threw?)");
            }
            catch (RpcException e) when (allowed.Length > 0 && !allowed.Contains(e.StatusCode))
            {
                throw new ChaosFailure($"{what}: answered {e.StatusCode} '{e.Status.Detail}', expected {string.Join(" or ", allowed)}");
            }
            catch (RpcException)
            {
            }
        }

        DateTime D() => ChaosCluster.Deadline();
        var big = ByteString.CopyFrom(new byte[(2 * 1024 * 1024) + c.Random.Next(1000)]);
        await Expect("put of a 2 MiB value", () => kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("bad/big"), Value = big }, deadline: D()).ResponseAsync,
            StatusCode.InvalidArgument, StatusCode.ResourceExhausted);
        await Expect("put with an empty key", () => kv.PutAsync(new PutRequest { Value = ByteString.CopyFromUtf8("x") }, deadline: D()).ResponseAsync,
            StatusCode.InvalidArgument);
        await Expect("put with an unknown lease", () => kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("bad/lease"), Lease = unknownId }, deadline: D()).ResponseAsync,
            StatusCode.NotFound);
        await Expect("inverted range", async () =>
        {
            var r = await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(Workload.Prefix + "zzzz"), RangeEnd = ByteString.CopyFromUtf8(Workload.Prefix) }, deadline: D());
            if (r.Kvs.Count != 0)
            {
                throw new ChaosFailure($"inverted range returned {r.Kvs.Count} keys");
            }
        }, StatusCode.OK, StatusCode.InvalidArgument);
        await Expect("inverted delete range", async () =>
        {
            var r = await kv.DeleteRangeAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(Workload.Prefix + "zzzz"), RangeEnd = ByteString.CopyFromUtf8(Workload.Prefix) }, deadline: D());
            if (r.Deleted != 0)
            {
                throw new ChaosFailure($"inverted delete range deleted {r.Deleted} keys");
            }
        }, StatusCode.OK, StatusCode.InvalidArgument);
        await Expect("range at a negative revision", () => kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("bad/x"), Revision = -5 }, deadline: D()).ResponseAsync);
        await Expect("range at a future revision", () => kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("bad/x"), Revision = long.MaxValue }, deadline: D()).ResponseAsync,
            StatusCode.OutOfRange);
        await Expect("range with a negative limit", () => kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("\0"), RangeEnd = ByteString.CopyFromUtf8("\0"), Limit = -1 }, deadline: D()).ResponseAsync);
        await Expect("range with an unknown sort target", () => kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("bad/"), RangeEnd = ByteString.CopyFromUtf8("bad0"), SortOrder = (RangeRequest.Types.SortOrder)7, SortTarget = (RangeRequest.Types.SortTarget)42 }, deadline: D()).ResponseAsync);
        var tooMany = new TxnRequest();
        for (var i = 0; i < 200; i++)
        {
            tooMany.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = ByteString.CopyFromUtf8($"bad/txn{i}") } });
        }

        await Expect("txn with 200 operations", () => kv.TxnAsync(tooMany, deadline: D()).ResponseAsync, StatusCode.InvalidArgument);
        await Expect("txn with an empty request op", () => kv.TxnAsync(new TxnRequest { Success = { new RequestOp() } }, deadline: D()).ResponseAsync);
        await Expect("txn compare with an unknown target", () => kv.TxnAsync(new TxnRequest
        {
            Compare = { new Compare { Key = ByteString.CopyFromUtf8("bad/x"), Target = (Compare.Types.CompareTarget)9, Result = (Compare.Types.CompareResult)9 } },
        }, deadline: D()).ResponseAsync);
        await Expect("compact to a future revision", () => kv.CompactAsync(new CompactionRequest { Revision = long.MaxValue / 2 }, deadline: D()).ResponseAsync, StatusCode.OutOfRange);
        await Expect("compact to a negative revision", () => kv.CompactAsync(new CompactionRequest { Revision = -1 }, deadline: D()).ResponseAsync);
        await Expect("revoke an unknown lease", () => lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = unknownId }, deadline: D()).ResponseAsync, StatusCode.NotFound);
        await Expect("time-to-live of an unknown lease", () => lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = unknownId, Keys = true }, deadline: D()).ResponseAsync,
            StatusCode.OK, StatusCode.NotFound);
        await Expect("grant a lease with a huge TTL", () => lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = long.MaxValue }, deadline: D()).ResponseAsync, StatusCode.OutOfRange);
        await Expect("grant a lease with a negative TTL", () => lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = -10, ID = -3 }, deadline: D()).ResponseAsync);
        await Expect("keep an unknown lease alive", async () =>
        {
            using var call = lease.LeaseKeepAlive(deadline: D());
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = unknownId });
            await call.RequestStream.CompleteAsync();
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                if (call.ResponseStream.Current.TTL > 0)
                {
                    throw new ChaosFailure($"keep-alive of unknown lease {unknownId:x} answered TTL {call.ResponseStream.Current.TTL}");
                }
            }
        });
        await Expect("remove an unknown member", () => cluster.MemberRemoveAsync(new MemberRemoveRequest { ID = (ulong)unknownId }, deadline: D()).ResponseAsync, StatusCode.NotFound);
        await Expect("promote an unknown member", () => cluster.MemberPromoteAsync(new MemberPromoteRequest { ID = (ulong)unknownId }, deadline: D()).ResponseAsync, StatusCode.NotFound);
        await Expect("update an unknown member", () => cluster.MemberUpdateAsync(new MemberUpdateRequest { ID = (ulong)unknownId, PeerURLs = { "http://127.0.0.1:1" } }, deadline: D()).ResponseAsync,
            StatusCode.NotFound);
        await Expect("add a member with a malformed URL", () => cluster.MemberAddAsync(new MemberAddRequest { PeerURLs = { "not a url ::" }, IsLearner = true }, deadline: D()).ResponseAsync,
            StatusCode.InvalidArgument);
        await Expect("add a member with an existing peer URL", () => cluster.MemberAddAsync(new MemberAddRequest { PeerURLs = { member.PeerUrl }, IsLearner = true }, deadline: D()).ResponseAsync,
            StatusCode.FailedPrecondition);
        await Expect("move leadership to an unknown member", () => maintenance.MoveLeaderAsync(new MoveLeaderRequest { TargetID = (ulong)unknownId }, deadline: D()).ResponseAsync,
            StatusCode.NotFound, StatusCode.FailedPrecondition, StatusCode.InvalidArgument);
        await Expect("hash at a future revision", () => maintenance.HashKVAsync(new HashKVRequest { Revision = long.MaxValue }, deadline: D()).ResponseAsync, StatusCode.OutOfRange);
        await Expect("odd watch requests", async () =>
        {
            using var call = new Watch.WatchClient(member.Channel).Watch(deadline: DateTime.UtcNow.AddSeconds(2));
            await call.RequestStream.WriteAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = unknownId } });
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("bad/z"), RangeEnd = ByteString.CopyFromUtf8("bad/a"), StartRevision = -7 } });
            await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.Empty, StartRevision = long.MaxValue, WatchId = -1 } });
            await call.RequestStream.WriteAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
            await call.RequestStream.WriteAsync(new WatchRequest());
            try
            {
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
            {
            }
        });
        return count;
    }
}
