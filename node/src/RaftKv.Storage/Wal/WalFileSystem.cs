using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftKv.Storage.Wal;

/// <summary>
/// The few file operations the WAL and the snapshotter perform. Production uses <see cref="OsFileSystem"/>;
/// tests substitute a layer that remembers which bytes were synced and simulates crashes that lose the rest.
/// </summary>
public interface IWalFileSystem
{
    bool DirectoryExists(string path);

    /// <summary>Creates the directory (and parents) and makes its entry durable in the parent.</summary>
    void CreateDirectory(string path);

    /// <summary>Names (not paths) of the files directly inside <paramref name="directory"/>.</summary>
    IReadOnlyList<string> ListFiles(string directory);

    bool FileExists(string path);

    /// <summary>Opens an existing file for reading and writing, or creates an empty one when <paramref name="create"/>.</summary>
    IWalFile Open(string path, bool create);

    /// <summary>Atomically replaces <paramref name="to"/> with <paramref name="from"/>; durable after <see cref="SyncDirectory"/>.</summary>
    void Rename(string from, string to);

    void Delete(string path);

    /// <summary>Makes creations, renames and deletions inside the directory durable.</summary>
    void SyncDirectory(string directory);
}

/// <summary>An open file addressed by offset (pread/pwrite), with an explicit durability point.</summary>
public interface IWalFile : IDisposable
{
    long Length { get; }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns how many were read.</summary>
    int Read(long offset, Span<byte> buffer);

    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Makes every written byte durable (fdatasync). Bytes written before a crash and not synced may be lost or torn.</summary>
    void Sync();

    /// <summary>Reserves disk blocks so the file is at least <paramref name="length"/> bytes, zero-filled.</summary>
    void Preallocate(long length);

    /// <summary>Shrinks or grows the file to exactly <paramref name="length"/> bytes.</summary>
    void SetLength(long length);
}

/// <summary>How the WAL makes a write durable.</summary>
public enum WalSyncMethod
{
    /// <summary>fdatasync(2) through libc: data and only the metadata needed to read it back (the default).</summary>
    Fdatasync,

    /// <summary><see cref="RandomAccess.FlushToDisk"/> (fsync(2)): also flushes timestamps; kept for comparison.</summary>
    Fsync,
}

/// <summary>The real file system (Linux first; other systems fall back to managed calls).</summary>
public sealed class OsFileSystem(WalSyncMethod syncMethod = WalSyncMethod.Fdatasync) : IWalFileSystem
{
    public static OsFileSystem Instance { get; } = new();

    public bool DirectoryExists(string path) => Directory.Exists(path);

    public void CreateDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return;
        }

        var parent = Path.GetDirectoryName(full);
        if (parent is not null && !Directory.Exists(parent))
        {
            CreateDirectory(parent);
        }

        Directory.CreateDirectory(full);
        if (parent is not null)
        {
            SyncDirectory(parent);
        }
    }

    public IReadOnlyList<string> ListFiles(string directory) =>
        [.. Directory.EnumerateFiles(directory).Select(p => Path.GetFileName(p))];

    public bool FileExists(string path) => File.Exists(path);

    public IWalFile Open(string path, bool create)
    {
        var handle = File.OpenHandle(path, create ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        return new OsFile(handle, syncMethod);
    }

    public void Rename(string from, string to) => File.Move(from, to, overwrite: true);

    public void Delete(string path) => File.Delete(path);

    public void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = NativeMethods.open(directory, NativeMethods.ORdOnly | NativeMethods.ODirectory);
        if (fd < 0)
        {
            throw new IOException($"Cannot open directory '{directory}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }

        try
        {
            if (NativeMethods.fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = NativeMethods.close(fd);
        }
    }

    private sealed class OsFile(SafeFileHandle handle, WalSyncMethod syncMethod) : IWalFile
    {
        public long Length => RandomAccess.GetLength(handle);

        public int Read(long offset, Span<byte> buffer)
        {
            var total = 0;
            while (total < buffer.Length)
            {
                var n = RandomAccess.Read(handle, buffer[total..], offset + total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }

        public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(handle, data, offset);

        public void Sync()
        {
            if (syncMethod == WalSyncMethod.Fdatasync && OperatingSystem.IsLinux())
            {
                if (NativeMethods.fdatasync((int)handle.DangerousGetHandle()) != 0)
                {
                    throw new IOException($"fdatasync failed (errno {Marshal.GetLastPInvokeError()}); the WAL cannot guarantee durability, stopping.");
                }
            }
            else
            {
                RandomAccess.FlushToDisk(handle);
            }
        }

        public void Preallocate(long length)
        {
            if (OperatingSystem.IsLinux())
            {
                var rc = NativeMethods.fallocate((int)handle.DangerousGetHandle(), 0, 0, length);
                if (rc == 0)
                {
                    return;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != NativeMethods.EOpNotSupp)
                {
                    throw new IOException($"fallocate of {length} bytes failed: {new Win32Exception(errno).Message} (errno {errno}).");
                }
            }

            if (Length < length)
            {
                RandomAccess.SetLength(handle, length);
            }
        }

        public void SetLength(long length) => RandomAccess.SetLength(handle, length);

        public void Dispose() => handle.Dispose();
    }
}

internal static partial class NativeMethods
{
    public const int ORdOnly = 0;
    public const int ODirectory = 0x10000; // Linux x86-64 and arm64
    public const int EOpNotSupp = 95;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long len);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);
}
