using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Benchmarks;

/// <summary>Which durability call the WAL should use: fdatasync(2) through libc, or .NET's RandomAccess.FlushToDisk (fsync).</summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class SyncMethodBenchmarks
{
    private string _dir = "";
    private IWalFile _file = null!;
    private long _offset;
    private readonly byte[] _block = new byte[304];

    [Params(WalSyncMethod.Fdatasync, WalSyncMethod.Fsync)]
    public WalSyncMethod Method { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "raftkv-sync-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _file = new OsFileSystem(Method).Open(Path.Combine(_dir, "f"), create: true);
        _file.Preallocate(64L * 1024 * 1024);
        _file.Sync();
        Random.Shared.NextBytes(_block);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _file.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = 20, Description = "pwrite 304 B + sync")]
    public void WriteAndSync()
    {
        for (var i = 0; i < 20; i++)
        {
            _file.Write(_offset, _block);
            _file.Sync();
            _offset = (_offset + _block.Length) % (63L * 1024 * 1024);
        }
    }
}
