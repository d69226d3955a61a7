using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Mvcc;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's Lease service on a 3-member cluster, driven through followers over the generated gRPC client.</summary>
public sealed class LeaseTests
{
    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    private static RangeRequest All => new() { Key = ByteString.CopyFrom([0]), RangeEnd = ByteString.CopyFrom([0]), Serializable = true };

    [Fact]
    public async Task Keep_alive_and_time_to_live_through_a_follower_reach_the_leader_over_the_peer_urls_when_client_urls_are_out_of_reach()
    {
        // etcd forwards these two over the peer URLs (/leases): client URLs may be reachable only by clients.
        await using var cluster = await TestCluster.StartWithClientUrlsOutOfReachAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(follower)}");
        var leases = new Lease.LeaseClient(channel);
        var granted = await leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });

        using (var call = leases.LeaseKeepAlive())
        {
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = granted.ID });
            Assert.True(await call.ResponseStream.MoveNext(), "no keep-alive response");
            Assert.Equal((granted.ID, 60L), (call.ResponseStream.Current.ID, call.ResponseStream.Current.TTL));
            await call.RequestStream.CompleteAsync();
        }

        var ttl = await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID });
        Assert.True(ttl.GrantedTTL == 60 && ttl.TTL is > 50 and <= 60, ttl.ToString());

        // The peer port takes lease calls only as forwarded by a member, never a client's.
        using var peerChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{cluster.PeerPorts[leader]}");
        var refused = await Assert.ThrowsAsync<RpcException>(() => new Lease.LeaseClient(peerChannel)
            .LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID }).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, refused.StatusCode);
    }

    [Fact]
    public async Task Grant_attach_keep_alive_and_time_to_live_through_a_follower_then_revoke_and_expiry_delete_the_keys_everywhere()
    {
        await using var cluster = await TestCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync();
        await Eventually.TrueAsync(() => Enumerable.Range(0, 3).All(i => cluster.Host(i).Member.Membership.List().All(m => m.ClientUrls.Count > 0)), cluster.Describe);
        var follower = (leader + 1) % 3;
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(follower)}");
        var leases = new Lease.LeaseClient(channel);
        var kv = new KV.KVClient(channel);
        await using var watch = await WatchStream.StartAsync(channel, "lk");

        var granted = await leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });
        Assert.True(granted.ID > 0 && granted.TTL == 60, granted.ToString());
        await kv.PutAsync(new PutRequest { Key = B("lk/b"), Value = B("1"), Lease = granted.ID });
        await kv.PutAsync(new PutRequest { Key = B("lk/a"), Value = B("1"), Lease = granted.ID });
        await kv.PutAsync(new PutRequest { Key = B("lk/c"), Value = B("1"), Lease = granted.ID });
        await kv.PutAsync(new PutRequest { Key = B("lk/c"), Value = B("2") }); // re-put without the lease detaches it

        // Keep-alive and time-to-live reach the leader through this follower.
        using (var call = leases.LeaseKeepAlive())
        {
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = granted.ID });
            Assert.True(await call.ResponseStream.MoveNext(), "no keep-alive response");
            Assert.Equal((granted.ID, 60L), (call.ResponseStream.Current.ID, call.ResponseStream.Current.TTL));
            await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = 12345 });
            Assert.True(await call.ResponseStream.MoveNext(), "no keep-alive response");
            Assert.Equal((12345L, 0L), (call.ResponseStream.Current.ID, call.ResponseStream.Current.TTL)); // unknown lease: TTL 0
            await call.RequestStream.CompleteAsync();
        }

        var ttl = await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID, Keys = true });
        Assert.True(ttl.GrantedTTL == 60 && ttl.TTL is > 50 and <= 60, ttl.ToString());
        Assert.Equal(["lk/a", "lk/b"], ttl.Keys.Select(k => k.ToStringUtf8()));
        Assert.Equal(-1, (await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = 12345 })).TTL);
        Assert.Equal([granted.ID], (await leases.LeaseLeasesAsync(new LeaseLeasesRequest())).Leases.Select(l => l.ID));

        // Revoke: both keys go in one revision, on every member.
        var revoked = await leases.LeaseRevokeAsync(new LeaseRevokeRequest { ID = granted.ID });
        var deletes = await watch.WaitForAsync(2, e => e.Type == Event.Types.EventType.Delete);
        Assert.Equal(["lk/a", "lk/b"], deletes.Select(e => e.Kv.Key.ToStringUtf8()));
        Assert.All(deletes, e => Assert.Equal(revoked.Header.Revision, e.Kv.ModRevision));
        await EveryMemberHasAsync(cluster, ["lk/c"]);

        // Expiry: no keep-alive, so the leader revokes it after the TTL (raised to etcd's minimum, 2 s at 100/1000 ms).
        var shortLived = await leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = 1 });
        Assert.Equal(2, shortLived.TTL);
        await kv.PutAsync(new PutRequest { Key = B("lk/short"), Value = B("1"), Lease = shortLived.ID });
        var expired = await watch.WaitForAsync(3, e => e.Type == Event.Types.EventType.Delete);
        Assert.Equal("lk/short", expired[^1].Kv.Key.ToStringUtf8());
        await EveryMemberHasAsync(cluster, ["lk/c"]);
        Assert.Equal(-1, (await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = shortLived.ID })).TTL);
    }

    [Fact]
    public async Task Lease_errors_carry_etcds_codes_and_texts_and_leases_survive_a_restart_of_every_member()
    {
        await using var cluster = await TestCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint((leader + 2) % 3)}");
        var leases = new Lease.LeaseClient(channel);

        var granted = await leases.LeaseGrantAsync(new LeaseGrantRequest { ID = 77, TTL = 30 });
        Assert.Equal(77, granted.ID);
        await Fails(StatusCode.FailedPrecondition, "etcdserver: lease already exists", () => leases.LeaseGrantAsync(new LeaseGrantRequest { ID = 77, TTL = 30 }).ResponseAsync);
        await Fails(StatusCode.OutOfRange, "etcdserver: too large lease TTL", () => leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = 9_000_000_001 }).ResponseAsync);
        await Fails(StatusCode.NotFound, "etcdserver: requested lease not found", () => leases.LeaseRevokeAsync(new LeaseRevokeRequest { ID = 78 }).ResponseAsync);
        await Fails(StatusCode.NotFound, "etcdserver: requested lease not found",
            () => new KV.KVClient(channel).PutAsync(new PutRequest { Key = B("k"), Value = B("v"), Lease = 78 }).ResponseAsync);

        // The lease table and the attachment are in the store (and the WAL): both come back after every member restarts.
        await new KV.KVClient(channel).PutAsync(new PutRequest { Key = B("kept"), Value = B("v"), Lease = 77 });
        channel.Dispose(); // idempotent; the members behind it stop now
        for (var i = 0; i < 3; i++)
        {
            await cluster.StopMemberAsync(i);
        }

        await cluster.RestartAllAsync();
        leader = await cluster.WaitForLeaderAsync();
        using var again = GrpcChannel.ForAddress($"http://{cluster.Endpoint((leader + 1) % 3)}");
        var ttl = await new Lease.LeaseClient(again).LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = 77, Keys = true });
        Assert.True(ttl.GrantedTTL == 30 && ttl.TTL >= 25, ttl.ToString()); // the new leader starts it over
        Assert.Equal(["kept"], ttl.Keys.Select(k => k.ToStringUtf8()));
        await new Lease.LeaseClient(again).LeaseRevokeAsync(new LeaseRevokeRequest { ID = 77 });
        await EveryMemberHasAsync(cluster, []);
    }

    [Fact]
    public async Task A_leader_change_starts_leases_over_instead_of_expiring_them_early()
    {
        await using var cluster = await TestCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var leaderChannel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(leader)}");
        var leases = new Lease.LeaseClient(leaderChannel);
        var granted = await leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = 8 });
        await new KV.KVClient(leaderChannel).PutAsync(new PutRequest { Key = B("held"), Value = B("1"), Lease = granted.ID });

        // Let at least three seconds of the TTL run out on the first leader.
        LeaseTimeToLiveResponse? seen = null;
        await Eventually.TrueAsync(() =>
        {
            seen = leases.LeaseTimeToLive(new LeaseTimeToLiveRequest { ID = granted.ID });
            return seen.TTL <= 5;
        }, () => $"{seen}");

        var target = (leader + 1) % 3;
        await new Maintenance.MaintenanceClient(leaderChannel).MoveLeaderAsync(new MoveLeaderRequest { TargetID = cluster.Host(target).Member.MemberId });
        Assert.Equal(target, await cluster.WaitForLeaderAsync());

        // The new leader gives it a full TTL (asked through the old leader, now a follower that forwards); 2 s of slack for a slow machine.
        var after = await leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID, Keys = true });
        Assert.True(after.TTL >= 6, $"remaining after the leader change: {after}");
        Assert.Equal(["held"], after.Keys.Select(k => k.ToStringUtf8()));

        // And without keep-alives it still expires, on the new leader's clock.
        await EveryMemberHasAsync(cluster, []);
    }

    private static async Task Fails(StatusCode code, string message, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal((code, message), (e.StatusCode, e.Status.Detail));
    }

    private static async Task EveryMemberHasAsync(TestCluster cluster, string[] keys)
    {
        var seen = "";
        await Eventually.TrueAsync(() =>
        {
            var views = Enumerable.Range(0, 3).Select(i =>
            {
                using var channel = GrpcChannel.ForAddress($"http://{cluster.Endpoint(i)}");
                return string.Join(",", new KV.KVClient(channel).Range(All).Kvs.Select(kv => kv.Key.ToStringUtf8()));
            }).ToList();
            seen = string.Join(" | ", views);
            return views.All(v => v == string.Join(",", keys));
        }, () => $"members hold: {seen}");
    }

    /// <summary>A watch on a prefix whose events are collected as they come.</summary>
    private sealed class WatchStream : IAsyncDisposable
    {
        private readonly AsyncDuplexStreamingCall<WatchRequest, WatchResponse> _call;
        private readonly List<Event> _events = [];
        private readonly Lock _lock = new();
        private readonly CancellationTokenSource _stop = new();
        private Task _reader = Task.CompletedTask;

        private WatchStream(AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call) => _call = call;

        public static async Task<WatchStream> StartAsync(GrpcChannel channel, string prefix)
        {
            var end = prefix[..^1] + (char)(prefix[^1] + 1);
            var stream = new WatchStream(new Watch.WatchClient(channel).Watch());
            await stream._call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = B(prefix), RangeEnd = B(end) } });
            Assert.True(await stream._call.ResponseStream.MoveNext() && stream._call.ResponseStream.Current.Created, "watch not created");
            stream._reader = stream.ReadAsync();
            return stream;
        }

        private async Task ReadAsync()
        {
            try
            {
                while (await _call.ResponseStream.MoveNext(_stop.Token))
                {
                    lock (_lock)
                    {
                        _events.AddRange(_call.ResponseStream.Current.Events);
                    }
                }
            }
            catch (RpcException) when (_stop.IsCancellationRequested)
            {
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>The matching events once there are <paramref name="count"/> of them.</summary>
        public async Task<List<Event>> WaitForAsync(int count, Func<Event, bool> match)
        {
            List<Event> found = [];
            await Eventually.TrueAsync(() =>
            {
                lock (_lock)
                {
                    found = [.. _events.Where(match)];
                }

                return found.Count >= count;
            }, () =>
            {
                lock (_lock)
                {
                    return "events: " + string.Join("; ", _events.Select(e => $"{e.Type} {e.Kv.Key.ToStringUtf8()} @{e.Kv.ModRevision}"));
                }
            });
            return found;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _reader;
            _call.Dispose();
            _stop.Dispose();
        }
    }
}
