using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Snap;

/// <summary>
/// Raft snapshots in <c>member/snap/%016x-%016x.snap</c> (term, index: etcd's naming). File layout: magic "RKVSNAP1", u32
/// CRC-32C of the body, then the body: index, term (u64 little endian), membership, data length (u64) and data.
/// A file that fails its check is renamed <c>.broken</c> and the next older one is used.
/// </summary>
public sealed partial class Snapshotter(string directory, ILogger? logger = null, IWalFileSystem? fileSystem = null)
{
    private static readonly byte[] Magic = "RKVSNAP1"u8.ToArray();
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly IWalFileSystem _fs = fileSystem ?? OsFileSystem.Instance;

    public string Directory => directory;

    public static string FileName(ulong term, ulong index) => string.Create(CultureInfo.InvariantCulture, $"{term:x16}-{index:x16}.snap");

    /// <summary>Writes <paramref name="snapshot"/> durably (temporary file, sync, rename, directory sync).</summary>
    public void Save(Snapshot snapshot)
    {
        _fs.CreateDirectory(directory);
        var conf = ConfStateCodec.Encode(snapshot.Metadata.ConfState);
        var body = new byte[16 + conf.Length + 8 + snapshot.Data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(body, snapshot.Metadata.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(8), snapshot.Metadata.Term);
        conf.CopyTo(body, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(body.AsSpan(16 + conf.Length), (ulong)snapshot.Data.Length);
        snapshot.Data.Span.CopyTo(body.AsSpan(24 + conf.Length));
        var header = new byte[12];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Crc32C.Compute(body));
        var name = FileName(snapshot.Metadata.Term, snapshot.Metadata.Index);
        var tmp = Path.Combine(directory, name + ".tmp");
        using (var file = _fs.Open(tmp, create: !_fs.FileExists(tmp)))
        {
            file.SetLength(0);
            file.Write(0, header);
            file.Write(header.Length, body);
            file.Sync();
        }

        _fs.Rename(tmp, Path.Combine(directory, name));
        _fs.SyncDirectory(directory);
    }

    /// <summary>
    /// The newest readable snapshot that <paramref name="accept"/> allows (for example: one the WAL has a marker for), or null.
    /// Damaged files met on the way are renamed <c>.broken</c>.
    /// </summary>
    public Snapshot? LoadNewest(Func<SnapshotMetadata, bool>? accept = null)
    {
        if (!_fs.DirectoryExists(directory))
        {
            return null;
        }

        foreach (var name in SnapshotNames())
        {
            var path = Path.Combine(directory, name);
            Snapshot snapshot;
            try
            {
                snapshot = Read(path);
            }
            catch (FormatException ex)
            {
                _fs.Rename(path, path + ".broken");
                _fs.SyncDirectory(directory);
                LogBroken(_logger, path, ex.Message);
                continue;
            }

            if (accept is null || accept(snapshot.Metadata))
            {
                return snapshot;
            }
        }

        return null;
    }

    /// <summary>etcd's default for --max-snapshots.</summary>
    public const int DefaultKeep = 5;

    /// <summary>How many snap files <see cref="Purge"/> keeps by default (--max-snapshots; 0 or less keeps every one).</summary>
    public int Keep { get; init; } = DefaultKeep;

    /// <summary>Deletes all but the newest <paramref name="keep"/> snapshots (etcd's --max-snapshots); 0 or less deletes none.</summary>
    public void Purge(int keep)
    {
        if (keep <= 0)
        {
            return;
        }

        foreach (var name in SnapshotNames().Skip(keep))
        {
            _fs.Delete(Path.Combine(directory, name));
        }
    }

    /// <summary>Snapshot file names, newest first.</summary>
    public IReadOnlyList<string> SnapshotNames() =>
        [.. _fs.ListFiles(directory).Where(n => n.EndsWith(".snap", StringComparison.Ordinal) && n.Length == 38).OrderDescending(StringComparer.Ordinal)];

    private Snapshot Read(string path)
    {
        using var file = _fs.Open(path, create: false);
        var bytes = new byte[file.Length];
        var n = file.Read(0, bytes);
        var s = bytes.AsSpan(0, n);
        if (s.Length < 12 + 24 || !s[..8].SequenceEqual(Magic))
        {
            throw new FormatException("not a snapshot file (bad magic or too short)");
        }

        var body = s[12..];
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        var actual = Crc32C.Compute(body);
        if (crc != actual)
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture, $"CRC mismatch (stored {crc:x8}, computed {actual:x8})"));
        }

        var index = BinaryPrimitives.ReadUInt64LittleEndian(body);
        var term = BinaryPrimitives.ReadUInt64LittleEndian(body[8..]);
        var conf = ConfStateCodec.Decode(body[16..], out var used);
        var length = BinaryPrimitives.ReadUInt64LittleEndian(body[(16 + used)..]);
        var data = body[(24 + used)..];
        if ((ulong)data.Length != length)
        {
            throw new FormatException("data length does not match");
        }

        return new Snapshot(new SnapshotMetadata(index, term, conf), data.ToArray());
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Snapshot file {Path} is damaged ({Reason}); renamed it to .broken and trying the next older one")]
    private static partial void LogBroken(ILogger logger, string path, string reason);
}
