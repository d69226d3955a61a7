using BenchmarkDotNet.Attributes;

namespace RaftKv.Raft.Benchmarks;

/// <summary>
/// Proposals committed and applied per second by a 3-member in-memory cluster. Each operation is one proposal; a batch
/// of <see cref="BatchSize"/> proposals is handed to the leader at once (as the server's proposal queue does), and the
/// cluster runs until it is committed and applied. Data is 64 bytes per proposal (a small etcd put).
/// </summary>
[MemoryDiagnoser]
public class CommitThroughputBenchmark
{
    public const int ProposalsPerInvoke = 100_000;

    private InMemoryCluster _cluster = null!;
    private ReadOnlyMemory<byte>[] _batch = [];

    [Params(1, 100, 1000)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cluster = new InMemoryCluster(3);
        _batch = new ReadOnlyMemory<byte>[BatchSize];
        for (var i = 0; i < BatchSize; i++)
        {
            _batch[i] = new byte[64];
        }
    }

    [Benchmark(OperationsPerInvoke = ProposalsPerInvoke)]
    public long CommitProposals()
    {
        var target = _cluster.LeaderAppliedProposals + ProposalsPerInvoke;
        var leader = _cluster.Leader;
        for (var sent = 0; sent < ProposalsPerInvoke; sent += BatchSize)
        {
            if (BatchSize == 1)
            {
                leader.Propose(_batch[0]);
            }
            else
            {
                leader.ProposeBatch(_batch);
            }

            _cluster.Pump();
        }

        if (_cluster.LeaderAppliedProposals != target)
        {
            throw new InvalidOperationException($"Applied {_cluster.LeaderAppliedProposals}, expected {target}.");
        }

        return _cluster.LeaderAppliedProposals;
    }
}
