using System.Text;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Tests;

public sealed class ApplyBatcherTests
{
    [Fact]
    public async Task Concurrent_commands_share_transactions_and_each_caller_gets_its_own_result()
    {
        using var dir = new TempDir();
        using var store = MvccStore.Open(dir.Sub("db"));
        using var batcher = new ApplyBatcher(store, maxCommands: 64);
        var tasks = new List<Task<ApplyResult>>();
        for (ulong i = 1; i <= 500; i++)
        {
            tasks.Add(batcher.ApplyAsync(new ApplyCommand(i, 1, new PutRequest { Key = Encoding.UTF8.GetBytes("k" + (i % 10)), Value = [(byte)i] })));
        }

        var results = await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(2, 500).Select(i => (long)i), results.Select(r => ((PutResponse)r.Response!).Revision));
        Assert.True(batcher.Batches < 500, $"500 commands took {batcher.Batches} transactions");
        Assert.True(batcher.Batches >= 500 / 64, $"batches are capped at 64 commands, yet only {batcher.Batches} for 500");
        Assert.Equal(500UL, store.ConsistentIndex);
    }
}
