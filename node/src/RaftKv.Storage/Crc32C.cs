using System.Buffers.Binary;
using System.Numerics;

namespace RaftKv.Storage;

/// <summary>
/// CRC-32C (Castagnoli), the checksum etcd uses for its WAL and hashes. <see cref="BitOperations.Crc32C(uint, ulong)"/>
/// uses the CPU's CRC instruction where there is one. Values follow the usual convention (initial value and final
/// XOR of 0xFFFFFFFF), so <c>Compute("123456789") == 0xE3069283</c>, and <see cref="Append"/> continues a previous value.
/// </summary>
public static class Crc32C
{
    /// <summary>The checksum of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>The checksum of the bytes that gave <paramref name="crc"/> followed by <paramref name="data"/>.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var state = ~crc;
        while (data.Length >= 8)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            state = BitOperations.Crc32C(state, b);
        }

        return ~state;
    }
}
