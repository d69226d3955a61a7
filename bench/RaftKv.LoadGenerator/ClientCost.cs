namespace RaftKv.LoadGenerator;

/// <summary>
/// What the load generator's own process spent while a workload ran: CPU time (user + system, every thread), bytes
/// allocated and garbage collections. The generator shares the machine with the members it measures, so its cost per
/// request bounds what a run can show.
/// </summary>
internal sealed record ClientCost(TimeSpan Cpu, long AllocatedBytes, int Gen0, int Gen1, int Gen2)
{
    public static ClientCost Zero { get; } = new(TimeSpan.Zero, 0, 0, 0, 0);

    /// <summary>The process's totals so far.</summary>
    public static ClientCost Now() => new(
        Environment.CpuUsage.TotalTime,
        GC.GetTotalAllocatedBytes(precise: false),
        GC.CollectionCount(0),
        GC.CollectionCount(1),
        GC.CollectionCount(2));

    public ClientCost Minus(ClientCost earlier)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        return new(Cpu - earlier.Cpu, AllocatedBytes - earlier.AllocatedBytes, Gen0 - earlier.Gen0, Gen1 - earlier.Gen1, Gen2 - earlier.Gen2);
    }

    /// <summary>One line for the console, per request of <paramref name="requests"/> (nothing when none completed).</summary>
    public string Describe(long requests) => requests <= 0
        ? FormattableString.Invariant($"load generator: {Cpu.TotalSeconds:0.00} s CPU")
        : FormattableString.Invariant(
            $"load generator: {Cpu.TotalMicroseconds / requests:0} µs CPU and {AllocatedBytes / 1024.0 / requests:0.0} KiB allocated per request; GCs gen0 {Gen0}, gen1 {Gen1}, gen2 {Gen2}");
}
