using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Storage.Benchmarks;

/// <summary>MVCC store on LMDB with its production settings (every commit synced): batched puts and point reads.</summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 2, iterationCount: 10)]
public class MvccBenchmarks
{
    public const int Keys = 100_000;
    public const int Batch = 1000;
    public const int Reads = 10_000;

    private string _dir = "";
    private MvccStore _store = null!;
    private byte[][] _keys = [];
    private RangeRequest[] _ranges = [];
    private byte[] _value = [];
    private ulong _index;
    private int _cursor;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "raftkv-mvcc-bench-" + Guid.NewGuid().ToString("N"));
        _store = MvccStore.Open(Path.Combine(_dir, "db"));
        _keys = [.. Enumerable.Range(0, Keys).Select(i => Encoding.ASCII.GetBytes($"/registry/pods/default/pod-{i:D6}"))];
        _ranges = [.. _keys.Select(k => new RangeRequest { Key = k })];
        _value = new byte[256];
        Random.Shared.NextBytes(_value);
        for (var i = 0; i < Keys; i += Batch)
        {
            PutBatch(i);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private void PutBatch(int start)
    {
        var commands = new ApplyCommand[Batch];
        for (var j = 0; j < Batch; j++)
        {
            commands[j] = new ApplyCommand(++_index, 1, new PutRequest { Key = _keys[(start + j) % Keys], Value = _value });
        }

        _store.Apply(commands);
    }

    [Benchmark(OperationsPerInvoke = Batch, Description = "MVCC put, 1000 per applied batch (per put)")]
    public void BatchedPut()
    {
        PutBatch(_cursor);
        _cursor = (_cursor + Batch) % Keys;
    }

    [Benchmark(OperationsPerInvoke = Reads, Description = "MVCC point range, one reader (per read)")]
    public long PointRange() => ReadSlice(_cursor++ % Keys, Reads);

    /// <summary>Reads run concurrently (shared lock, LMDB readers do not block each other): one reader per core.</summary>
    [Benchmark(OperationsPerInvoke = Reads * 2, Description = "MVCC point range, one reader per core (per read)")]
    public long ParallelPointRange()
    {
        var threads = Environment.ProcessorCount;
        var perThread = Reads * 2 / threads;
        var start = _cursor++ % Keys;
        long total = 0;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            Interlocked.Add(ref total, ReadSlice((start + (t * 104_729)) % Keys, perThread)));
        return total;
    }

    private long ReadSlice(int start, int count)
    {
        long n = 0;
        for (var i = 0; i < count; i++)
        {
            n += _store.Range(_ranges[(int)((start + ((long)i * 7919)) % Keys)]).Count;
        }

        return n;
    }
}
