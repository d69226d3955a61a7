using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Benchmarks;

/// <summary>
/// WAL group commit on this machine's disk: 64 concurrent writers appending 256-byte entries, and one writer's append+sync
/// beside a bare pwrite+fdatasync of the same bytes on a preallocated file (the floor any durable append pays).
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class WalBenchmarks
{
    public const int Writers = 64;
    public const int AppendsPerWriter = 50;

    private readonly Lock _gate = new();
    private string _dir = "";
    private WriteAheadLog _wal = null!;
    private IWalFile _bare = null!;
    private long _bareOffset;
    private ulong _next;
    private byte[] _payload = [];
    private byte[] _frame = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "raftkv-wal-bench-" + Guid.NewGuid().ToString("N"));
        _wal = WriteAheadLog.Create(Path.Combine(_dir, "wal"), new WalMetadata(1, 1));
        _payload = new byte[256];
        Random.Shared.NextBytes(_payload);
        _frame = new byte[WalFrame.FramedSize(WalPayload.EntrySize(Entry.Normal(1, 1, _payload)))];
        Random.Shared.NextBytes(_frame);
        _bare = OsFileSystem.Instance.Open(Path.Combine(_dir, "bare.bin"), create: true);
        _bare.Preallocate(256L * 1024 * 1024);
        _bare.Sync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _wal.Dispose();
        _bare.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private Task Append()
    {
        // Indexes are assigned and enqueued in one step, as a Raft leader does.
        lock (_gate)
        {
            _next++;
            return _wal.AppendAsync([Entry.Normal(_next, 1, _payload)], null);
        }
    }

    [Benchmark(OperationsPerInvoke = Writers * AppendsPerWriter, Description = "WAL append, 64 concurrent writers (per entry)")]
    public async Task ConcurrentAppends()
    {
        var tasks = new Task[Writers];
        for (var w = 0; w < Writers; w++)
        {
            tasks[w] = Task.Run(async () =>
            {
                for (var i = 0; i < AppendsPerWriter; i++)
                {
                    await Append();
                }
            });
        }

        await Task.WhenAll(tasks);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = 20, Description = "bare pwrite+fdatasync of one framed entry")]
    public void BareWriteAndSync()
    {
        for (var i = 0; i < 20; i++)
        {
            _bare.Write(_bareOffset, _frame);
            _bare.Sync();
            _bareOffset = (_bareOffset + _frame.Length) % (255L * 1024 * 1024);
        }
    }

    /// <summary>One writer as a member's Ready loop writes: <see cref="WriteAheadLog.Append"/>, on the caller's thread.</summary>
    [Benchmark(OperationsPerInvoke = 20, Description = "WAL append+sync, one writer")]
    public void SingleWriterAppend()
    {
        for (var i = 0; i < 20; i++)
        {
            _next++;
            _wal.Append([Entry.Normal(_next, 1, _payload)], null);
        }
    }
}
