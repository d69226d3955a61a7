namespace RaftKv.LoadGenerator.Tests;

public sealed class CommandLineTests
{
    [Fact]
    public void No_arguments_is_the_full_comparison()
    {
        var options = Assert.IsType<CompareOptions>(CommandLine.Parse([]));
        Assert.False(options.Quick);
        Assert.True(options.CheckPerf);
        Assert.Equal(2, options.Rounds);
        Assert.Null(options.Filter);
    }

    [Theory]
    [InlineData("--quick")]
    [InlineData("--job=short")]
    [InlineData("--job dry")]
    public void Quick_runs_one_round_without_check_perf(string args)
    {
        var options = Assert.IsType<CompareOptions>(CommandLine.Parse(args.Split(' ')));
        Assert.True(options.Quick);
        Assert.False(options.CheckPerf);
        Assert.Equal(1, options.Rounds);
    }

    [Fact]
    public void A_filter_of_star_runs_everything_and_a_glob_matches_names()
    {
        Assert.Null(Assert.IsType<CompareOptions>(CommandLine.Parse(["--filter", "*"])).Filter);
        Assert.True(CommandLine.Matches("put*", "put, 1000 clients"));
        Assert.True(CommandLine.Matches("*LINEARIZABLE*", "range linearizable, 1 client"));
        Assert.False(CommandLine.Matches("put*", "txn-put, 100 clients"));
    }

    [Fact]
    public void A_workload_subcommand_reads_etcd_benchmark_options()
    {
        var spec = Assert.IsType<WorkloadSpec>(CommandLine.Parse(
            ["range", "--endpoints", "127.0.0.1:2379, 127.0.0.1:22379", "--clients=100", "--conns", "10", "--total", "500", "--key-size", "4", "--key-space", "1000", "--consistency", "s", "--target", "leader"]));
        Assert.Equal(WorkloadKind.Range, spec.Kind);
        Assert.Equal(["127.0.0.1:2379", "127.0.0.1:22379"], spec.Endpoints);
        Assert.Equal((100, 10, 500, 4, 1000), (spec.Clients, spec.Conns, spec.Total, spec.KeySize, spec.KeySpace));
        Assert.False(spec.Linearizable);
        Assert.Equal(Target.Leader, spec.Target);
        Assert.Equal("range serializable, 100 clients", spec.Name);
    }

    [Theory]
    [InlineData("put --clients 10", "--endpoints")]
    [InlineData("put --endpoints a:1 --clients 0", "--clients must be a whole number above 0")]
    [InlineData("put --endpoints a:1 --key-size 2 --key-space 1000", "raise --key-size to 3")]
    [InlineData("put --endpoints a:1 --consistency s", "unknown option '--consistency' for 'put'")]
    [InlineData("txn-put --endpoints a:1 --txn-ops 3", "raise --key-space to 3")]
    [InlineData("watch --endpoints a:1 --watchers 2 --watch-streams 3", "every stream carries at least one watcher")]
    [InlineData("range --endpoints a:1 --consistency x", "'l' (linearizable) or 's' (serializable)")]
    [InlineData("--rounds", "--rounds needs a value")]
    [InlineData("--bogus", "unknown option '--bogus'")]
    public void Bad_options_say_what_to_change(string args, string expected)
    {
        var e = Assert.Throws<UsageException>(() => CommandLine.Parse(args.Split(' ')));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_are_zero_padded_decimal_numbers_of_the_key_size()
    {
        Assert.Equal("00000042", WorkloadSpec.KeyText(42, 8));
        Assert.Equal("99999", WorkloadSpec.KeyText(99_999, 5));
    }
}
