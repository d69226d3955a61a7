namespace RaftKv.Server.Tests;

public sealed class CliTests
{
    [Fact]
    public void Version_prints_the_assembly_version_in_etcds_layout()
    {
        var (code, stdout, stderr) = Run("--version");

        Assert.True(code == 0, $"exit {code}, stderr: {stderr}");
        var expected = typeof(Cli).Assembly.GetName().Version!.ToString(3);
        Assert.StartsWith($"raftkv Version: {expected}\n", stdout.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("Git SHA: ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_lists_etcds_flags()
    {
        var (code, stdout, _) = Run("--help");

        Assert.Equal(0, code);
        foreach (var flag in new[] { "--name", "--data-dir", "--initial-cluster", "--heartbeat-interval", "--election-timeout" })
        {
            Assert.Contains(flag, stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_bad_flag_fails_with_the_reason_and_no_output()
    {
        var (code, stdout, stderr) = Run("--heartbeat-interval=300", "--election-timeout=1000");

        Assert.Equal(Cli.ConfigError, code);
        Assert.Equal("", stdout);
        Assert.Equal("raftkv: --election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]\n", stderr.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_listen_url_with_a_host_name_is_refused_at_start_up()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-cli-");
        try
        {
            var (code, stdout, stderr) = Run("--name", "infra0", "--data-dir", dir.FullName,
                "--initial-cluster", "infra0=http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--listen-peer-urls", "http://example.invalid:2380");

            Assert.Equal(Cli.RuntimeError, code);
            Assert.Equal("", stdout);
            Assert.Contains("expected IP in URL for binding (http://example.invalid:2380)", stderr, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = Cli.Run(args, new Dictionary<string, string>(), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
