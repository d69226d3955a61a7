using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;
using RaftKv.Server.Peers;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>Writes a follower forwards to a leader that is handing leadership over (SIGTERM, move-leader).</summary>
public sealed class HandoverTests
{
    [Fact]
    public async Task Writes_forwarded_to_a_leader_that_is_handing_over_fail_at_once_with_leader_changed_and_take_no_effect()
    {
        // The leader drops proposals while it hands over (as etcd's does). A proposal forwarded by a follower used to vanish
        // there and its client waited for the request timeout ("request timed out"); now the leader tells the follower,
        // whose client hears etcd's "leader changed" (Unavailable: etcdctl and kube-apiserver retry it). The write was
        // never appended, so it must never show up.
        await using var cluster = await TestCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        var target = (leader + 2) % 3;
        var leaderMember = cluster.Host(leader).Member;
        var targetId = cluster.Host(target).Member.MemberId;
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(follower)}");
        var kv = new KV.KVClient(channel);
        static ByteString Bytes(string s) => ByteString.CopyFromUtf8(s);

        // Keys the deletes may remove; present unless a delete took effect.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            await kv.PutAsync(new PutRequest { Key = Bytes($"del-{attempt}"), Value = Bytes("kept") });
        }

        // The leader cannot reach the target, so a hand-over it starts stays in progress for an election timeout, then aborts.
        leaderMember.Transport.Faults.Set(targetId, new PeerFault(TimeSpan.Zero, 0, Cut: true));
        var writes = new (string Name, Func<int, Task> Call, Func<int, string> Key)[]
        {
            ("put", a => kv.PutAsync(new PutRequest { Key = Bytes($"put-{a}"), Value = Bytes("v") }).ResponseAsync, a => $"put-{a}"),
            ("delete", a => kv.DeleteRangeAsync(new DeleteRangeRequest { Key = Bytes($"del-{a}") }).ResponseAsync, a => $"del-{a}"),
            ("txn", a => kv.TxnAsync(new TxnRequest { Success = { new RequestOp { RequestPut = new PutRequest { Key = Bytes($"txn-{a}"), Value = Bytes("v") } } } })
                .ResponseAsync, a => $"txn-{a}"),
        };
        var refusedKeys = new List<string>();
        foreach (var (name, call, key) in writes)
        {
            RpcException? refused = null;
            var seen = new List<string>();
            for (var attempt = 0; attempt < 5 && refused is null; attempt++)
            {
                using var stopTransfer = new CancellationTokenSource();
                var transfer = leaderMember.TransferLeadershipAsync(targetId, stopTransfer.Token);
                await Eventually.TrueAsync(async () => (await leaderMember.StatusAsync()).LeadTransferee == targetId, () => $"the hand-over to start; {cluster.Describe()}");
                try
                {
                    await call(attempt);
                    seen.Add($"attempt {attempt}: accepted (the hand-over ended before it arrived)");
                }
                catch (RpcException e)
                {
                    refused = e;
                    refusedKeys.Add(key(attempt));
                }

                await stopTransfer.CancelAsync();
                try
                {
                    await transfer;
                }
                catch (Exception e) when (e is OperationCanceledException or RpcException)
                {
                }

                await Eventually.TrueAsync(async () => (await leaderMember.StatusAsync()).LeadTransferee == 0, () => $"the hand-over to abort; {cluster.Describe()}");
            }

            Assert.True(
                refused is { StatusCode: StatusCode.Unavailable } && refused.Status.Detail == "etcdserver: leader changed",
                $"{name}: expected Unavailable 'etcdserver: leader changed', got {refused?.Status.ToString() ?? "no refusal"} ({string.Join("; ", seen)}); {cluster.Describe()}");
        }

        leaderMember.Transport.Faults.Set(targetId, PeerFault.None);
        foreach (var k in refusedKeys)
        {
            var range = await kv.RangeAsync(new RangeRequest { Key = Bytes(k) });
            var expected = k.StartsWith("del-", StringComparison.Ordinal) ? "kept" : null;
            var actual = range.Kvs.Count == 0 ? null : range.Kvs[0].Value.ToStringUtf8();
            Assert.True(expected == actual, $"refused write of {k} took effect: expected {expected ?? "no key"}, found {actual ?? "no key"}");
        }
    }

    [Fact]
    public async Task A_write_and_a_linearizable_read_on_a_member_that_knows_no_leader_wait_for_one()
    {
        // As etcd's: a proposal or read index made without a known leader waits for one within the request timeout, instead
        // of failing at once with "no leader" (what a member sees for a moment after every leader loss).
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(0)}");
        var kv = new KV.KVClient(channel);
        await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("before"), Value = ByteString.CopyFromUtf8("1") });

        await cluster.StopMemberAsync(1);
        await cluster.StopMemberAsync(2);
        await Eventually.TrueAsync(() => cluster.Host(0).Member.Leader == 0, () => $"m1 to know no leader; {cluster.Describe()}");

        var put = kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("during"), Value = ByteString.CopyFromUtf8("2") }).ResponseAsync;
        var read = kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("before") }).ResponseAsync;
        await cluster.RestartAllAsync();

        try
        {
            await put;
            var range = await read;
            Assert.Equal("1", range.Kvs.Single().Value.ToStringUtf8());
        }
        catch (RpcException e)
        {
            Assert.Fail($"expected the put and the read to wait for the new leader, got {e.Status}; {cluster.Describe()}");
        }

        var after = await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("during") });
        Assert.Equal("2", after.Kvs.Single().Value.ToStringUtf8());
    }
}
