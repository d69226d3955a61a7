namespace RaftKv.Server.Tests;

/// <summary>Waits for a condition with a generous timeout (never a fixed sleep); fails with what was last seen.</summary>
internal static class Eventually
{
    public static Task TrueAsync(Func<bool> condition, Func<string> describe, TimeSpan? timeout = null) =>
        TrueAsync(() => Task.FromResult(condition()), describe, timeout);

    /// <summary>As above, for a condition that has to ask (e.g. a member's status).</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, Func<string> describe, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"condition not met within {timeout ?? TimeSpan.FromSeconds(20)}; saw: {describe()}");
            }

            await Task.Delay(20);
        }
    }

    public static async Task<T> ValueAsync<T>(Func<Task<T?>> probe, Func<string> describe, TimeSpan? timeout = null)
        where T : class
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var value = await probe();
            if (value is not null)
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"no value within {timeout ?? TimeSpan.FromSeconds(20)}; saw: {describe()}");
            }

            await Task.Delay(50);
        }
    }
}
