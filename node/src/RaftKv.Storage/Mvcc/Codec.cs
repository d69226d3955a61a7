using System.Buffers.Binary;

namespace RaftKv.Storage.Mvcc;

/// <summary>
/// Bytes on disk exactly as etcd writes them, so hashes compare with etcd's: the key of a revision is 8 bytes main (big
/// endian), '_', 8 bytes sub, plus 't' for a tombstone; the value is the protobuf encoding of mvccpb.KeyValue
/// (fields 1 key, 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease; zero fields omitted).
/// </summary>
internal static class Codec
{
    public const int RevisionBytes = 17;
    public const byte TombstoneMark = (byte)'t';

    public static byte[] RevisionKey(Revision rev, bool tombstone)
    {
        var b = new byte[tombstone ? RevisionBytes + 1 : RevisionBytes];
        WriteRevision(b, rev);
        if (tombstone)
        {
            b[RevisionBytes] = TombstoneMark;
        }

        return b;
    }

    public static void WriteRevision(Span<byte> b, Revision rev)
    {
        BinaryPrimitives.WriteInt64BigEndian(b, rev.Main);
        b[8] = (byte)'_';
        BinaryPrimitives.WriteInt64BigEndian(b[9..], rev.Sub);
    }

    public static Revision ReadRevision(ReadOnlySpan<byte> b) =>
        new(BinaryPrimitives.ReadInt64BigEndian(b), BinaryPrimitives.ReadInt64BigEndian(b[9..]));

    public static bool IsTombstone(ReadOnlySpan<byte> key) => key.Length == RevisionBytes + 1 && key[RevisionBytes] == TombstoneMark;

    public static byte[] EncodeKeyValue(KeyValue kv)
    {
        var size = BytesField(kv.Key.Length) + VarintField(kv.CreateRevision) + VarintField(kv.ModRevision)
            + VarintField(kv.Version) + BytesField(kv.Value.Length) + VarintField(kv.Lease);
        var buffer = new byte[size];
        var at = 0;
        WriteBytes(buffer, ref at, 1, kv.Key);
        WriteVarintField(buffer, ref at, 2, kv.CreateRevision);
        WriteVarintField(buffer, ref at, 3, kv.ModRevision);
        WriteVarintField(buffer, ref at, 4, kv.Version);
        WriteBytes(buffer, ref at, 5, kv.Value);
        WriteVarintField(buffer, ref at, 6, kv.Lease);
        return buffer;
    }

    /// <summary>Decodes a stored KeyValue; <paramref name="knownKey"/> (the same bytes, already in memory) saves copying the key.</summary>
    public static KeyValue DecodeKeyValue(ReadOnlySpan<byte> data, bool keysOnly = false, byte[]? knownKey = null)
    {
        byte[] key = [], value = [];
        long create = 0, mod = 0, version = 0, lease = 0;
        var at = 0;
        while (at < data.Length)
        {
            var tag = ReadVarint(data, ref at);
            var field = (int)(tag >> 3);
            var wire = (int)(tag & 7);
            if (wire == 2)
            {
                var len = (int)ReadVarint(data, ref at);
                var bytes = data.Slice(at, len);
                at += len;
                if (field == 1)
                {
                    key = knownKey ?? bytes.ToArray();
                }
                else if (field == 5 && !keysOnly)
                {
                    value = bytes.ToArray();
                }
            }
            else if (wire == 0)
            {
                var v = (long)ReadVarint(data, ref at);
                switch (field)
                {
                    case 2: create = v; break;
                    case 3: mod = v; break;
                    case 4: version = v; break;
                    case 6: lease = v; break;
                }
            }
            else
            {
                throw new FormatException($"Unexpected protobuf wire type {wire} in a stored KeyValue.");
            }
        }

        return new KeyValue(key, create, mod, version, value, lease);
    }

    private static int VarintSize(ulong v)
    {
        var n = 1;
        while (v >= 0x80)
        {
            v >>= 7;
            n++;
        }

        return n;
    }

    private static int VarintField(long v) => v == 0 ? 0 : 1 + VarintSize((ulong)v);

    private static int BytesField(int len) => len == 0 ? 0 : 1 + VarintSize((ulong)len) + len;

    private static void WriteVarint(Span<byte> b, ref int at, ulong v)
    {
        while (v >= 0x80)
        {
            b[at++] = (byte)(v | 0x80);
            v >>= 7;
        }

        b[at++] = (byte)v;
    }

    private static void WriteVarintField(Span<byte> b, ref int at, int field, long v)
    {
        if (v == 0)
        {
            return;
        }

        b[at++] = (byte)(field << 3);
        WriteVarint(b, ref at, (ulong)v);
    }

    private static void WriteBytes(Span<byte> b, ref int at, int field, byte[] value)
    {
        if (value.Length == 0)
        {
            return;
        }

        b[at++] = (byte)((field << 3) | 2);
        WriteVarint(b, ref at, (ulong)value.Length);
        value.CopyTo(b[at..]);
        at += value.Length;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> b, ref int at)
    {
        ulong v = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var c = b[at++];
            v |= (ulong)(c & 0x7f) << shift;
            if (c < 0x80)
            {
                return v;
            }
        }

        throw new FormatException("Malformed varint in a stored KeyValue.");
    }
}
