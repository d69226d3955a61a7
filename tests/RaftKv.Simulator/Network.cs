namespace RaftKv.Simulator;

/// <summary>
/// Which links deliver. A link is directed: blocking (a → b) leaves (b → a) alone, which is how asymmetric
/// partitions are modelled. Loss, delay and duplication rates are per run (chosen from the seed).
/// </summary>
internal sealed class Network
{
    private readonly HashSet<(ulong From, ulong To)> _blocked = [];

    /// <summary>Probability that a message is lost.</summary>
    public double Loss { get; set; }

    /// <summary>Probability that a message is delivered twice.</summary>
    public double Duplication { get; set; }

    /// <summary>Probability that a message takes a long detour (which reorders it behind later ones).</summary>
    public double LongDelay { get; set; }

    public bool Partitioned => _blocked.Count > 0;

    public bool Blocked(ulong from, ulong to) => _blocked.Contains((from, to));

    public void Block(ulong from, ulong to) => _blocked.Add((from, to));

    public void HealPartitions() => _blocked.Clear();

    /// <summary>One-way delay of a message (µs): usually 0.1–1.5 ms, sometimes up to 40 ms.</summary>
    public long Delay(Random random) =>
        100 + random.Next(1_400) + (random.NextDouble() < LongDelay ? random.Next(40_000) : 0);
}
