using LocalKube.Storage;

namespace LocalKube.Controllers;

/// <summary>A level-triggered controller: runs <see cref="Reconcile"/> after every batch of store changes and at
/// least once per resync period. Reconcile reads the whole current state, so a missed or merged event costs nothing.</summary>
internal abstract partial class ControllerLoop(IObjectStore store, ILogger logger, TimeSpan resync)
{
    protected abstract string Name { get; }

    internal ILogger Logger => logger;

    /// <summary>One pass over the current state. Exceptions are logged and the pass is retried on the next change
    /// or resync.</summary>
    protected abstract void Reconcile();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var watch = store.Watch(null, null, store.Revision);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                Reconcile();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogReconcileFailed(logger, Name, e);
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(resync);
            try
            {
                if (!await watch.Events.WaitToReadAsync(wait.Token))
                {
                    return;
                }

                while (watch.Events.TryRead(out _))
                {
                    // Drain: one pass handles all queued changes.
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Resync period elapsed.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "controller {Controller}: reconcile failed; retrying on the next change")]
    private static partial void LogReconcileFailed(ILogger logger, string controller, Exception error);
}
