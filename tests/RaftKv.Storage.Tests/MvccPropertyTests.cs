using CsCheck;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

/// <summary>Random request sequences run against the store and against <see cref="EtcdModel"/>: every response, error and revision agrees.</summary>
public sealed class MvccPropertyTests
{
    private static readonly byte[][] PointKeys = [.. new[] { "a", "a/1", "a/2", "b", "c", "c/x", "d" }.Select(k => System.Text.Encoding.ASCII.GetBytes(k))];

    private static object Run(MvccStore store, object request)
    {
        try
        {
            return request switch
            {
                RangeRequest r => store.Range(r),
                TxnRequest t => store.Txn(t),
                _ => store.Write(request),
            };
        }
        catch (StoreException ex)
        {
            return ex.Code;
        }
    }

    private static void Agree(int[] program)
    {
        using var dir = new TempDir();
        // Half the sequences read through the cache of latest values, half straight from LMDB.
        var options = new MvccOptions { UnsafeNoSync = true, LatestValueCacheBytes = program[0] % 2 == 0 ? 0 : 1024 };
        var store = MvccStore.Open(dir.Sub("db"), options);
        try
        {
            var model = new EtcdModel();
            var log = new List<string>();
            foreach (var seed in program)
            {
                var request = OpGen.Decode(seed, model.Revision);
                var expected = OpGen.Describe(model.Apply(request));
                log.Add($"{OpGen.DescribeRequest(request)} -> {expected}");
                string actual;
                try
                {
                    actual = OpGen.Describe(Run(store, request));
                }
                catch (Exception ex) when (ex is not StoreException)
                {
                    throw new InvalidOperationException($"store failed: {ex.Message} after:\n  {string.Join("\n  ", log)}", ex);
                }

                Assert.True(expected == actual,
                    $"after:\n  {string.Join("\n  ", log)}\nstore answered {actual}");
                Assert.True(model.Revision == store.CurrentRevision, $"revision: model {model.Revision}, store {store.CurrentRevision}\n  {string.Join("\n  ", log)}");
                Assert.Equal(model.CompactRevision, store.CompactRevision);
                AgreeOnLeases(model, store, log);

                // Point reads of every key (the store's fast path and its cache of latest values).
                foreach (var key in PointKeys)
                {
                    var read = new RangeRequest { Key = key, KeysOnly = key.Length == 1 && key[0] == 'c' };
                    var want = OpGen.Describe(model.Apply(read));
                    var got = OpGen.Describe(Run(store, read));
                    Assert.True(want == got, $"point read of {KeyValue.Show(key)}: model {want}, store {got}\n  {string.Join("\n  ", log)}");
                }
            }

            // Revision by revision, what every readable revision holds; then the same after a restart (index rebuilt from LMDB).
            for (var pass = 0; pass < 2; pass++)
            {
                for (var rev = Math.Max(1, model.CompactRevision); rev <= model.Revision; rev++)
                {
                    var expected = string.Join(" ", model.Snapshot(rev));
                    var actual = string.Join(" ", store.Range(new RangeRequest { Key = [0], RangeEnd = [0], Revision = rev }).Kvs);
                    Assert.True(expected == actual, $"pass {pass}, revision {rev}: model [{expected}] store [{actual}]\n  {string.Join("\n  ", log)}");
                }

                store.Dispose();
                store = MvccStore.Open(dir.Sub("db"), options);
                Assert.Equal(model.Revision, store.CurrentRevision);
                Assert.Equal(model.CompactRevision, store.CompactRevision);
                AgreeOnLeases(model, store, log);

                // Point reads of every key (the store's fast path and its cache of latest values).
                foreach (var key in PointKeys)
                {
                    var read = new RangeRequest { Key = key, KeysOnly = key.Length == 1 && key[0] == 'c' };
                    var want = OpGen.Describe(model.Apply(read));
                    var got = OpGen.Describe(Run(store, read));
                    Assert.True(want == got, $"point read of {KeyValue.Show(key)}: model {want}, store {got}\n  {string.Join("\n  ", log)}");
                }
            }
        }
        finally
        {
            store.Dispose();
        }
    }

    private static void AgreeOnLeases(EtcdModel model, MvccStore store, List<string> log)
    {
        var expected = string.Join(" ", model.Leases());
        var actual = string.Join(" ", store.Leases().Select(l => store.GetLease(l.Id)!)
            .Select(l => $"{l.Id}:{l.Ttl}[{string.Join(",", l.Keys.Select(k => System.Text.Encoding.Latin1.GetString(k)))}]"));
        Assert.True(expected == actual, $"leases: model [{expected}] store [{actual}]\n  {string.Join("\n  ", log)}");
    }

    /// <summary>More sequences for long runs: RAFTKV_PROPERTY_ITERATIONS=5000 dotnet test ...</summary>
    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("RAFTKV_PROPERTY_ITERATIONS"), out var n) && n > 0 ? n : 150;

    [Fact]
    public void Store_agrees_with_the_etcd_model_on_random_request_sequences() =>
        Gen.Int[0, int.MaxValue].Array[1, 60].Sample(Agree, iter: Iterations, threads: 1, print: p => string.Join(",", p));
}
