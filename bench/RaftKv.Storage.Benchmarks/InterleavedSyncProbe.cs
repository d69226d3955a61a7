using System.Diagnostics;
using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Benchmarks;

/// <summary>
/// One writer's WAL append+sync against a bare pwrite+fdatasync of the same bytes, alternating one of each (and which goes first) so both see the same
/// disk: on this shared machine a sync's latency depends mostly on what other processes flush at that moment, so measuring the
/// two one after the other compares two different moments rather than two code paths.
/// </summary>
internal static class InterleavedSyncProbe
{
    public static (double AppendMedianUs, double BareMedianUs, double AppendP90Us, double BareP90Us, int Pairs) Run(int pairs = 400)
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-sync-probe-" + Guid.NewGuid().ToString("N"));
        var payload = new byte[256];
        Random.Shared.NextBytes(payload);
        var frame = new byte[WalFrame.FramedSize(WalPayload.EntrySize(Entry.Normal(1, 1, payload)))];
        Random.Shared.NextBytes(frame);
        var append = new List<double>(pairs);
        var bare = new List<double>(pairs);
        try
        {
            using var wal = WriteAheadLog.Create(Path.Combine(dir, "wal"), new WalMetadata(1, 1));
            using var file = OsFileSystem.Instance.Open(Path.Combine(dir, "bare.bin"), create: true);
            file.Preallocate(64L * 1024 * 1024);
            file.Sync();
            long offset = 0;
            for (var i = 1; i <= pairs; i++)
            {
                // Which of the two goes first alternates: a sync issued right after another one can wait for that one's
                // journal commit, and that cost should fall on both sides equally.
                if (i % 2 == 0)
                {
                    bare.Add(Bare());
                    append.Add(Wal(i));
                }
                else
                {
                    append.Add(Wal(i));
                    bare.Add(Bare());
                }
            }

            double Bare()
            {
                var t = Stopwatch.GetTimestamp();
                file.Write(offset, frame);
                file.Sync();
                offset += frame.Length;
                return Stopwatch.GetElapsedTime(t).TotalMicroseconds;
            }

            double Wal(int index)
            {
                var t = Stopwatch.GetTimestamp();
                wal.Append([Entry.Normal((ulong)index, 1, payload)], null);
                return Stopwatch.GetElapsedTime(t).TotalMicroseconds;
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        append.Sort();
        bare.Sort();
        return (append[pairs / 2], bare[pairs / 2], append[pairs * 9 / 10], bare[pairs * 9 / 10], pairs);
    }

    /// <summary>fdatasync(2) against RandomAccess.FlushToDisk (fsync), alternating on two preallocated files.</summary>
    public static (double FdatasyncMedianUs, double FsyncMedianUs, int Pairs) CompareSyncCalls(int pairs = 300)
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-sync-probe-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var block = new byte[304];
        Random.Shared.NextBytes(block);
        var data = new List<double>(pairs);
        var full = new List<double>(pairs);
        try
        {
            using var a = new OsFileSystem(WalSyncMethod.Fdatasync).Open(Path.Combine(dir, "a"), create: true);
            using var b = new OsFileSystem(WalSyncMethod.Fsync).Open(Path.Combine(dir, "b"), create: true);
            a.Preallocate(64L * 1024 * 1024);
            b.Preallocate(64L * 1024 * 1024);
            a.Sync();
            b.Sync();
            for (var i = 0; i < pairs; i++)
            {
                var offset = (long)i * block.Length;
                var t = Stopwatch.GetTimestamp();
                a.Write(offset, block);
                a.Sync();
                data.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
                t = Stopwatch.GetTimestamp();
                b.Write(offset, block);
                b.Sync();
                full.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        data.Sort();
        full.Sort();
        return (data[pairs / 2], full[pairs / 2], pairs);
    }
}
