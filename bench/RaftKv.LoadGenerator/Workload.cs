namespace RaftKv.LoadGenerator;

internal enum WorkloadKind
{
    Put,
    Range,
    TxnPut,
    Watch,
}

/// <summary>Which members the clients talk to: every endpoint given (connections spread round robin) or the leader only.</summary>
internal enum Target
{
    All,
    Leader,
}

/// <summary>One workload as etcd's benchmark tool describes it: what to send, from how many clients over how many connections.</summary>
internal sealed record WorkloadSpec(WorkloadKind Kind)
{
    /// <summary>Name in the results table; defaults to the kind and client count.</summary>
    public string? Label { get; init; }

    public IReadOnlyList<string> Endpoints { get; init; } = [];

    public int Clients { get; init; } = 1;

    public int Conns { get; init; } = 1;

    /// <summary>Requests to send (for watch: puts; every watcher should receive each one).</summary>
    public int Total { get; init; } = 10_000;

    public int KeySize { get; init; } = 8;

    public int ValSize { get; init; } = 256;

    /// <summary>Keys are drawn uniformly from this many distinct keys (etcd's --key-space-size, default 1).</summary>
    public int KeySpace { get; init; } = 1;

    /// <summary>Range only: linearizable (ReadIndex) or serializable (local) reads.</summary>
    public bool Linearizable { get; init; } = true;

    public Target Target { get; init; } = Target.All;

    public int Watchers { get; init; } = 1;

    public int WatchStreams { get; init; } = 1;

    public int TxnOps { get; init; } = 1;

    /// <summary>Stop sending after this long even if <see cref="Total"/> is not reached (the rate is over what completed).</summary>
    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromSeconds(60);

    public string Name => Label ?? Kind switch
    {
        WorkloadKind.Range => $"range {(Linearizable ? "linearizable" : "serializable")}, {Clients} client{Plural(Clients)}",
        WorkloadKind.TxnPut => $"txn-put, {Clients} client{Plural(Clients)}",
        WorkloadKind.Watch => $"watch, {Watchers} watcher{Plural(Watchers)}, {Clients} putter{Plural(Clients)}",
        _ => $"put, {Clients} client{Plural(Clients)}",
    };

    /// <summary>What the run sends, in etcd benchmark terms (for the results file).</summary>
    public string Describe()
    {
        var parts = new List<string> { $"clients {Clients}", $"conns {Conns}", $"total {Total}", $"key {KeySize} B", $"value {ValSize} B", $"key space {KeySpace}", $"target {Target.ToString().ToLowerInvariant()}" };
        if (Kind == WorkloadKind.Watch)
        {
            parts.Add($"watchers {Watchers} on {WatchStreams} stream{Plural(WatchStreams)}");
        }

        if (Kind == WorkloadKind.TxnPut && TxnOps != 1)
        {
            parts.Add($"{TxnOps} puts per txn");
        }

        return string.Join(", ", parts);
    }

    /// <summary>Keys are decimal numbers zero-padded to the key size (etcd's tool writes a varint into a zeroed buffer).</summary>
    public static string KeyText(int index, int keySize) => index.ToString($"D{keySize}", System.Globalization.CultureInfo.InvariantCulture);

    private static string Plural(int n) => n == 1 ? "" : "s";
}

/// <summary>What one workload measured against one system.</summary>
internal sealed record WorkloadResult(string System, WorkloadSpec Spec, long Completed, long Errors, TimeSpan Elapsed, LatencyHistogram Latency, string? FirstError)
{
    /// <summary>Completed requests (watch: delivered events) per second of the measured interval.</summary>
    public double Throughput => Elapsed > TimeSpan.Zero ? Completed / Elapsed.TotalSeconds : 0;

    /// <summary>Peak of the members' summed resident set size during the run, in bytes (0 when not sampled).</summary>
    public long PeakRssBytes { get; init; }

    public int Round { get; init; } = 1;

    /// <summary>CPU time (user + system) the three members used during the run, in seconds.</summary>
    public double MemberCpuSeconds { get; init; }

    /// <summary>The leader's WAL fsyncs, backend commits and committed proposals during the run.</summary>
    public ServerMetrics LeaderMetrics { get; init; } = ServerMetrics.Zero;

    /// <summary>What the load generator's own process spent during the timed part (console only, not in the report).</summary>
    public ClientCost ClientCost { get; init; } = ClientCost.Zero;
}
