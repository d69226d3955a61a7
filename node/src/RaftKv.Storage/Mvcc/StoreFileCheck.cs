using System.Buffers.Binary;

namespace RaftKv.Storage.Mvcc;

/// <summary>
/// Checks an LMDB data file's two meta pages before the file is mapped: LMDB trusts them, and a file cut shorter than
/// the last page they name makes a read past its end kill the process with SIGBUS instead of returning an error.
/// Layout (64-bit LMDB 0.9): each meta page is a 16-byte page header (page number, pad, flags with P_META = 0x08,
/// lower/upper) followed by MDB_meta: magic 0xBEEFC0DE, version, address, map size, two MDB_db records of 48 bytes (the
/// free list's md_pad holds the page size), last page number, transaction id. Meta page 0 is at offset 0, meta page 1
/// one page size further.
/// </summary>
public static class StoreFileCheck
{
    private const uint Magic = 0xBEEFC0DE;
    private const int PageHeader = 16;
    private const ushort MetaFlag = 0x08;

    /// <summary>Null when the file is absent or consistent with its newest valid meta page; otherwise what is wrong, in
    /// a sentence that names the file.</summary>
    public static string? Problem(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var length = file.Length;
        if (length == 0)
        {
            return $"the store file '{path}' is empty";
        }

        var first = new byte[PageHeader + 136];
        if (ReadAt(file, 0, first) < first.Length)
        {
            return $"the store file '{path}' is {length} bytes, too short for an LMDB meta page";
        }

        var meta0 = Parse(first, 0);
        var pageSize = meta0?.PageSize ?? 4096;
        var second = new byte[PageHeader + 136];
        var meta1 = ReadAt(file, pageSize, second) == second.Length ? Parse(second, 1) : null;
        var newest = (meta0, meta1) switch
        {
            (null, null) => null,
            ({ } a, null) => a,
            (null, { } b) => b,
            ({ } a, { } b) => a.TxnId >= b.TxnId ? a : b,
        };
        if (newest is null)
        {
            return $"the store file '{path}' has no valid LMDB meta page (magic 0xBEEFC0DE at offset 0 or {pageSize})";
        }

        var pages = newest.LastPage + 1;
        if (pages > (ulong)(long.MaxValue / newest.PageSize) || length < (long)pages * newest.PageSize)
        {
            return $"the store file '{path}' is {length} bytes but its meta page (transaction {newest.TxnId}) uses pages up to {newest.LastPage} " +
                $"({pages * (ulong)newest.PageSize} bytes): the file was cut short";
        }

        if (newest.MainRoot != ulong.MaxValue && newest.MainRoot > newest.LastPage)
        {
            return $"the store file '{path}' names root page {newest.MainRoot} beyond its last page {newest.LastPage}";
        }

        return null;
    }

    private sealed record Meta(int PageSize, ulong LastPage, ulong TxnId, ulong MainRoot);

    private static Meta? Parse(byte[] page, ulong expectedPage)
    {
        var number = BinaryPrimitives.ReadUInt64LittleEndian(page);
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(10));
        var meta = page.AsSpan(PageHeader);
        if (number != expectedPage || (flags & MetaFlag) == 0 || BinaryPrimitives.ReadUInt32LittleEndian(meta) != Magic)
        {
            return null;
        }

        var pageSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(meta[24..]);
        if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) != 0)
        {
            return null;
        }

        var mainRoot = BinaryPrimitives.ReadUInt64LittleEndian(meta[(24 + 48 + 40)..]);
        return new Meta(pageSize, BinaryPrimitives.ReadUInt64LittleEndian(meta[120..]), BinaryPrimitives.ReadUInt64LittleEndian(meta[128..]), mainRoot);
    }

    private static int ReadAt(FileStream file, long offset, byte[] buffer)
    {
        if (offset >= file.Length)
        {
            return 0;
        }

        file.Seek(offset, SeekOrigin.Begin);
        var total = 0;
        while (total < buffer.Length)
        {
            var n = file.Read(buffer, total, buffer.Length - total);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }
}
