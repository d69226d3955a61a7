using System.Text;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

public sealed class MvccStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private MvccStore Open(MvccOptions? options = null) => MvccStore.Open(_dir.Sub("member", "snap", "db"), options ?? new MvccOptions { UnsafeNoSync = true });

    public void Dispose() => _dir.Dispose();

    private static PutRequest Put(string k, string v, long lease = 0) => new() { Key = B(k), Value = B(v), Lease = lease };

    [Fact]
    public void An_empty_store_is_at_revision_1_and_each_write_request_takes_one_revision()
    {
        using var store = Open();
        Assert.Equal(1, store.CurrentRevision);
        Assert.Equal(2, store.Put(Put("a", "1")).Revision);
        var txn = store.Txn(new TxnRequest { Success = [RequestOp.Of(Put("b", "1")), RequestOp.Of(Put("c", "1"))] });
        Assert.Equal(3, txn.Revision);
        var kvs = store.Range(new RangeRequest { Key = B("a"), RangeEnd = B("d") }).Kvs;
        Assert.Equal(["a:2:2:1", "b:3:3:1", "c:3:3:1"], kvs.Select(kv => $"{S(kv.Key)}:{kv.CreateRevision}:{kv.ModRevision}:{kv.Version}"));
        Assert.Equal(3, store.DeleteRange(new DeleteRangeRequest { Key = B("zzz") }).Revision); // nothing deleted: no new revision
        Assert.Equal(3, store.CurrentRevision);
    }

    [Fact]
    public void Errors_carry_etcd_texts()
    {
        using var store = Open();
        store.Put(Put("a", "1"));
        store.Put(Put("a", "2"));
        store.Put(Put("a", "3"));
        store.Compact(3);
        var compacted = Assert.Throws<StoreException>(() => store.Range(new RangeRequest { Key = B("a"), Revision = 2 }));
        Assert.Equal("mvcc: required revision has been compacted", compacted.Message);
        Assert.Equal("etcdserver: mvcc: required revision has been compacted", compacted.GrpcMessage);
        var future = Assert.Throws<StoreException>(() => store.Range(new RangeRequest { Key = B("a"), Revision = 99 }));
        Assert.Equal("mvcc: required revision is a future revision", future.Message);
        Assert.Equal("mvcc: required revision has been compacted", Assert.Throws<StoreException>(() => store.Compact(2)).Message);
        Assert.Equal("mvcc: required revision is a future revision", Assert.Throws<StoreException>(() => store.Compact(50)).Message);
        Assert.Equal("etcdserver: key not found", Assert.Throws<StoreException>(() => store.Put(new PutRequest { Key = B("nope"), IgnoreValue = true })).Message);
        Assert.Equal("etcdserver: key not found", Assert.Throws<StoreException>(() => store.Put(new PutRequest { Key = B("nope"), Value = B("x"), IgnoreLease = true })).Message);
        Assert.Equal("etcdserver: value is provided", Assert.Throws<StoreException>(() => store.Put(new PutRequest { Key = B("a"), Value = B("x"), IgnoreValue = true })).Message);
        Assert.Equal("etcdserver: lease is provided", Assert.Throws<StoreException>(() => store.Put(new PutRequest { Key = B("a"), Lease = 5, IgnoreLease = true })).Message);
        Assert.Equal("etcdserver: key is not provided", Assert.Throws<StoreException>(() => store.Range(new RangeRequest())).Message);
        var dup = Assert.Throws<StoreException>(() => store.Txn(new TxnRequest { Success = [RequestOp.Of(Put("k", "1")), RequestOp.Of(Put("k", "2"))] }));
        Assert.Equal("etcdserver: duplicate key given in txn request", dup.Message);
        var nested = Assert.Throws<StoreException>(() => store.Txn(new TxnRequest
        {
            Success = [RequestOp.Of(Put("k", "1")), RequestOp.Of(new TxnRequest { Failure = [RequestOp.Of(Put("k", "2"))] })],
        }));
        Assert.Equal(StoreErrorCode.DuplicateKey, nested.Code);
        var tooMany = Assert.Throws<StoreException>(() => store.Txn(new TxnRequest { Success = [.. Enumerable.Range(0, 129).Select(i => RequestOp.Of(Put("k" + i, "v")))] }));
        Assert.Equal("etcdserver: too many operations in txn request", tooMany.Message);
        Assert.Equal(4, store.CurrentRevision); // three puts; none of the refused requests took a revision
    }

    [Fact]
    public void Put_keeps_value_or_lease_when_asked_and_returns_the_previous_pair()
    {
        using var store = Open();
        store.GrantLease(7, 60);
        store.GrantLease(9, 60);
        store.Put(Put("a", "v1", lease: 7));
        var r = store.Put(new PutRequest { Key = B("a"), Value = B("v2"), IgnoreLease = true, PrevKv = true });
        Assert.Equal("v1", S(r.PrevKv!.Value));
        var kv = store.Range(new RangeRequest { Key = B("a") }).Kvs.Single();
        Assert.Equal(("v2", 7L, 2L), (S(kv.Value), kv.Lease, kv.Version));
        store.Put(new PutRequest { Key = B("a"), Lease = 9, IgnoreValue = true });
        kv = store.Range(new RangeRequest { Key = B("a") }).Kvs.Single();
        Assert.Equal(("v2", 9L, 3L), (S(kv.Value), kv.Lease, kv.Version));
    }

    [Fact]
    public void Range_options_follow_etcd()
    {
        using var store = Open();
        foreach (var (k, v) in new[] { ("a", "3"), ("b", "1"), ("c", "2"), ("c/1", "0"), ("d", "9") })
        {
            store.Put(Put(k, v));
        }

        store.Put(Put("b", "5")); // b: version 2, mod 7
        RangeResponse R(RangeRequest r) => store.Range(r);
        string Keys(RangeResponse r) => string.Join(",", r.Kvs.Select(kv => S(kv.Key)));

        Assert.Equal("a,b,c,c/1,d", Keys(R(new() { Key = [0], RangeEnd = [0] })));
        Assert.Equal("c,c/1,d", Keys(R(new() { Key = B("c"), RangeEnd = [0] })));
        Assert.Equal("c/1", Keys(R(new() { Key = B("c/"), RangeEnd = B("c0") }))); // prefix: range end = prefix + 1
        Assert.Equal("", Keys(R(new() { Key = B("d"), RangeEnd = B("a") })));
        var limited = R(new() { Key = [0], RangeEnd = [0], Limit = 2 });
        Assert.Equal(("a,b", true, 5L), (Keys(limited), limited.More, limited.Count));
        Assert.Equal("d,b,a,c,c/1", Keys(R(new() { Key = [0], RangeEnd = [0], SortOrder = SortOrder.Descend, SortTarget = SortTarget.Value })));
        Assert.Equal("b", Keys(R(new() { Key = [0], RangeEnd = [0], SortOrder = SortOrder.Descend, SortTarget = SortTarget.Version, Limit = 1 })));
        Assert.Equal("b,c/1,d", Keys(R(new() { Key = [0], RangeEnd = [0], MinModRevision = 5 })));
        Assert.Equal("a,b", Keys(R(new() { Key = [0], RangeEnd = [0], MaxCreateRevision = 3 })));
        var countOnly = R(new() { Key = [0], RangeEnd = [0], CountOnly = true, Limit = 1 });
        Assert.Equal((0, 5L, false), (countOnly.Kvs.Count, countOnly.Count, countOnly.More));
        var keysOnly = R(new() { Key = B("a"), KeysOnly = true });
        Assert.Empty(keysOnly.Kvs.Single().Value);
        var old = R(new() { Key = B("b"), Revision = 6 });
        Assert.Equal(("1", 7L), (S(old.Kvs.Single().Value), old.Revision)); // header carries the current revision
    }

    [Fact]
    public void Txn_compares_follow_etcd_including_missing_keys_and_ranges()
    {
        using var store = Open();
        store.Put(Put("a", "x"));
        store.GrantLease(3, 60);
        store.Put(Put("b", "y", lease: 3));
        bool If(Compare c) => store.Txn(new TxnRequest { Compare = [c] }).Succeeded;

        Assert.True(If(new Compare { Key = B("missing"), Target = CompareTarget.Version, Result = CompareResult.Equal, Version = 0 }));
        Assert.True(If(new Compare { Key = B("missing"), Target = CompareTarget.Create, Result = CompareResult.Equal, CreateRevision = 0 }));
        Assert.False(If(new Compare { Key = B("missing"), Target = CompareTarget.Value, Result = CompareResult.Equal, Value = [] }));
        Assert.False(If(new Compare { Key = B("missing"), Target = CompareTarget.Value, Result = CompareResult.NotEqual, Value = B("x") }));
        Assert.True(If(new Compare { Key = B("a"), Target = CompareTarget.Value, Result = CompareResult.Greater, Value = B("w") }));
        Assert.True(If(new Compare { Key = B("b"), Target = CompareTarget.Lease, Result = CompareResult.Equal, Lease = 3 }));
        Assert.True(If(new Compare { Key = B("a"), Target = CompareTarget.Mod, Result = CompareResult.Less, ModRevision = 3 }));
        Assert.True(If(new Compare { Key = B("a"), RangeEnd = B("c"), Target = CompareTarget.Version, Result = CompareResult.Equal, Version = 1 }));
        Assert.False(If(new Compare { Key = B("a"), RangeEnd = B("c"), Target = CompareTarget.Create, Result = CompareResult.Equal, CreateRevision = 2 }));

        // Nested txns decide on the state before the txn, see earlier writes when they run, and share the revision.
        var r = store.Txn(new TxnRequest
        {
            Compare = [new Compare { Key = B("a"), Target = CompareTarget.Value, Result = CompareResult.Equal, Value = B("x") }],
            Success =
            [
                RequestOp.Of(Put("c", "1")),
                RequestOp.Of(new TxnRequest
                {
                    Compare = [new Compare { Key = B("c"), Target = CompareTarget.Version, Result = CompareResult.Equal, Version = 0 }],
                    Success = [RequestOp.Of(new RangeRequest { Key = B("c") }), RequestOp.Of(Put("d", "1"))],
                }),
            ],
        });
        Assert.True(r.Succeeded);
        Assert.Equal(4, r.Revision);
        var inner = r.Responses[1].Txn!;
        Assert.True(inner.Succeeded);
        Assert.Equal("1", S(inner.Responses[0].Range!.Kvs.Single().Value));
        Assert.Equal([new Revision(4, 0), new Revision(4, 1)], store.ReadEvents(4).Select(e => new Revision(e.Kv.ModRevision, 0)).Select((r, i) => r with { Sub = i }));
        Assert.Equal([4L, 4L], store.Range(new RangeRequest { Key = B("c"), RangeEnd = B("e") }).Kvs.Select(kv => kv.CreateRevision));
    }

    [Fact]
    public void Compaction_keeps_the_newest_revision_of_each_key_at_or_below_the_point()
    {
        using var store = Open();
        store.Put(Put("a", "1")); // 2
        store.Put(Put("a", "2")); // 3
        store.Put(Put("b", "1")); // 4
        store.DeleteRange(new DeleteRangeRequest { Key = B("b") }); // 5
        store.Put(Put("a", "3")); // 6
        store.Compact(5);
        Assert.Equal("2", S(store.Range(new RangeRequest { Key = B("a"), Revision = 5 }).Kvs.Single().Value));
        Assert.Empty(store.Range(new RangeRequest { Key = B("b"), Revision = 5 }).Kvs);
        Assert.Equal(1, store.IndexedKeys); // b is gone entirely
        var hashBefore = store.HashKv(0);
        store.Dispose();
        using var reopened = Open();
        Assert.Equal((6L, 5L), (reopened.CurrentRevision, reopened.CompactRevision));
        Assert.Equal("2", S(reopened.Range(new RangeRequest { Key = B("a"), Revision = 5 }).Kvs.Single().Value));
        Assert.Equal(hashBefore, reopened.HashKv(0));
    }

    [Fact]
    public void HashKv_is_the_same_before_and_after_compaction_and_differs_with_content()
    {
        using var store = Open();
        for (var i = 0; i < 20; i++)
        {
            store.Put(Put("k" + (i % 5), "v" + i));
        }

        store.DeleteRange(new DeleteRangeRequest { Key = B("k3") });
        store.Compact(10);
        var at15 = store.HashKv(15);
        store.Put(Put("k1", "later")); // writes after the hashed revision do not change its hash
        var after = store.HashKv(15);
        Assert.Equal(at15.Hash, after.Hash);
        Assert.Equal(23, after.Revision);
        Assert.Equal(10, after.CompactRevision);
        Assert.Equal(15, after.HashRevision);
        Assert.NotEqual(store.HashKv(15).Hash, store.HashKv(16).Hash);
        Assert.Equal("mvcc: required revision has been compacted", Assert.Throws<StoreException>(() => store.HashKv(9)).Message);

        // Two stores with the same history agree on both hashes.
        using var otherDir = new TempDir();
        using var other = MvccStore.Open(otherDir.Sub("db"), new MvccOptions { UnsafeNoSync = true });
        for (var i = 0; i < 20; i++)
        {
            other.Put(Put("k" + (i % 5), "v" + i));
        }

        other.DeleteRange(new DeleteRangeRequest { Key = B("k3") });
        other.Compact(10);
        Assert.Equal(store.HashKv(15).Hash, other.HashKv(15).Hash);
        other.Put(Put("k1", "later"));
        Assert.Equal(store.Hash(), other.Hash());
        other.Put(Put("k1", "different"));
        Assert.NotEqual(store.Hash(), other.Hash());
    }

    [Fact]
    public void Apply_stores_the_consistent_index_with_the_data_and_skips_what_was_applied()
    {
        var commands = Enumerable.Range(1, 10).Select(i => new ApplyCommand((ulong)i, 1, Put("k" + (i % 3), "v" + i))).ToList();
        using (var store = Open())
        {
            var results = store.Apply(commands.Take(6).ToList());
            Assert.All(results, r => Assert.Null(r.Error));
            Assert.Equal(6UL, store.ConsistentIndex);
            Assert.Equal(7, store.CurrentRevision);
        }

        using (var store = Open())
        {
            // Replay from the start as after a crash: 1..6 are skipped, 7..10 applied.
            Assert.Equal(6UL, store.ConsistentIndex);
            var results = store.Apply(commands);
            Assert.Equal(6, results.Count(r => r.Skipped));
            Assert.Equal(11, store.CurrentRevision);
            Assert.Equal((10UL, 1UL), (store.ConsistentIndex, store.Term));
            var again = store.Apply(commands);
            Assert.All(again, r => Assert.True(r.Skipped));
            Assert.Equal(11, store.CurrentRevision);
            var kv = store.Range(new RangeRequest { Key = B("k1") }).Kvs.Single();
            Assert.Equal(("v10", 4L), (S(kv.Value), kv.Version));
        }
    }

    [Fact]
    public void A_store_that_defers_syncs_reports_what_is_durable_only_after_a_flush_and_flushes_on_close()
    {
        var commands = Enumerable.Range(1, 10).Select(i => new ApplyCommand((ulong)i, 1, Put("k" + i, "v" + i))).ToList();
        using (var store = Open(new MvccOptions { DeferSync = true }))
        {
            Assert.True(store.DefersSync);
            Assert.Equal(0UL, store.DurableIndex);
            Assert.False(store.FlushIfChanged(), "nothing was committed since the store was opened (and synced)");
            store.Apply(commands.Take(4).ToList());
            Assert.Equal((4UL, 0UL), (store.ConsistentIndex, store.DurableIndex)); // committed, not yet synced
            Assert.True(store.FlushIfChanged());
            Assert.Equal(4UL, store.DurableIndex);
            Assert.False(store.FlushIfChanged(), "nothing was committed since the last flush");
            store.Apply(commands.Skip(4).ToList());
            Assert.Equal((10UL, 4UL), (store.ConsistentIndex, store.DurableIndex));
            Assert.Equal(10UL, store.Flush());
        }

        using (var store = Open(new MvccOptions { DeferSync = true }))
        {
            Assert.Equal((10UL, 10UL), (store.ConsistentIndex, store.DurableIndex)); // what a reopened file holds is on disk
            store.Apply([new ApplyCommand(11, 2, Put("k1", "again"))]);
        }

        // Closing synced the last commit.
        using (var store = Open())
        {
            Assert.Equal((11UL, 2UL), (store.ConsistentIndex, store.Term));
            Assert.Equal("again", S(store.Range(new RangeRequest { Key = B("k1") }).Kvs.Single().Value));
        }
    }

    [Fact]
    public void Request_errors_inside_a_batch_do_not_stop_the_batch_and_events_report_changes()
    {
        using var store = Open();
        var results = store.Apply(
        [
            new ApplyCommand(1, 1, Put("a", "1")),
            new ApplyCommand(2, 1, new PutRequest { Key = B("zz"), IgnoreValue = true }),
            new ApplyCommand(3, 1, new DeleteRangeRequest { Key = B("a") }),
            ApplyCommand.NoOp(4, 2),
        ]);
        Assert.Null(results[0].Error);
        Assert.Equal(StoreErrorCode.KeyNotFound, results[1].Error!.Code);
        Assert.True(results[2].Events.Single().IsDelete);
        Assert.Equal(3, results[2].Events.Single().Kv.ModRevision);
        Assert.Equal((4UL, 2UL, 3L), (store.ConsistentIndex, store.Term, store.CurrentRevision));
        var events = store.ReadEvents(2);
        Assert.Equal(["put a 2", "delete a 3"], events.Select(e => $"{(e.IsDelete ? "delete" : "put")} {S(e.Kv.Key)} {e.Kv.ModRevision}"));
    }

    [Fact]
    public void Quota_raises_NOSPACE_until_space_is_freed_and_the_alarm_disarmed()
    {
        using var store = Open(new MvccOptions { UnsafeNoSync = true, QuotaBackendBytes = 1024 * 1024 });
        var big = new string('x', 64 * 1024);
        var raised = false;
        ulong index = 0;
        for (var i = 0; i < 100 && !raised; i++)
        {
            var put = Put("k" + (i % 4), big);
            if (store.QuotaAvailable(put))
            {
                Assert.Null(store.Apply([new ApplyCommand(++index, 1, put)]).Single().Error);
            }
            else
            {
                raised = true; // the server now replicates an alarm activation and answers NOSPACE
            }
        }

        Assert.True(raised, "the quota was never reached");
        store.Apply([new ApplyCommand(++index, 1, AlarmAction.Activate)]);
        Assert.True(store.NoSpaceAlarm);
        var refused = store.Apply([new ApplyCommand(++index, 1, Put("small", "1"))]).Single();
        Assert.Equal("etcdserver: mvcc: database space exceeded", refused.Error!.Message);
        Assert.Equal("etcdserver: mvcc: database space exceeded", Assert.Throws<StoreException>(() => store.EnsureWritable()).Message);

        // Reads, deletes and compaction still work; then defragment and disarm.
        Assert.NotEmpty(store.Range(new RangeRequest { Key = B("k0") }).Kvs);
        store.Apply([new ApplyCommand(++index, 1, new DeleteRangeRequest { Key = B("k"), RangeEnd = B("l") })]);
        store.Apply([new ApplyCommand(++index, 1, new CompactionRequest(store.CurrentRevision))]);
        var before = store.SizeBytes;
        store.Defragment();
        Assert.True(store.SizeBytes < before, $"defragment did not shrink the file ({before} -> {store.SizeBytes})");
        store.Apply([new ApplyCommand(++index, 1, AlarmAction.Deactivate)]);
        Assert.False(store.NoSpaceAlarm);
        Assert.True(store.QuotaAvailable(Put("small", "1")));
        store.EnsureWritable();
        Assert.Null(store.Apply([new ApplyCommand(++index, 1, Put("small", "1"))]).Single().Error);
    }

    [Fact]
    public void The_alarm_survives_restart()
    {
        using (var store = Open())
        {
            store.Apply([new ApplyCommand(1, 1, AlarmAction.Activate)]);
        }

        using var reopened = Open();
        Assert.True(reopened.NoSpaceAlarm);
    }

    [Fact]
    public void The_corrupt_alarm_refuses_every_write_keeps_reads_and_survives_restart_until_disarmed()
    {
        ulong index = 0;
        using (var store = Open())
        {
            store.Apply([new ApplyCommand(++index, 1, Put("a", "1"))]);
            store.Apply([new ApplyCommand(++index, 1, new CorruptAlarmRequest(Activate: true, MemberId: 0xabc))]);
            store.Apply([new ApplyCommand(++index, 1, new CorruptAlarmRequest(Activate: true, MemberId: 0xdef))]); // the first member named stays
            Assert.Equal(0xabcUL, store.CorruptAlarmMember);
            object[] writes =
            [
                Put("b", "1"),
                new DeleteRangeRequest { Key = B("a") },
                new TxnRequest { Success = [RequestOp.Of(Put("c", "1"))] },
                new CompactionRequest(2),
                new LeaseGrantRequest(7, 60),
                new LeaseRevokeRequest(7),
            ];
            foreach (var write in writes)
            {
                var result = store.Apply([new ApplyCommand(++index, 1, write)]).Single();
                Assert.True(result.Error?.Message == "etcdserver: corrupt cluster", $"{write.GetType().Name} under the alarm gave {result.Error?.Message ?? "no error"}");
            }

            var read = store.Apply([new ApplyCommand(++index, 1, new TxnRequest { Success = [RequestOp.Of(new RangeRequest { Key = B("a") })] })]).Single();
            Assert.Null(read.Error);
            Assert.Equal("1", S(store.Range(new RangeRequest { Key = B("a") }).Kvs.Single().Value));
            Assert.Equal(2, store.CurrentRevision);
        }

        using var reopened = Open();
        Assert.Equal(0xabcUL, reopened.CorruptAlarmMember);
        reopened.Apply([new ApplyCommand(++index, 1, new CorruptAlarmRequest(Activate: false, MemberId: 0xabc))]);
        Assert.Equal(0UL, reopened.CorruptAlarmMember);
        Assert.Null(reopened.Apply([new ApplyCommand(++index, 1, Put("b", "1"))]).Single().Error);
    }

    [Fact]
    public void A_snapshot_restores_the_same_store_elsewhere()
    {
        using var store = Open();
        for (var i = 1; i <= 50; i++)
        {
            store.Apply([new ApplyCommand((ulong)i, 3, Put("key" + (i % 7), "value" + i))]);
        }

        store.Compact(20);
        using var image = new MemoryStream();
        store.WriteSnapshot(image);
        using var otherDir = new TempDir();
        using var follower = MvccStore.Open(otherDir.Sub("db"), new MvccOptions { UnsafeNoSync = true });
        follower.Put(Put("stale", "x"));
        image.Position = 0;
        follower.RestoreSnapshot(image);
        Assert.Equal((store.CurrentRevision, store.CompactRevision, store.ConsistentIndex, store.Term),
            (follower.CurrentRevision, follower.CompactRevision, follower.ConsistentIndex, follower.Term));
        Assert.Equal(store.HashKv(0), follower.HashKv(0));
        Assert.Empty(follower.Range(new RangeRequest { Key = B("stale") }).Kvs);
        Assert.Equal(7, follower.Range(new RangeRequest { Key = [0], RangeEnd = [0] }).Count);
    }

    [Fact]
    public void A_store_file_copy_carries_its_raft_position_and_replaces_another_store_whole()
    {
        using var store = Open();
        for (var i = 1; i <= 40; i++)
        {
            store.Apply([new ApplyCommand((ulong)i, 2, Put("key" + (i % 9), "value" + i))]);
        }

        store.Compact(10);
        using var otherDir = new TempDir();
        var copy = otherDir.Sub("0000000000000028.snap.db");
        Assert.Equal((40UL, 2UL), store.CopyTo(copy));
        Assert.Equal((40UL, 2UL), MvccStore.ReadPosition(copy));

        using var follower = MvccStore.Open(otherDir.Sub("db"), new MvccOptions { UnsafeNoSync = true });
        follower.Apply([new ApplyCommand(3, 1, Put("stale", "x"))]);
        follower.ReplaceWith(copy);
        Assert.False(File.Exists(copy), "the copy is moved into place, not copied");
        Assert.Equal((store.CurrentRevision, store.CompactRevision, store.ConsistentIndex, store.Term),
            (follower.CurrentRevision, follower.CompactRevision, follower.ConsistentIndex, follower.Term));
        Assert.Equal(store.HashKv(0), follower.HashKv(0));
        Assert.Empty(follower.Range(new RangeRequest { Key = B("stale") }).Kvs);
        Assert.Single(follower.Apply([new ApplyCommand(41, 2, Put("after", "swap"))]));
        Assert.Equal(41UL, follower.ConsistentIndex);

        File.WriteAllText(otherDir.Sub("garbage.db"), "not a store");
        Assert.Throws<InvalidDataException>(() => MvccStore.ReadPosition(otherDir.Sub("garbage.db")));
    }

    [Fact]
    public async Task Reads_run_while_a_writer_applies()
    {
        using var store = Open();
        store.Put(Put("counter", "0"));
        using var stop = new CancellationTokenSource();
        long readsSoFar = 0;
        bool ReaderBusy() => Interlocked.Read(ref readsSoFar) > 200;
        var reader = Task.Run(() =>
        {
            long last = 0, reads = 0;
            while (!stop.IsCancellationRequested)
            {
                var r = store.Range(new RangeRequest { Key = B("counter") });
                var v = long.Parse(S(r.Kvs.Single().Value), System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(v >= last, $"read went back from {last} to {v}");
                Assert.Equal(r.Revision, r.Kvs.Single().ModRevision);
                last = v;
                reads++;
                Interlocked.Exchange(ref readsSoFar, reads);
            }

            return reads;
        });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // Keep writing until the reader has overlapped with the writes for a while (or the reader failed).
        for (var i = 1; i <= 300 || (!reader.IsCompleted && DateTime.UtcNow < deadline && !ReaderBusy()); i++)
        {
            store.Put(Put("counter", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        stop.Cancel();
        var reads = await reader;
        Assert.True(reads > 200, $"the reader managed only {reads} reads while {store.CurrentRevision - 2} writes ran");
    }
}
