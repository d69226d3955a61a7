using Microsoft.Extensions.Configuration;

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

    [Theory]
    [InlineData("unknown flag '--bogus'", "--bogus")]
    [InlineData("flag --namespace needs a value", "--namespace")]
    [InlineData("--leader-elect takes true or false", "--leader-elect=maybe")]
    [InlineData("--workers takes a positive number", "--workers", "0")]
    [InlineData("not a positive duration", "--resync-period", "0s")]
    [InlineData("not a positive duration", "--tuning-quiet-period=soon")]
    [InlineData("--default-tuning-profile takes Default or Aggressive, not 'fast'", "--default-tuning-profile=fast")]
    public void Bad_controller_flags_fail_with_exit_2_and_say_what_is_wrong(string expected, params string[] args)
    {
        var (code, stdout, stderr) = Run(args);

        Assert.True(code == 2, $"exit {code}, stderr: {stderr}");
        Assert.Equal("", stdout);
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_kubeconfig_fails_with_exit_1_and_names_the_file()
    {
        var missing = Path.Combine(Path.GetTempPath(), "raftkv-no-such-kubeconfig-" + Guid.NewGuid().ToString("N"));

        var (code, _, stderr) = Run("--kubeconfig", missing, "--namespace", "default");

        Assert.True(code == 1, $"exit {code}, stderr: {stderr}");
        Assert.Contains($"kubeconfig {missing} does not exist", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Controller_flags_become_operator_options()
    {
        var (settings, kubeconfig, error) = Cli.ParseControllerArgs(
            ["--kubeconfig", "/k", "--namespace=team-a", "--metrics-address", "127.0.0.1:0", "--leader-elect=false", "--lease-name", "l",
             "--default-storage-class", "local-ssd", "--resync-period", "1m30s", "--workers", "3", "--log-level", "Debug"]);

        Assert.Null(error);
        Assert.Equal("/k", kubeconfig);
        var options = new ConfigurationBuilder().AddInMemoryCollection(settings).Build()
            .GetSection(OperatorOptions.Section).Get<OperatorOptions>()!;
        Assert.Equal("team-a", options.Namespace);
        Assert.Equal("127.0.0.1:0", options.MetricsAddress);
        Assert.False(options.LeaderElection);
        Assert.Equal("l", options.LeaseName);
        Assert.Equal("local-ssd", options.ToSettings().DefaultStorageClassName);
        Assert.Equal(TimeSpan.FromSeconds(90), options.ResyncPeriod);
        Assert.Equal(3, options.Workers);
        Assert.Equal("Debug", settings["Logging:LogLevel:Default"]);
    }

    [Fact]
    public void Help_lists_the_manifests_command_and_the_controller_flags()
    {
        var (code, stdout, _) = Run("--help");

        Assert.Equal(0, code);
        Assert.Contains("manifests --output-dir DIR", stdout, StringComparison.Ordinal);
        foreach (var flag in new[] { "--kubeconfig", "--namespace", "--metrics-address", "--leader-elect", "--lease-name", "--lease-namespace", "--default-storage-class" })
        {
            Assert.Contains(flag, stdout, StringComparison.Ordinal);
        }
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
