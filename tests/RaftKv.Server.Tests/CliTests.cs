namespace RaftKv.Server.Tests;

public sealed class CliTests
{
    [Fact]
    public void Version_prints_the_assembly_version_in_etcds_layout()
    {
        var (code, stdout, stderr) = Run("--version");

        Assert.True(code == 0, $"exit {code}, stderr: {stderr}");
        var expected = typeof(Cli).Assembly.GetName().Version!.ToString(3);
        Assert.StartsWith($"raftkv Version: {expected}{Environment.NewLine}", stdout, StringComparison.Ordinal);
        Assert.Contains("Git SHA: ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void An_invocation_it_cannot_serve_fails_and_says_why()
    {
        var (code, stdout, stderr) = Run("--name", "infra0");

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("cannot serve yet", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
