using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace RaftKv.Operator.Runtime;

/// <summary>A change the informer applied to its cache. <see cref="Old"/> is the cached copy before (null for an add).</summary>
internal sealed record InformerEvent<T>(WatchEventType Type, T? Old, T Object);

/// <summary>Cached objects keyed <c>namespace/name</c> (or <c>name</c> for cluster-scoped ones).</summary>
internal sealed class ObjectCache<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly ConcurrentDictionary<string, T> _objects = new(StringComparer.Ordinal);

    public static string KeyOf(T obj) => KeyOf(obj.Metadata.NamespaceProperty, obj.Metadata.Name);

    public static string KeyOf(string? @namespace, string name) => string.IsNullOrEmpty(@namespace) ? name : $"{@namespace}/{name}";

    public int Count => _objects.Count;

    public T? Get(string? @namespace, string name) => _objects.GetValueOrDefault(KeyOf(@namespace, name));

    public IReadOnlyList<T> List(string? @namespace = null) =>
        [.. _objects.Values.Where(o => @namespace is null || o.Metadata.NamespaceProperty == @namespace)];

    internal T? Set(T obj)
    {
        T? old = default;
        _objects.AddOrUpdate(KeyOf(obj), obj, (_, previous) =>
        {
            old = previous;
            return obj;
        });
        return old;
    }

    internal T? Remove(string key) => _objects.TryRemove(key, out var old) ? old : default;

    internal IReadOnlyCollection<string> Keys => [.. _objects.Keys];
}

/// <summary>Informer settings.</summary>
internal sealed record InformerOptions
{
    /// <summary>First retry delay after a failed list or watch; doubles up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Keeps a local cache of one resource in step with the API server: list once, then watch from the
/// list's resourceVersion, following bookmarks so a reconnect resumes from the newest version seen. When
/// the server no longer has that version (410 Gone), it lists again and replaces the cache, reporting
/// the differences as events (objects gone meanwhile as deletions). Handlers run on the informer's loop,
/// in order; they must be quick (enqueue a key, nothing more).
/// </summary>
internal sealed partial class Informer<T>
    where T : IKubernetesObject<V1ObjectMeta>
{
    private readonly IListWatcher<T> _source;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly InformerOptions _options;
    private readonly List<Action<InformerEvent<T>>> _handlers = [];
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _lists;

    public Informer(IListWatcher<T> source, TimeProvider time, ILogger logger, InformerOptions? options = null)
    {
        _source = source;
        _time = time;
        _logger = logger;
        _options = options ?? new InformerOptions();
    }

    public ObjectCache<T> Cache { get; } = new();

    /// <summary>How many full lists were made (1 after the first sync; each relist after a 410 adds one).</summary>
    public int Lists => Volatile.Read(ref _lists);

    /// <summary>The resourceVersion the next watch resumes from.</summary>
    public string? ResourceVersion { get; private set; }

    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>Completes after the first list has filled the cache.</summary>
    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _synced.Task.WaitAsync(cancellationToken);

    /// <summary>Register a handler; only before <see cref="RunAsync"/>.</summary>
    public void Subscribe(Action<InformerEvent<T>> handler) => _handlers.Add(handler);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var delay = _options.RetryDelay;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (ResourceVersion is null)
                {
                    await RelistAsync(cancellationToken);
                }

                var received = false;
                await foreach (var change in _source.WatchAsync(ResourceVersion!, cancellationToken))
                {
                    Apply(change);
                    received = true;
                    delay = _options.RetryDelay;
                }

                if (!received)
                {
                    // The server ended the watch without sending anything (overloaded, or a proxy that cuts streams):
                    // back off like after a failure instead of re-watching in a tight loop.
                    LogEmptyWatch(_source.Description, delay);
                    await Task.Delay(delay, _time, cancellationToken);
                    delay = delay * 2 > _options.MaxRetryDelay ? _options.MaxRetryDelay : delay * 2;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (ResourceExpiredException e)
            {
                LogExpired(_source.Description, ResourceVersion, e.Message);
                ResourceVersion = null;
            }
#pragma warning disable CA1031 // An informer outlives any one failure: it logs, backs off and retries.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogWatchFailed(e, _source.Description, delay);
                try
                {
                    await Task.Delay(delay, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                delay = delay * 2 > _options.MaxRetryDelay ? _options.MaxRetryDelay : delay * 2;
            }
        }
    }

    private async Task RelistAsync(CancellationToken cancellationToken)
    {
        var listed = await _source.ListAsync(cancellationToken);
        Interlocked.Increment(ref _lists);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in listed.Items)
        {
            seen.Add(ObjectCache<T>.KeyOf(item));
            var old = Cache.Set(item);
            if (old is null || old.Metadata.ResourceVersion != item.Metadata.ResourceVersion)
            {
                Notify(new InformerEvent<T>(old is null ? WatchEventType.Added : WatchEventType.Modified, old, item));
            }
        }

        foreach (var key in Cache.Keys.Where(k => !seen.Contains(k)))
        {
            if (Cache.Remove(key) is { } gone)
            {
                Notify(new InformerEvent<T>(WatchEventType.Deleted, gone, gone));
            }
        }

        ResourceVersion = listed.ResourceVersion;
        LogListed(_source.Description, listed.Items.Count, listed.ResourceVersion);
        _synced.TrySetResult();
    }

    private void Apply(WatchEvent<T> change)
    {
        var version = change.Object.Metadata?.ResourceVersion;
        switch (change.Type)
        {
            case WatchEventType.Bookmark:
                break;
            case WatchEventType.Added or WatchEventType.Modified:
                {
                    var old = Cache.Set(change.Object);
                    Notify(new InformerEvent<T>(old is null ? WatchEventType.Added : WatchEventType.Modified, old, change.Object));
                    break;
                }

            case WatchEventType.Deleted:
                {
                    var old = Cache.Remove(ObjectCache<T>.KeyOf(change.Object));
                    Notify(new InformerEvent<T>(WatchEventType.Deleted, old, change.Object));
                    break;
                }

            default:
                return;
        }

        if (!string.IsNullOrEmpty(version))
        {
            ResourceVersion = version;
        }
    }

    private void Notify(InformerEvent<T> change)
    {
        foreach (var handler in _handlers)
        {
            try
            {
                handler(change);
            }
#pragma warning disable CA1031 // A faulty handler must not stop the cache from following the server.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogHandlerFailed(e, _source.Description);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Listed {Source}: {Count} object(s) at resourceVersion {ResourceVersion}")]
    private partial void LogListed(string source, int count, string resourceVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Watch of {Source} from resourceVersion {ResourceVersion} expired ({Reason}); listing again")]
    private partial void LogExpired(string source, string? resourceVersion, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Watch of {Source} ended without events; watching again in {Delay}")]
    private partial void LogEmptyWatch(string source, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "List or watch of {Source} failed; retrying in {Delay}")]
    private partial void LogWatchFailed(Exception exception, string source, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "An event handler of {Source} failed")]
    private partial void LogHandlerFailed(Exception exception, string source);
}
