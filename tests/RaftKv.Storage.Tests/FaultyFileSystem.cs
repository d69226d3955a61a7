using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

/// <summary>
/// An in-memory file system that knows which bytes are durable. A crash (<see cref="CrashAtWrite"/>) throws at the chosen write and
/// from then on the process is "dead"; <see cref="Reboot"/> gives the state a machine would find after power loss: synced bytes
/// survive, unsynced bytes are lost, and with <see cref="TearLastWrite"/> a prefix of the interrupted write reaches the disk anyway.
/// Directory operations (create, rename, delete) are durable at once (like a journaling file system after the WAL's directory syncs).
/// </summary>
internal sealed class FaultyFileSystem : IWalFileSystem
{
    private readonly Dictionary<string, Node> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirs = new(StringComparer.Ordinal);

    public int Writes { get; private set; }

    public int Syncs { get; private set; }

    /// <summary>The write (1-based count) at which the simulated machine dies; 0 = never.</summary>
    public int CrashAtWrite { get; set; }

    /// <summary>When crashing, the interrupted write lands partially (its first <see cref="TornBytes"/> bytes).</summary>
    public bool TearLastWrite { get; set; }

    public int TornBytes { get; set; } = 5;

    public bool Crashed { get; private set; }

    private sealed class Node
    {
        public byte[] Durable = [];
        public byte[] Current = [];
    }

    /// <summary>A new file system holding what survived the crash.</summary>
    public FaultyFileSystem Reboot()
    {
        var fs = new FaultyFileSystem();
        foreach (var d in _dirs)
        {
            fs._dirs.Add(d);
        }

        foreach (var (path, node) in _files)
        {
            fs._files[path] = new Node { Durable = (byte[])node.Durable.Clone(), Current = (byte[])node.Durable.Clone() };
        }

        return fs;
    }

    private void Check()
    {
        if (Crashed)
        {
            throw new IOException("simulated crash: the machine is down");
        }
    }

    public bool DirectoryExists(string path) => _dirs.Contains(path);

    public void CreateDirectory(string path)
    {
        Check();
        _dirs.Add(path);
    }

    public IReadOnlyList<string> ListFiles(string directory) =>
        [.. _files.Keys.Where(p => Path.GetDirectoryName(p) == directory).Select(p => Path.GetFileName(p))];

    public bool FileExists(string path) => _files.ContainsKey(path);

    public IWalFile Open(string path, bool create)
    {
        Check();
        if (!_files.TryGetValue(path, out var node))
        {
            if (!create)
            {
                throw new FileNotFoundException(path);
            }

            node = new Node();
            _files[path] = node;
        }
        else if (create)
        {
            throw new IOException($"{path} exists");
        }

        return new File(this, node);
    }

    public void Rename(string from, string to)
    {
        Check();
        var node = _files[from];
        _files.Remove(from);
        _files[to] = node;
    }

    public void Delete(string path)
    {
        Check();
        _files.Remove(path);
    }

    public void SyncDirectory(string directory) => Check();

    /// <summary>Flips one bit of a file's durable and current content (media damage).</summary>
    public void Corrupt(string path, long offset)
    {
        var n = _files[path];
        n.Durable[offset] ^= 0x40;
        n.Current[offset] ^= 0x40;
    }

    private sealed class File(FaultyFileSystem fs, Node node) : IWalFile
    {
        public long Length => node.Current.Length;

        public int Read(long offset, Span<byte> buffer)
        {
            fs.Check();
            var n = (int)Math.Max(0, Math.Min(buffer.Length, node.Current.Length - offset));
            node.Current.AsSpan((int)offset, n).CopyTo(buffer);
            return n;
        }

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            fs.Check();
            fs.Writes++;
            if (fs.CrashAtWrite > 0 && fs.Writes == fs.CrashAtWrite)
            {
                fs.Crashed = true;
                if (fs.TearLastWrite)
                {
                    var torn = data[..Math.Min(fs.TornBytes, data.Length)];
                    Grow(ref node.Durable, offset + torn.Length);
                    torn.CopyTo(node.Durable.AsSpan((int)offset));
                }

                throw new IOException("simulated crash during write");
            }

            Grow(ref node.Current, offset + data.Length);
            data.CopyTo(node.Current.AsSpan((int)offset));
        }

        public void Sync()
        {
            fs.Check();
            fs.Syncs++;
            node.Durable = (byte[])node.Current.Clone();
        }

        public void Preallocate(long length)
        {
            fs.Check();
            Grow(ref node.Current, length);
        }

        public void SetLength(long length)
        {
            fs.Check();
            var b = node.Current;
            Array.Resize(ref b, (int)length);
            node.Current = b;
        }

        public void Dispose()
        {
        }

        private static void Grow(ref byte[] b, long length)
        {
            if (b.Length < length)
            {
                Array.Resize(ref b, (int)length);
            }
        }
    }
}
