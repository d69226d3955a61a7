namespace RaftKv.Operator.Tests;

public sealed class CliTests
{
    [Fact]
    public void Version_prints_the_assembly_version_in_etcds_layout()
    {
        var (code, stdout, stderr) = Run("--version");

        Assert.True(code == 0, $"exit {code}, stderr: {stderr}");
        var expected = typeof(Cli).Assembly.GetName().Version!.ToString(3);
        Assert.StartsWith($"raftkv-operator Version: {expected}{Environment.NewLine}", stdout, StringComparison.Ordinal);
        Assert.Contains("Git SHA: ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void An_invocation_it_cannot_serve_fails_and_says_why()
    {
        var (code, stdout, stderr) = Run("--namespace", "default");

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("cannot reconcile yet", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_lists_the_manifests_command_and_says_the_controller_is_missing()
    {
        var (code, stdout, _) = Run("--help");

        Assert.Equal(0, code);
        Assert.Contains("manifests --output-dir DIR", stdout, StringComparison.Ordinal);
        Assert.Contains("controller is not part of this build", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("manifests", "--output-dir")]
    [InlineData("manifests", "--bogus")]
    public void Manifests_rejects_incomplete_or_unknown_arguments(params string[] args)
    {
        var (code, stdout, stderr) = Run(args);

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains("manifests", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Manifests_accepts_the_output_dir_in_equals_form()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-manifests-").FullName;
        try
        {
            var (code, stdout, stderr) = Run("manifests", $"--output-dir={dir}");
            Assert.True(code == 0, $"exit {code}, stderr {stderr}");
            Assert.Contains("raftkv.io_raftclusters.yaml", stdout, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(dir, "raftkv.io_raftclusters.yaml")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
