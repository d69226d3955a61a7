using System.Net;
using System.Runtime.CompilerServices;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace RaftKv.Operator.Runtime;

/// <summary>One watch event. Bookmarks carry only a resourceVersion in <see cref="Object"/>'s metadata.</summary>
internal sealed record WatchEvent<T>(WatchEventType Type, T Object);

/// <summary>A list page's items and the resourceVersion to watch from.</summary>
internal sealed record ListResult<T>(IReadOnlyList<T> Items, string ResourceVersion);

/// <summary>The resourceVersion a watch resumes from is older than the API server keeps (410 Gone): list again.</summary>
internal sealed class ResourceExpiredException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>List and watch one resource (in one namespace or all). Implementations throw
/// <see cref="ResourceExpiredException"/> for 410 Gone, whether as the HTTP status or as a watch ERROR event.</summary>
internal interface IListWatcher<T>
{
    /// <summary>Human-readable, for logs: "pods in ns default".</summary>
    string Description { get; }

    Task<ListResult<T>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Events after <paramref name="resourceVersion"/>, bookmarks included; ends when the server closes the watch.</summary>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync(string resourceVersion, CancellationToken cancellationToken);
}

/// <summary>
/// List-watch over KubernetesClient's generated list calls: <paramref name="list"/> is called with
/// (resourceVersion, watch) and returns the HTTP response; with watch=true its body is the event stream.
/// </summary>
internal sealed class KubernetesListWatcher<T, TList>(
    string description,
    Func<string?, bool, CancellationToken, Task<HttpOperationResponse<TList>>> list) : IListWatcher<T>
    where T : IKubernetesObject<V1ObjectMeta>
    where TList : IKubernetesObject<V1ListMeta>, IItems<T>
{
    public string Description => description;

    public async Task<ListResult<T>> ListAsync(CancellationToken cancellationToken)
    {
        using var response = await list(null, false, cancellationToken);
        var body = response.Body;
        return new ListResult<T>([.. body.Items ?? []], body.Metadata?.ResourceVersion ?? "");
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync(string resourceVersion, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Exception? streamError = null;
        IAsyncEnumerable<(WatchEventType, T)> events;
        try
        {
            // The generic list-call watcher is marked obsolete in favour of per-kind WatchList methods; it is the
            // one entry point that serves every kind (custom resources included) with our own list delegate.
#pragma warning disable CS0618
            events = WatcherExt.WatchAsync<T, TList>(list(resourceVersion, true, cancellationToken), e => streamError ??= e, cancellationToken);
#pragma warning restore CS0618
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
        {
            throw new ResourceExpiredException($"{description}: resourceVersion {resourceVersion} is gone", e);
        }

        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await enumerator.MoveNextAsync();
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Gone)
            {
                throw new ResourceExpiredException($"{description}: resourceVersion {resourceVersion} is gone", e);
            }
            catch (KubernetesException e) when (e.Status?.Code == (int)HttpStatusCode.Gone)
            {
                throw new ResourceExpiredException($"{description}: {e.Status.Message}", e);
            }

            if (!more)
            {
                break;
            }

            var (type, item) = enumerator.Current;
            yield return new WatchEvent<T>(type, item);
        }

        // ERROR events arrive through the error callback (the server closes the watch after one).
        switch (streamError)
        {
            case null:
                yield break;
            case KubernetesException { Status.Code: (int)HttpStatusCode.Gone } gone:
                throw new ResourceExpiredException($"{description}: {gone.Status.Message}", gone);
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                yield break;
            default:
                throw new IOException($"{description}: the watch failed: {streamError.Message}", streamError);
        }
    }
}
