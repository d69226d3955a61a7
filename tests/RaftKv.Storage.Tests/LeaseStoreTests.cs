using System.Text;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

/// <summary>Leases in the MVCC store: the table, keys attached through KeyValue.lease, revoke in one revision, persistence.</summary>
public sealed class LeaseStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private MvccStore Open() => MvccStore.Open(_dir.Sub("member", "snap", "db"), new MvccOptions { UnsafeNoSync = true });

    public void Dispose() => _dir.Dispose();

    private static PutRequest Put(string k, string v, long lease = 0) => new() { Key = B(k), Value = B(v), Lease = lease };

    private static string Keys(MvccStore store, long id) => store.GetLease(id) is { } l ? string.Join(",", l.Keys.Select(S)) : "(none)";

    [Fact]
    public void Revoke_deletes_every_attached_key_in_one_revision_with_delete_events()
    {
        using var store = Open();
        var grant = store.GrantLease(100, 30);
        Assert.Equal(new LeaseGrantResponse(1, 100, 30), grant);
        Assert.Equal(1, store.CurrentRevision); // a grant takes no revision
        store.Put(Put("b", "1", 100));
        store.Put(Put("a", "1", 100));
        store.Put(Put("c", "1"));
        Assert.Equal("a,b", Keys(store, 100));
        Assert.Equal(100, store.Range(new RangeRequest { Key = B("a") }).Kvs.Single().Lease);

        var results = store.Apply([new ApplyCommand(1, 1, new LeaseRevokeRequest(100))]);
        Assert.Null(results[0].Error);
        Assert.Equal(new LeaseRevokeResponse(5), results[0].Response);
        Assert.Equal(["DELETE a @5", "DELETE b @5"], results[0].Events.Select(e => $"{(e.IsDelete ? "DELETE" : "PUT")} {S(e.Kv.Key)} @{e.Kv.ModRevision}"));
        Assert.Equal(5, store.CurrentRevision);
        Assert.Equal(["c"], store.Range(new RangeRequest { Key = [0], RangeEnd = [0] }).Kvs.Select(kv => S(kv.Key)));
        Assert.Null(store.GetLease(100));
        Assert.Empty(store.Leases());
    }

    [Fact]
    public void Revoking_a_lease_without_keys_takes_no_revision()
    {
        using var store = Open();
        store.GrantLease(1, 10);
        store.Put(Put("k", "v"));
        Assert.Equal(new LeaseRevokeResponse(2), store.RevokeLease(1));
        Assert.Equal(2, store.CurrentRevision);
    }

    [Fact]
    public void A_put_without_the_lease_detaches_the_key_and_a_put_with_another_moves_it()
    {
        using var store = Open();
        store.GrantLease(1, 10);
        store.GrantLease(2, 10);
        store.Put(Put("k", "v", 1));
        store.Put(Put("k", "v2", 2));
        Assert.Equal(("", "k"), (Keys(store, 1), Keys(store, 2)));
        store.Put(new PutRequest { Key = B("k"), Value = B("v3"), IgnoreLease = true });
        Assert.Equal("k", Keys(store, 2)); // ignore_lease keeps it
        store.Put(Put("k", "v4"));
        Assert.Equal("", Keys(store, 2));
        store.RevokeLease(2);
        Assert.Equal("v4", S(store.Range(new RangeRequest { Key = B("k") }).Kvs.Single().Value));

        store.Put(Put("d", "1", 1));
        store.DeleteRange(new DeleteRangeRequest { Key = B("d") });
        Assert.Equal("", Keys(store, 1)); // a deleted key is no longer attached
    }

    [Fact]
    public void Lease_errors_carry_etcd_texts_and_change_nothing()
    {
        using var store = Open();
        Assert.Equal("etcdserver: requested lease not found", Assert.Throws<StoreException>(() => store.Put(Put("k", "v", 5))).Message);
        Assert.Equal("etcdserver: requested lease not found", Assert.Throws<StoreException>(() => store.RevokeLease(5)).Message);
        store.GrantLease(5, 10);
        Assert.Equal("etcdserver: lease already exists", Assert.Throws<StoreException>(() => store.GrantLease(5, 20)).Message);
        Assert.Equal("etcdserver: too large lease TTL", Assert.Throws<StoreException>(() => store.GrantLease(6, MvccStore.MaxLeaseTtl + 1)).Message);

        // A txn whose second put names a missing lease fails as a whole: the first put and its attachment are undone.
        var txn = new TxnRequest { Success = [RequestOp.Of(Put("a", "1", 5)), RequestOp.Of(Put("b", "1", 6))] };
        Assert.Equal(StoreErrorCode.LeaseNotFound, Assert.Throws<StoreException>(() => store.Txn(txn)).Code);
        Assert.Equal(1, store.CurrentRevision);
        Assert.Equal("", Keys(store, 5));
        Assert.Equal([(5L, 10L)], store.Leases());
    }

    [Fact]
    public void Leases_and_attachments_survive_a_restart_and_travel_in_a_snapshot()
    {
        var index = 0UL;
        using (var store = Open())
        {
            store.Apply([
                new ApplyCommand(++index, 1, new LeaseGrantRequest(7, 60)),
                new ApplyCommand(++index, 1, new LeaseGrantRequest(8, 5)),
                new ApplyCommand(++index, 1, Put("x", "1", 7)),
                new ApplyCommand(++index, 1, Put("y", "1", 8)),
                new ApplyCommand(++index, 1, Put("y", "2")),
            ]);
        }

        using var reopened = Open();
        Assert.Equal([(7L, 60L), (8L, 5L)], reopened.Leases());
        Assert.Equal(("x", ""), (Keys(reopened, 7), Keys(reopened, 8)));
        Assert.Equal(index, reopened.ConsistentIndex);

        using var copy = new MemoryStream();
        reopened.WriteSnapshot(copy);
        using var other = MvccStore.Open(_dir.Sub("other", "db"), new MvccOptions { UnsafeNoSync = true });
        copy.Position = 0;
        other.RestoreSnapshot(copy);
        Assert.Equal("x", Keys(other, 7));
        Assert.Equal(reopened.Hash(), other.Hash());
        other.RevokeLease(7);
        Assert.Empty(other.Range(new RangeRequest { Key = B("x") }).Kvs);
    }

    [Fact]
    public void Applying_a_grant_or_revoke_twice_changes_nothing()
    {
        using var store = Open();
        ApplyCommand[] commands =
        [
            new(1, 1, new LeaseGrantRequest(3, 10)),
            new(2, 1, Put("k", "v", 3)),
            new(3, 1, new LeaseRevokeRequest(3)),
        ];
        var first = store.Apply(commands);
        Assert.All(first, r => Assert.Null(r.Error));
        var again = store.Apply(commands);
        Assert.All(again, r => Assert.True(r.Skipped));
        Assert.Equal(3, store.CurrentRevision);
        Assert.Empty(store.Leases());
    }
}
