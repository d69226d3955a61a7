namespace RaftKv.LoadGenerator.Tests;

public sealed class ReportTests
{
    [Fact]
    public void Metrics_sums_every_label_set_of_one_name_and_ignores_longer_names()
    {
        const string text = """
            # HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.
            # TYPE etcd_disk_wal_fsync_duration_seconds histogram
            etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 3
            etcd_disk_wal_fsync_duration_seconds_sum 0.25
            etcd_disk_wal_fsync_duration_seconds_count 40
            etcd_server_proposals_committed_total 1234
            etcd_server_proposals_committed_total_extra 99
            grpc_server_handled_total{grpc_code="OK",grpc_method="Put"} 10
            grpc_server_handled_total{grpc_code="OK",grpc_method="Range"} 5
            """;
        var m = ServerMetrics.Parse(text);
        Assert.Equal(40, m.WalFsyncs);
        Assert.Equal(0.25, m.WalFsyncSeconds);
        Assert.Equal(1234, m.ProposalsCommitted);
        Assert.Equal(0, m.BackendCommits);
        Assert.Equal(15, ServerMetrics.Sum(text, "grpc_server_handled_total"));
        var delta = m.Minus(new ServerMetrics(10, 0.125, 0, 0, 1000));
        Assert.Equal(new ServerMetrics(30, 0.125, 0, 0, 234), delta);
    }

    [Fact]
    public void Targets_are_judged_per_round_from_throughput_and_percentiles()
    {
        var results = new List<WorkloadResult>
        {
            Result(Driver.Etcd, Report.PutMany, round: 1, completed: 10_000, seconds: 1, latencyMicros: 50_000),
            Result(Driver.Raftkv, Report.PutMany, round: 1, completed: 25_000, seconds: 1, latencyMicros: 40_000),
            Result(Driver.Etcd, Report.PutMany, round: 2, completed: 10_000, seconds: 1, latencyMicros: 50_000),
            Result(Driver.Raftkv, Report.PutMany, round: 2, completed: 15_000, seconds: 1, latencyMicros: 40_000),
            Result(Driver.Raftkv, Report.PutOne, round: 1, completed: 100, seconds: 1, latencyMicros: 1_500),
            Result(Driver.Raftkv, Report.GetOne, round: 1, completed: 100, seconds: 1, latencyMicros: 400),
        };

        var checks = Report.Targets(results);
        var many = Assert.Single(checks, c => c.Workload == Report.PutMany);
        Assert.Equal([true, false], many.Rounds.Select(r => r.Met));
        Assert.Contains("2.50× etcd's", many.Rounds[0].Detail, StringComparison.Ordinal);
        Assert.False(Assert.Single(checks, c => c.Workload == Report.PutOne).Rounds.Single().Met);
        Assert.True(Assert.Single(checks, c => c.Workload == Report.GetOne).Rounds.Single().Met);

        var markdown = Report.Render(new ReportInput { Options = new CompareOptions { Rounds = 2 } }.With(results));
        Assert.Contains("| put, 1000 clients | raftkv | 1 | 25000 | 0 | 25,000/s | 40.0 ms |", markdown, StringComparison.Ordinal);
        Assert.Contains("round 2: **not met**", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_perf_output_keeps_the_final_progress_state_and_the_verdicts()
    {
        var raw = " 0 / 60 B 0.00%\r 30 / 60 Boo 50.00%\r 60 / 60 Booo! 100.00% 1m0s\nPASS: Throughput is 150 writes/s\n\u001b[0mFAIL: Slowest request took 0.6s\n";
        Assert.Equal(" 60 / 60 Booo! 100.00% 1m0s\nPASS: Throughput is 150 writes/s\nFAIL: Slowest request took 0.6s", Report.CleanCheckPerf(raw));
    }

    [Fact]
    public void Milliseconds_keep_three_decimals_below_ten()
    {
        Assert.Equal("0.450 ms", Report.Ms(450));
        Assert.Equal("12.3 ms", Report.Ms(12_345));
    }

    private static WorkloadResult Result(string system, string workload, int round, long completed, double seconds, long latencyMicros)
    {
        var h = new LatencyHistogram();
        for (var i = 0; i < completed; i++)
        {
            h.Record(latencyMicros);
        }

        var kind = workload.StartsWith("range", StringComparison.Ordinal) ? WorkloadKind.Range : WorkloadKind.Put;
        return new WorkloadResult(system, new WorkloadSpec(kind) { Label = workload }, completed, 0, TimeSpan.FromSeconds(seconds), h, null) { Round = round };
    }
}

internal static class ReportInputExtensions
{
    public static ReportInput With(this ReportInput input, IEnumerable<WorkloadResult> results)
    {
        input.Results.AddRange(results);
        return input;
    }
}
