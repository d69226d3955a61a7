namespace RaftKv.Simulator.Tests;

public sealed class CliTests
{
    [Fact]
    public void Seeds_mode_ends_with_the_summary_line_and_exits_zero_when_all_pass()
    {
        var (code, stdout, stderr) = Runs.Cli("--seeds", "6");

        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        var lines = stdout.TrimEnd().Split('\n');
        Assert.Equal("sim: 6 passed, 0 failed", lines[^1]);
    }

    [Fact]
    public void A_failing_seed_prints_its_seed_and_a_replay_command_that_reproduces_it()
    {
        var (code, stdout, _) = Runs.Cli("--seeds", "3", "--first-seed", "1", "--host-bug", "local-reads", "--nodes", "3");

        Assert.Equal(1, code);
        Assert.Matches(@"sim: \d passed, [1-3] failed\s*$", stdout);
        var failLine = stdout.Split('\n').First(l => l.StartsWith("FAIL seed ", StringComparison.Ordinal));
        var replayLine = stdout.Split('\n').First(l => l.TrimStart().StartsWith("replay: ", StringComparison.Ordinal)).Trim();
        const string prefix = "replay: dotnet run --project tests/RaftKv.Simulator -c Release -- ";
        Assert.StartsWith(prefix, replayLine, StringComparison.Ordinal);
        Assert.EndsWith(" --trace", replayLine, StringComparison.Ordinal);

        var replayArgs = replayLine[prefix.Length..].Split(' ');
        var (replayCode, replayOut, _) = Runs.Cli(replayArgs);

        Assert.Equal(1, replayCode);
        Assert.Contains(" deliver Msg", replayOut, StringComparison.Ordinal); // the full trace
        var violation = failLine[(failLine.IndexOf(": ", StringComparison.Ordinal) + 2)..];
        Assert.Contains(violation.Split('\n')[0], replayOut, StringComparison.Ordinal);
        Assert.EndsWith("sim: 0 passed, 1 failed", replayOut.TrimEnd(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--nodes", "4")]
    [InlineData("--seeds")]
    [InlineData("--trace")]
    [InlineData("--unsafe", "everything")]
    [InlineData("--frobnicate")]
    public void Bad_arguments_exit_2_with_a_message_and_the_usage(params string[] args)
    {
        var (code, _, stderr) = Runs.Cli(args);

        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr, StringComparison.Ordinal);
        Assert.Contains("usage: ", stderr, StringComparison.Ordinal);
    }
}
