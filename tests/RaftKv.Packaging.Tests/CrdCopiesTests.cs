using RaftKv.Operator.Manifests;

namespace RaftKv.Packaging.Tests;

/// <summary>One CRD, three places: what the C# types generate, config/crd, and the chart's copy (`make manifests` writes both).</summary>
public sealed class CrdCopiesTests
{
    [Fact]
    public void The_chart_CRD_config_crd_and_the_generator_output_are_identical()
    {
        var generated = CrdGenerator.ToYaml(CrdGenerator.Build());
        foreach (var path in new[] { "config/crd/" + CrdGenerator.FileName, "charts/raftkv-operator/files/" + CrdGenerator.FileName })
        {
            Assert.True(File.Exists(Repo.PathOf(path)), $"{path} is missing: run `make manifests`");
            var committed = Repo.Read(path);
            Assert.True(committed == generated, $"{path} differs from what the C# types generate: run `make manifests` and commit both copies");
        }
    }

    [Fact]
    public void Make_manifests_writes_the_chart_copy()
    {
        var makefile = Repo.Read("Makefile");
        var target = makefile[makefile.IndexOf("\nmanifests:", StringComparison.Ordinal)..];
        target = target[..target.IndexOf("\n\n", StringComparison.Ordinal)];
        Assert.Contains("manifests --output-dir config/crd", target, StringComparison.Ordinal);
        Assert.Contains("$(CHART)/files/$(CRD_FILE)", target, StringComparison.Ordinal);
    }
}
