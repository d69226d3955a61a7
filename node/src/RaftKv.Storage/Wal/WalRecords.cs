using System.Buffers.Binary;
using RaftKv.Raft;

namespace RaftKv.Storage.Wal;

/// <summary>Record kinds, numbered as in etcd's walpb so a reader of either recognises them.</summary>
public enum WalRecordType : byte
{
    /// <summary>Who owns the log: cluster id and member id. First record of every segment.</summary>
    Metadata = 1,

    /// <summary>One Raft log entry.</summary>
    Entry = 2,

    /// <summary>The Raft hard state (term, vote, commit).</summary>
    HardState = 3,

    /// <summary>A snapshot was taken at (index, term): entries up to it may be released.</summary>
    Snapshot = 5,
}

/// <summary>The owner of a data dir. A WAL written for another cluster or member is refused.</summary>
public readonly record struct WalMetadata(ulong ClusterId, ulong MemberId)
{
    public override string ToString() => $"cluster {ClusterId:x16} member {MemberId:x16}";
}

/// <summary>A snapshot marker as the WAL records it.</summary>
public sealed record WalSnapshot(ulong Index, ulong Term, ConfState ConfState)
{
    public static WalSnapshot Zero { get; } = new(0, 0, ConfState.Empty);
}

/// <summary>
/// On-disk framing of one record. Layout (little endian), every record starting on an 8-byte boundary:
/// <code>
///  0  u32 payload length
///  4  u8  record type        5  u8 flags (bit 0: first record of a sync batch)     6  u16 zero
///  8  u32 crc of the previous record (the chain; the first record of a new log has 0)
/// 12  u32 crc-32c of bytes 0..12 followed by the payload
/// 16  payload, then zero padding to a multiple of 8
/// </code>
/// Each record can be checked on its own (its crc covers the previous crc it names) and the chain is checked by
/// comparing that named previous crc with the crc of the record before it, also across segment files.
/// An all-zero header marks the end of the written part of a preallocated segment.
/// </summary>
internal static class WalFrame
{
    public const int HeaderSize = 16;
    public const byte BatchStartFlag = 1;

    /// <summary>No record is larger: bigger lengths in a header are damage, not data.</summary>
    public const int MaxPayload = 256 * 1024 * 1024;

    public static int FramedSize(int payloadLength) => HeaderSize + Align8(payloadLength);

    public static int Align8(int n) => (n + 7) & ~7;

    public static bool IsKnownType(byte type) =>
        type is (byte)WalRecordType.Metadata or (byte)WalRecordType.Entry or (byte)WalRecordType.HardState or (byte)WalRecordType.Snapshot;

    /// <summary>Writes the frame for <paramref name="payload"/> at the start of <paramref name="destination"/>; returns its crc.</summary>
    public static uint Write(Span<byte> destination, WalRecordType type, bool batchStart, uint previousCrc, ReadOnlySpan<byte> payload)
    {
        var framed = FramedSize(payload.Length);
        var frame = destination[..framed];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payload.Length);
        frame[4] = (byte)type;
        frame[5] = batchStart ? BatchStartFlag : (byte)0;
        frame[6] = 0;
        frame[7] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(frame[8..], previousCrc);
        payload.CopyTo(frame[HeaderSize..]);
        frame[(HeaderSize + payload.Length)..].Clear();
        var crc = Crc32C.Append(Crc32C.Compute(frame[..12]), payload);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[12..], crc);
        return crc;
    }

    /// <summary>What a header at some offset looks like.</summary>
    public enum Check
    {
        Valid,
        ZeroHeader,
        Truncated,
        BadLength,
        UnknownType,
        ChecksumMismatch,
    }

    /// <summary>Checks the record at the start of <paramref name="data"/> by itself (not its place in the chain).</summary>
    public static Check Inspect(ReadOnlySpan<byte> data, out WalRecordType type, out int payloadLength, out uint previousCrc, out uint crc, out bool batchStart)
    {
        type = 0;
        payloadLength = 0;
        previousCrc = 0;
        crc = 0;
        batchStart = false;
        if (data.Length < HeaderSize)
        {
            return data.IndexOfAnyExcept((byte)0) < 0 ? Check.ZeroHeader : Check.Truncated;
        }

        var header = data[..HeaderSize];
        if (header.IndexOfAnyExcept((byte)0) < 0)
        {
            return Check.ZeroHeader;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        type = (WalRecordType)header[4];
        batchStart = (header[5] & BatchStartFlag) != 0;
        previousCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        crc = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
        if (!IsKnownType(header[4]) || (header[5] & ~BatchStartFlag) != 0 || header[6] != 0 || header[7] != 0)
        {
            return Check.UnknownType;
        }

        if (length > MaxPayload)
        {
            return Check.BadLength;
        }

        payloadLength = (int)length;
        if (data.Length < HeaderSize + Align8(payloadLength))
        {
            return Check.Truncated;
        }

        var actual = Crc32C.Append(Crc32C.Compute(header[..12]), data.Slice(HeaderSize, payloadLength));
        return actual == crc ? Check.Valid : Check.ChecksumMismatch;
    }
}

/// <summary>Payload encodings of the record types.</summary>
internal static class WalPayload
{
    public static byte[] Metadata(WalMetadata m)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, m.ClusterId);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), m.MemberId);
        return b;
    }

    public static WalMetadata ReadMetadata(ReadOnlySpan<byte> p)
    {
        Require(p.Length == 16, "metadata");
        return new(BinaryPrimitives.ReadUInt64LittleEndian(p), BinaryPrimitives.ReadUInt64LittleEndian(p[8..]));
    }

    public static int EntrySize(Entry e) => 17 + e.Data.Length;

    public static void WriteEntry(Span<byte> p, Entry e)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(p, e.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], e.Term);
        p[16] = (byte)e.Type;
        e.Data.Span.CopyTo(p[17..]);
    }

    public static Entry ReadEntry(ReadOnlySpan<byte> p)
    {
        Require(p.Length >= 17, "entry");
        return new Entry(
            BinaryPrimitives.ReadUInt64LittleEndian(p),
            BinaryPrimitives.ReadUInt64LittleEndian(p[8..]),
            (EntryType)p[16],
            p[17..].ToArray());
    }

    public static ulong ReadEntryIndex(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt64LittleEndian(p);

    public const int HardStateSize = 24;

    public static void WriteHardState(Span<byte> p, HardState s)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(p, s.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(p[8..], s.Vote);
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], s.Commit);
    }

    public static HardState ReadHardState(ReadOnlySpan<byte> p)
    {
        Require(p.Length == HardStateSize, "hard state");
        return new(BinaryPrimitives.ReadUInt64LittleEndian(p), BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), BinaryPrimitives.ReadUInt64LittleEndian(p[16..]));
    }

    public static byte[] Snapshot(WalSnapshot s) => [.. SnapshotPrefix(s.Index, s.Term), .. ConfStateCodec.Encode(s.ConfState)];

    private static byte[] SnapshotPrefix(ulong index, ulong term)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, index);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), term);
        return b;
    }

    public static WalSnapshot ReadSnapshot(ReadOnlySpan<byte> p)
    {
        Require(p.Length >= 16, "snapshot");
        return new(BinaryPrimitives.ReadUInt64LittleEndian(p), BinaryPrimitives.ReadUInt64LittleEndian(p[8..]), ConfStateCodec.Decode(p[16..], out _));
    }

    private static void Require(bool ok, string what)
    {
        if (!ok)
        {
            throw new FormatException($"A {what} record has the wrong size.");
        }
    }
}

/// <summary>Binary form of <see cref="ConfState"/>: count + voters, count + learners (u32 / u64 little endian).</summary>
internal static class ConfStateCodec
{
    public static byte[] Encode(ConfState c)
    {
        var b = new byte[8 + (8 * (c.Voters.Count + c.Learners.Count))];
        var s = b.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)c.Voters.Count);
        var o = 4;
        foreach (var v in c.Voters)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[o..], v);
            o += 8;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(s[o..], (uint)c.Learners.Count);
        o += 4;
        foreach (var l in c.Learners)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[o..], l);
            o += 8;
        }

        return b;
    }

    public static ConfState Decode(ReadOnlySpan<byte> s, out int consumed)
    {
        var voters = ReadList(s, out var n1);
        var learners = ReadList(s[n1..], out var n2);
        consumed = n1 + n2;
        return new ConfState(voters, learners);
    }

    private static ulong[] ReadList(ReadOnlySpan<byte> s, out int consumed)
    {
        if (s.Length < 4)
        {
            throw new FormatException("Membership list is truncated.");
        }

        var n = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (n > (s.Length - 4) / 8)
        {
            throw new FormatException("Membership list is truncated.");
        }

        var list = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            list[i] = BinaryPrimitives.ReadUInt64LittleEndian(s[(4 + (8 * i))..]);
        }

        consumed = 4 + (8 * (int)n);
        return list;
    }
}
