namespace RaftKv.Operator.Tests.Runtime;

/// <summary>Waits for a condition (polled) with a generous timeout; on timeout fails with what was last seen.</summary>
internal static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static async Task<T> Until<T>(Func<Task<T>> observe, Func<T, bool> done, Func<T, string> describe, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        T last;
        Exception? lastError = null;
        while (true)
        {
            try
            {
                last = await observe();
                if (done(last))
                {
                    return last;
                }

                lastError = null;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                last = default!;
                lastError = e;
            }

            if (DateTime.UtcNow > deadline)
            {
                var seen = lastError is not null ? $"the last observation failed: {lastError}" : describe(last);
                Assert.Fail($"condition not met within {(timeout ?? DefaultTimeout).TotalSeconds:0}s; last seen: {seen}");
            }

            // Polling interval of a condition wait, not a sleep standing in for synchronisation.
            await Task.Delay(50);
        }
    }

    public static Task Until(Func<bool> condition, Func<string> describe, TimeSpan? timeout = null) =>
        Until(() => Task.FromResult(condition()), ok => ok, _ => describe(), timeout);
}
