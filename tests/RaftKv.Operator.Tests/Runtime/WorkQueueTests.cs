using Microsoft.Extensions.Time.Testing;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator.Tests.Runtime;

public sealed class WorkQueueTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_key_added_twice_while_queued_is_handed_out_once()
    {
        using var queue = new WorkQueue<string>(new FakeTimeProvider());
        queue.Add("ns/a");
        queue.Add("ns/b");
        queue.Add("ns/a");

        Assert.Equal(2, queue.Count);
        Assert.Equal("ns/a", await queue.TakeAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal("ns/b", await queue.TakeAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task A_key_being_processed_is_not_handed_out_again_until_done_and_then_once()
    {
        using var queue = new WorkQueue<string>(new FakeTimeProvider());
        queue.Add("ns/a");
        var first = await queue.TakeAsync(CancellationToken.None).WaitAsync(Timeout);

        // Changes arrive while ns/a is processed: it must not be processed concurrently.
        queue.Add("ns/a");
        queue.Add("ns/a");
        var second = queue.TakeAsync(CancellationToken.None);
        Assert.False(second.IsCompleted, "a key being processed was handed out a second time");
        Assert.Equal(0, queue.Count);

        queue.Done(first!);
        Assert.Equal("ns/a", await second.WaitAsync(Timeout));
        queue.Done("ns/a");
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task Done_without_adds_meanwhile_does_not_requeue()
    {
        using var queue = new WorkQueue<string>(new FakeTimeProvider());
        queue.Add("ns/a");
        var key = await queue.TakeAsync(CancellationToken.None).WaitAsync(Timeout);
        queue.Done(key!);

        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public async Task AddAfter_queues_only_when_the_injected_clock_reaches_the_delay()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(time);
        queue.AddAfter("ns/a", TimeSpan.FromSeconds(5));

        time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.WaitingCount);

        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, queue.Count);
        Assert.Equal("ns/a", await queue.TakeAsync(CancellationToken.None).WaitAsync(Timeout));
    }

    [Fact]
    public void An_earlier_delayed_add_replaces_a_later_one_and_a_later_one_is_ignored()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(time);
        queue.AddAfter("ns/a", TimeSpan.FromSeconds(10));
        queue.AddAfter("ns/a", TimeSpan.FromSeconds(2));
        queue.AddAfter("ns/a", TimeSpan.FromSeconds(30));

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, queue.Count);
        Assert.Equal(0, queue.WaitingCount);

        // The replaced 10 s timer does not add it a second time.
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void Rate_limited_adds_back_off_exponentially_per_key_and_forget_resets()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(time, new WorkQueueOptions { BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromSeconds(1) });

        var delays = Enumerable.Range(0, 9).Select(_ => queue.AddRateLimited("ns/a")).ToList();

        Assert.Equal(
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000],
            delays.Select(d => (int)d.TotalMilliseconds).ToList());
        Assert.Equal(9, queue.Failures("ns/a"));
        Assert.Equal(TimeSpan.FromMilliseconds(10), queue.AddRateLimited("ns/b"));

        queue.Forget("ns/a");
        Assert.Equal(0, queue.Failures("ns/a"));
        Assert.Equal(TimeSpan.FromMilliseconds(10), queue.AddRateLimited("ns/a"));
    }

    [Fact]
    public void The_overall_limit_spaces_out_rate_limited_adds_once_the_burst_is_spent()
    {
        var time = new FakeTimeProvider();
        using var queue = new WorkQueue<string>(time, new WorkQueueOptions
        {
            BaseDelay = TimeSpan.FromMilliseconds(1),
            OverallBurst = 3,
            OverallRatePerSecond = 10,
        });

        var delays = Enumerable.Range(0, 5).Select(i => queue.AddRateLimited($"ns/k{i}")).ToList();

        // Three from the burst (each key's own 1 ms backoff), then one every 100 ms.
        Assert.Equal([1, 1, 1, 100, 200], delays.Select(d => (int)Math.Round(d.TotalMilliseconds)).ToList());

        // Tokens come back with time.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromMilliseconds(1), queue.AddRateLimited("ns/later"));
    }

    [Fact]
    public async Task Shutdown_releases_waiting_consumers_and_ignores_later_adds()
    {
        var queue = new WorkQueue<string>(new FakeTimeProvider());
        var waiting = new[] { queue.TakeAsync(CancellationToken.None), queue.TakeAsync(CancellationToken.None) };

        queue.ShutDown();
        queue.Add("ns/a");

        var results = await Task.WhenAll(waiting).WaitAsync(Timeout);
        Assert.All(results, Assert.Null);
        Assert.Equal(0, queue.Count);
        queue.Dispose();
    }

    [Fact]
    public async Task Many_workers_never_process_one_key_concurrently_and_every_add_is_seen()
    {
        const int Keys = 8;
        using var queue = new WorkQueue<int>(TimeProvider.System);
        // Keys 1..Keys: a shut-down queue of value-type keys hands out default (0).
        var active = new int[Keys + 1];
        var added = new int[Keys + 1];
        var seen = new int[Keys + 1];
        var violations = 0;
        using var progress = new SemaphoreSlim(0);

        async Task Worker()
        {
            while (await queue.TakeAsync(CancellationToken.None) is var key && key != 0)
            {
                if (Interlocked.Increment(ref active[key]) != 1)
                {
                    Interlocked.Increment(ref violations);
                }

                // What this processing covers: every add made before it started.
                Volatile.Write(ref seen[key], Volatile.Read(ref added[key]));
                await Task.Yield();
                Interlocked.Decrement(ref active[key]);
                queue.Done(key);
                progress.Release();
            }
        }

        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(Worker)).ToList();
        for (var round = 0; round < 2000; round++)
        {
            var key = (round % Keys) + 1;
            Interlocked.Increment(ref added[key]);
            queue.Add(key);
        }

        bool AllSeen() => Enumerable.Range(1, Keys).All(k => Volatile.Read(ref seen[k]) == Volatile.Read(ref added[k]));
        var deadline = DateTime.UtcNow + Timeout;
        while (!AllSeen() && DateTime.UtcNow < deadline)
        {
            await progress.WaitAsync(TimeSpan.FromSeconds(1));
        }

        queue.ShutDown();
        await Task.WhenAll(workers).WaitAsync(Timeout);
        Assert.Equal(0, violations);
        Assert.True(AllSeen(), $"adds not covered by a later processing: added {string.Join(",", added)}, seen {string.Join(",", seen)}");
    }
}
