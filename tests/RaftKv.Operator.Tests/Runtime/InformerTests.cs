using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator.Tests.Runtime;

public sealed class InformerTests
{
    [Fact]
    public async Task Lists_then_follows_adds_updates_and_deletes_in_order()
    {
        var server = new FakeServer();
        server.Put("a", "1");
        var (informer, seen, stop) = Start(server);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);

        server.Put("b", "1");
        server.Put("a", "2");
        server.Delete("b");
        await Eventually.Until(() => seen.Count >= 4, () => Describe(seen));

        Assert.Equal(["Added a=1", "Added b=1", "Modified a=2 (was 1)", "Deleted b"], seen.ToList());
        Assert.Equal("2", informer.Cache.Get("ns", "a")!.Data["v"]);
        Assert.Null(informer.Cache.Get("ns", "b"));
        Assert.Equal(1, informer.Lists);
        await stop();
    }

    [Fact]
    public async Task A_closed_watch_resumes_from_the_last_version_seen_including_bookmarks_without_listing_again()
    {
        var server = new FakeServer();
        server.Put("a", "1");
        var (informer, seen, stop) = Start(server);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        await Eventually.Until(() => server.WatchesStarted.Count == 1, () => $"watches: {string.Join(",", server.WatchesStarted)}");

        // Changes to objects outside the informer's selection move the version on; a bookmark reports it.
        server.AdvanceVersion(5);
        server.Bookmark();
        await Eventually.Until(() => informer.ResourceVersion == server.Version.ToString(CultureInfo.InvariantCulture), () => $"informer at {informer.ResourceVersion}, server at {server.Version}");
        server.CloseWatches();
        server.Put("b", "1");

        await Eventually.Until(() => seen.Count >= 2, () => Describe(seen));
        Assert.Equal("6", server.WatchesStarted[1]);
        Assert.Equal(1, informer.Lists);
        Assert.Equal(["Added a=1", "Added b=1"], seen.ToList());
        await stop();
    }

    [Fact]
    public async Task A_410_relists_and_reports_what_changed_meanwhile_as_events()
    {
        var server = new FakeServer();
        server.Put("a", "1");
        server.Put("b", "1");
        var (informer, seen, stop) = Start(server);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        await Eventually.Until(() => server.WatchesStarted.Count == 1, () => "no watch yet");

        // While the watch is down, a gets updated, b deleted, c created, and the history compacted.
        server.CloseWatches(holdNew: true);
        server.Put("a", "2");
        server.Delete("b");
        server.Put("c", "1");
        server.Compact();
        server.ReleaseWatches();

        await Eventually.Until(() => informer.Lists == 2 && seen.Count >= 5, () => $"lists {informer.Lists}, events {Describe(seen)}");
        Assert.Equal(["Added a=1", "Added b=1"], seen.Take(2).ToList());
        Assert.Equal(["Added c=1", "Deleted b", "Modified a=2 (was 1)"], seen.Skip(2).Order(StringComparer.Ordinal).ToList());
        Assert.Equal(["a", "c"], informer.Cache.List().Select(c => c.Metadata.Name).Order(StringComparer.Ordinal).ToList());

        // And it watches on from the new list's version.
        server.Put("d", "1");
        await Eventually.Until(() => informer.Cache.Get("ns", "d") is not null, () => Describe(seen));
        await stop();
    }

    [Fact]
    public async Task A_failed_list_is_retried_after_the_backoff_on_the_injected_clock()
    {
        var server = new FakeServer { FailLists = 1 };
        server.Put("a", "1");
        var time = new FakeTimeProvider();
        var (informer, _, stop) = Start(server, time);

        await Eventually.Until(() => server.ListCalls == 1, () => $"list calls {server.ListCalls}");
        Assert.False(informer.HasSynced);

        // The retry waits on the injected clock: advancing it is what lets the informer list again.
        await Eventually.Until(() => { time.Advance(TimeSpan.FromMilliseconds(200)); return informer.HasSynced; }, () => $"list calls {server.ListCalls}");
        Assert.Equal(2, server.ListCalls);
        Assert.NotNull(informer.Cache.Get("ns", "a"));
        await stop();
    }

    [Fact]
    public async Task A_watch_the_server_ends_without_events_is_started_again_after_a_growing_backoff()
    {
        var server = new FakeServer { EndWatchesAtOnce = true };
        var time = new FakeTimeProvider();
        var (informer, _, stop) = Start(server, time);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        await Eventually.Until(() => server.WatchesStarted.Count == 1, () => $"watches: {server.WatchesStarted.Count}");

        // Not in a tight loop: the next watch waits for the first delay (200 ms), the one after for twice that.
        time.Advance(TimeSpan.FromMilliseconds(199));
        await Task.Yield();
        Assert.Single(server.WatchesStarted);
        await Eventually.Until(() => { time.Advance(TimeSpan.FromMilliseconds(1)); return server.WatchesStarted.Count == 2; }, () => $"watches: {server.WatchesStarted.Count}");
        var second = time.GetUtcNow();
        await Eventually.Until(() => { time.Advance(TimeSpan.FromMilliseconds(50)); return server.WatchesStarted.Count == 3; }, () => $"watches: {server.WatchesStarted.Count}");
        Assert.True(time.GetUtcNow() - second >= TimeSpan.FromMilliseconds(400), $"third watch after {(time.GetUtcNow() - second).TotalMilliseconds} ms");
        await stop();
    }

    private static (Informer<V1ConfigMap> Informer, List<string> Seen, Func<Task> Stop) Start(FakeServer server, TimeProvider? time = null)
    {
        var informer = new Informer<V1ConfigMap>(server, time ?? TimeProvider.System, NullLogger.Instance);
        var seen = new List<string>();
        informer.Subscribe(e =>
        {
            lock (seen)
            {
                seen.Add(e.Type switch
                {
                    WatchEventType.Deleted => $"Deleted {e.Object.Metadata.Name}",
                    WatchEventType.Modified => $"Modified {e.Object.Metadata.Name}={e.Object.Data["v"]} (was {e.Old!.Data["v"]})",
                    _ => $"{e.Type} {e.Object.Metadata.Name}={e.Object.Data["v"]}",
                });
            }
        });
        var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        return (informer, seen, async () =>
        {
            await cts.CancelAsync();
            await run.WaitAsync(Eventually.DefaultTimeout);
            cts.Dispose();
        }
        );
    }

    private static string Describe(List<string> seen)
    {
        lock (seen)
        {
            return $"[{string.Join("; ", seen)}]";
        }
    }

    /// <summary>An API server for one resource: versions, history (compactable), live watches (closable).</summary>
    private sealed class FakeServer : IListWatcher<V1ConfigMap>
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, V1ConfigMap> _objects = [];
        private readonly List<WatchEvent<V1ConfigMap>> _history = [];
        private readonly List<Channel<WatchEvent<V1ConfigMap>>> _watches = [];
        private TaskCompletionSource _released = CompletedSource();
        private long _compactedThrough;

        public long Version { get; private set; }

        public int FailLists { get; set; }

        /// <summary>Every watch ends at once without an event.</summary>
        public bool EndWatchesAtOnce { get; set; }

        public int ListCalls { get; private set; }

        public List<string> WatchesStarted { get; } = [];

        public string Description => "configmaps in the fake server";

        public void Put(string name, string value)
        {
            lock (_lock)
            {
                var type = _objects.ContainsKey(name) ? WatchEventType.Modified : WatchEventType.Added;
                var obj = Make(name, value, ++Version);
                _objects[name] = obj;
                Publish(new WatchEvent<V1ConfigMap>(type, obj));
            }
        }

        public void Delete(string name)
        {
            lock (_lock)
            {
                var obj = _objects[name];
                _objects.Remove(name);
                Publish(new WatchEvent<V1ConfigMap>(WatchEventType.Deleted, Make(name, obj.Data["v"], ++Version)));
            }
        }

        public void AdvanceVersion(int by)
        {
            lock (_lock)
            {
                Version += by;
            }
        }

        public void Bookmark()
        {
            lock (_lock)
            {
                var mark = new WatchEvent<V1ConfigMap>(WatchEventType.Bookmark, new V1ConfigMap { Metadata = new V1ObjectMeta { ResourceVersion = Version.ToString(CultureInfo.InvariantCulture) } });
                foreach (var watch in _watches)
                {
                    watch.Writer.TryWrite(mark);
                }
            }
        }

        public void Compact()
        {
            lock (_lock)
            {
                _history.Clear();
                _compactedThrough = Version;
            }
        }

        public void CloseWatches(bool holdNew = false)
        {
            lock (_lock)
            {
                foreach (var watch in _watches)
                {
                    watch.Writer.TryComplete();
                }

                _watches.Clear();
                if (holdNew)
                {
                    _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

        public void ReleaseWatches() => _released.TrySetResult();

        public Task<ListResult<V1ConfigMap>> ListAsync(CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                ListCalls++;
                if (FailLists > 0)
                {
                    FailLists--;
                    throw new HttpRequestException("connection refused");
                }

                return Task.FromResult(new ListResult<V1ConfigMap>([.. _objects.Values], Version.ToString(CultureInfo.InvariantCulture)));
            }
        }

        public async IAsyncEnumerable<WatchEvent<V1ConfigMap>> WatchAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await _released.Task.WaitAsync(cancellationToken);
            if (EndWatchesAtOnce)
            {
                lock (_lock)
                {
                    WatchesStarted.Add(resourceVersion);
                }

                yield break;
            }

            var from = long.Parse(resourceVersion, CultureInfo.InvariantCulture);
            var channel = Channel.CreateUnbounded<WatchEvent<V1ConfigMap>>();
            lock (_lock)
            {
                WatchesStarted.Add(resourceVersion);
                if (from < _compactedThrough)
                {
                    throw new ResourceExpiredException($"too old resource version: {from} ({_compactedThrough})");
                }

                foreach (var past in _history.Where(e => long.Parse(e.Object.Metadata.ResourceVersion, CultureInfo.InvariantCulture) > from))
                {
                    channel.Writer.TryWrite(past);
                }

                _watches.Add(channel);
            }

            await foreach (var change in channel.Reader.ReadAllAsync(cancellationToken))
            {
                yield return change;
            }
        }

        private void Publish(WatchEvent<V1ConfigMap> change)
        {
            _history.Add(change);
            foreach (var watch in _watches)
            {
                watch.Writer.TryWrite(change);
            }
        }

        private static V1ConfigMap Make(string name, string value, long version) => new()
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "ns", ResourceVersion = version.ToString(CultureInfo.InvariantCulture) },
            Data = new Dictionary<string, string> { ["v"] = value },
        };

        private static TaskCompletionSource CompletedSource()
        {
            var source = new TaskCompletionSource();
            source.SetResult();
            return source;
        }
    }
}
