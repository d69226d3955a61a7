namespace RaftKv.Raft;

/// <summary>What an <see cref="Entry"/> carries.</summary>
public enum EntryType : byte
{
    /// <summary>Application data (possibly empty: a leader appends an empty entry when it takes office).</summary>
    Normal = 0,

    /// <summary>An encoded <see cref="ConfChange"/> (see <see cref="ConfChange.Encode"/>).</summary>
    ConfChange = 1,
}

/// <summary>
/// One slot of the replicated log. Invariant: within one log, indexes are consecutive and
/// terms never decrease with the index.
/// </summary>
public sealed record Entry(ulong Index, ulong Term, EntryType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>Bytes counted per entry on top of its data, for the size limits (index, term, type, framing).</summary>
    public const int OverheadBytes = 24;

    /// <summary>Approximate encoded size, used for <see cref="RaftConfig.MaxSizePerMessage"/>, in-flight bytes and storage byte limits.</summary>
    public long Size => Data.Length + OverheadBytes;

    /// <summary>A normal entry with the given data.</summary>
    public static Entry Normal(ulong index, ulong term, ReadOnlyMemory<byte> data) => new(index, term, EntryType.Normal, data);
}

/// <summary>
/// The state that must be on stable storage before messages that depend on it are sent:
/// the current term, the candidate voted for in that term (0 = none), and the highest known committed index.
/// </summary>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit)
{
    /// <summary>The zero hard state of a node that never took part in an election.</summary>
    public static HardState Empty => default;

    public bool IsEmpty => Term == 0 && Vote == 0 && Commit == 0;
}

/// <summary>
/// Cluster membership: the voters (count for elections and commitment) and the learners
/// (receive the log, never vote). Invariant: both lists are sorted, without duplicates, and disjoint.
/// </summary>
public sealed record ConfState
{
    /// <summary>Membership with the given members (sorted and de-duplicated here).</summary>
    public ConfState(IEnumerable<ulong> voters, IEnumerable<ulong>? learners = null)
    {
        var v = new SortedSet<ulong>(voters);
        var l = new SortedSet<ulong>(learners ?? []);
        if (v.Contains(0) || l.Contains(0))
        {
            throw new ArgumentException("Node id 0 is reserved for 'none'; use ids >= 1.", nameof(voters));
        }

        l.ExceptWith(v);
        Voters = [.. v];
        Learners = [.. l];
    }

    /// <summary>No members: the state of a node that has not been bootstrapped and received no snapshot.</summary>
    public static ConfState Empty { get; } = new([], []);

    public IReadOnlyList<ulong> Voters { get; }

    public IReadOnlyList<ulong> Learners { get; }

    public bool Equals(ConfState? other) =>
        other is not null && Voters.SequenceEqual(other.Voters) && Learners.SequenceEqual(other.Learners);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var v in Voters)
        {
            h.Add(v);
        }

        h.Add(-1);
        foreach (var l in Learners)
        {
            h.Add(l);
        }

        return h.ToHashCode();
    }

    public override string ToString() =>
        $"voters=[{string.Join(',', Voters)}] learners=[{string.Join(',', Learners)}]";
}

/// <summary>Kinds of single-server membership change.</summary>
public enum ConfChangeType : byte
{
    /// <summary>Add a voter, or promote a learner to voter.</summary>
    AddNode = 0,

    /// <summary>Remove a voter or a learner.</summary>
    RemoveNode = 1,

    /// <summary>Add a learner (non-voting member); refused for a current voter (demotion is Remove + AddLearner).</summary>
    AddLearnerNode = 3,
}

/// <summary>
/// One membership change. Proposed with <see cref="RaftNode.ProposeConfChange"/>, it travels in the log
/// as an <see cref="EntryType.ConfChange"/> entry whose data is <see cref="Encode"/>; when that entry is
/// applied the host decodes it and calls <see cref="RaftNode.ApplyConfChange"/>.
/// </summary>
/// <param name="Type">What to do.</param>
/// <param name="NodeId">The member concerned (>= 1).</param>
/// <param name="Context">Opaque bytes for the host (for example the member's peer URLs).</param>
public sealed record ConfChange(ConfChangeType Type, ulong NodeId, ReadOnlyMemory<byte> Context = default)
{
    private const byte FormatVersion = 1;

    /// <summary>Layout: version (1 byte), type (1 byte), node id (8 bytes little endian), context (rest).</summary>
    public byte[] Encode()
    {
        var buffer = new byte[10 + Context.Length];
        buffer[0] = FormatVersion;
        buffer[1] = (byte)Type;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(2), NodeId);
        Context.Span.CopyTo(buffer.AsSpan(10));
        return buffer;
    }

    /// <summary>Reads what <see cref="Encode"/> wrote.</summary>
    /// <exception cref="FormatException">The bytes are not an encoded ConfChange.</exception>
    public static ConfChange Decode(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        if (span.Length < 10 || span[0] != FormatVersion)
        {
            throw new FormatException($"Not an encoded ConfChange ({span.Length} bytes, version byte {(span.Length > 0 ? span[0] : -1)}; expected >= 10 bytes and version {FormatVersion}).");
        }

        var type = (ConfChangeType)span[1];
        if (type is not (ConfChangeType.AddNode or ConfChangeType.RemoveNode or ConfChangeType.AddLearnerNode))
        {
            throw new FormatException($"Unknown ConfChange type {span[1]}.");
        }

        return new ConfChange(type, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(span[2..]), data[10..]);
    }
}

/// <summary>Where a snapshot sits in the log and the membership at that point.</summary>
public sealed record SnapshotMetadata(ulong Index, ulong Term, ConfState ConfState)
{
    public static SnapshotMetadata Empty { get; } = new(0, 0, ConfState.Empty);
}

/// <summary>
/// A state machine image covering the log up to and including <see cref="SnapshotMetadata.Index"/>.
/// A snapshot with index 0 is empty (no snapshot).
/// </summary>
public sealed record Snapshot(SnapshotMetadata Metadata, ReadOnlyMemory<byte> Data)
{
    public static Snapshot Empty { get; } = new(SnapshotMetadata.Empty, ReadOnlyMemory<byte>.Empty);

    public bool IsEmpty => Metadata.Index == 0;
}
