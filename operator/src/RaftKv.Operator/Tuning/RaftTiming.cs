namespace RaftKv.Operator.Tuning;

/// <summary>The two Raft timing values raftkv takes, etcd's <c>--heartbeat-interval</c> and <c>--election-timeout</c>.</summary>
internal sealed record RaftTiming(TimeSpan HeartbeatInterval, TimeSpan ElectionTimeout)
{
    /// <summary>etcd's defaults, used until a measurement exists.</summary>
    public static RaftTiming EtcdDefault { get; } = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(1000));

    /// <summary>Whole milliseconds, rounded up, as etcd's flags take them.</summary>
    public static long FlagMilliseconds(TimeSpan value) => (long)Math.Ceiling(value.TotalMilliseconds);
}
