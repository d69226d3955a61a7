using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace RaftKv.Packaging.Tests;

/// <summary>
/// The Dockerfile, without a Docker engine (none runs here): its stages and targets, non-root users, OCI
/// labels, that it copies every project the programs are built from, and that its publish commands are the
/// ones `make build` runs (and CI runs that before the tests, so they are known to succeed).
/// </summary>
public sealed partial class DockerfileTests
{
    private sealed record Stage(string Name, string From, List<(string Instruction, string Arguments)> Lines);

    private static List<Stage> Stages()
    {
        var text = Regex.Replace(Repo.Read("Dockerfile"), @"\\\n", " ");
        var stages = new List<Stage>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var instruction = line[..space].ToUpperInvariant();
            var arguments = line[(space + 1)..].Trim();
            if (instruction == "FROM")
            {
                var m = FromLine().Match(arguments);
                Assert.True(m.Success, $"FROM without a stage name: {line}");
                stages.Add(new Stage(m.Groups["name"].Value, m.Groups["image"].Value, []));
            }
            else if (stages.Count > 0)
            {
                stages[^1].Lines.Add((instruction, arguments));
            }
        }

        return stages;
    }

    [Fact]
    public void It_builds_in_an_SDK_stage_and_has_node_and_operator_targets_on_a_minimal_runtime()
    {
        var stages = Stages();
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:", stages.Single(s => s.Name == "build").From, StringComparison.Ordinal);
        foreach (var target in new[] { "node", "operator" })
        {
            var stage = stages.Single(s => s.Name == target);
            Assert.StartsWith("mcr.microsoft.com/dotnet/aspnet:", stage.From, StringComparison.Ordinal);
            Assert.Contains("chiseled", stage.From, StringComparison.Ordinal);
            // A chiseled image has no shell: the runtime stages only copy.
            Assert.DoesNotContain(stage.Lines, l => l.Instruction == "RUN");
            Assert.Contains(stage.Lines, l => l.Instruction == "ENTRYPOINT");
            Assert.Contains(stage.Lines, l => l.Instruction == "COPY" && l.Arguments.Contains($"--from=publish-{target}", StringComparison.Ordinal));
        }

        Assert.Equal("operator", stages[^1].Name);
    }

    [Theory]
    [InlineData("node")]
    [InlineData("operator")]
    public void Each_target_runs_as_the_non_root_user_the_manifests_expect_and_carries_OCI_labels(string target)
    {
        var stage = Stages().Single(s => s.Name == target);
        var user = stage.Lines.Last(l => l.Instruction == "USER").Arguments;
        Assert.Matches(@"^[1-9][0-9]*(:[1-9][0-9]*)?$", user);
        // The chart's and the operator's pods run as 65532 with runAsNonRoot, which needs a numeric non-zero USER.
        Assert.Equal("65532:65532", user);
        var labels = string.Join(' ', stage.Lines.Where(l => l.Instruction == "LABEL").Select(l => l.Arguments));
        foreach (var key in new[] { "title", "description", "version", "revision", "vendor", "base.name" })
        {
            Assert.Contains($"org.opencontainers.image.{key}=", labels, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_node_image_gets_Debian_liblmdb0()
    {
        var stages = Stages();
        var lmdb = stages.Single(s => s.Name == "lmdb");
        Assert.StartsWith("debian:", lmdb.From, StringComparison.Ordinal);
        Assert.Contains(lmdb.Lines, l => l.Instruction == "RUN" && l.Arguments.Contains("apt-get install -y --no-install-recommends liblmdb0", StringComparison.Ordinal));
        Assert.Contains(stages.Single(s => s.Name == "node").Lines, l => l.Instruction == "COPY" && l.Arguments.Contains("--from=lmdb", StringComparison.Ordinal) && l.Arguments.Contains("liblmdb.so.0", StringComparison.Ordinal));
        // raftkv loads exactly this name when LightningDB's bundled library does not load.
        Assert.Contains("\"liblmdb.so.0\"", Repo.Read("node/src/RaftKv.Storage/Mvcc/LmdbLibrary.cs"), StringComparison.Ordinal);
    }

    [Fact]
    public void Its_publish_commands_are_the_ones_make_build_runs()
    {
        var makefile = Repo.Read("Makefile");
        var publish = Regex.Match(makefile, @"(?m)^PUBLISH := \$\(DOTNET\) publish (?<flags>.*)$").Groups["flags"].Value;
        var makeFlags = Flags(publish.Replace("$(CONFIG)", "Release", StringComparison.Ordinal).Replace("$(RID)", "RID", StringComparison.Ordinal));
        var buildTarget = makefile[makefile.IndexOf("\nbuild:", StringComparison.Ordinal)..];
        buildTarget = buildTarget[..buildTarget.IndexOf("\n\n", StringComparison.Ordinal)];
        var makeProjects = Regex.Matches(buildTarget, @"\$\(PUBLISH\) (\S+\.csproj)").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal).ToList();

        var commands = Stages().SelectMany(s => s.Lines).Where(l => l.Instruction == "RUN")
            .SelectMany(l => Regex.Matches(l.Arguments, @"dotnet publish (?<project>\S+\.csproj) (?<flags>[^&]*)").Cast<Match>()).ToList();
        Assert.Equal(makeProjects, commands.Select(c => c.Groups["project"].Value).Order(StringComparer.Ordinal).ToList());
        foreach (var c in commands)
        {
            var flags = Flags(c.Groups["flags"].Value.Replace("\"$(cat /rid)\"", "RID", StringComparison.Ordinal));
            Assert.Equal(string.Join(' ', makeFlags), string.Join(' ', flags));
        }

        // `make build` ran these before the tests: the programs they publish exist and start.
        foreach (var program in new[] { "raftkv", "raftkv-operator" })
        {
            Assert.True(File.Exists(Repo.PathOf("bin/" + program)), $"bin/{program} is missing: run `make build` (it runs the Dockerfile's publish commands)");
        }
    }

    [Fact]
    public void It_copies_every_project_the_programs_are_built_from_and_the_build_context_leaves_outputs_out()
    {
        var build = Stages().Single(s => s.Name == "build");
        var copied = build.Lines.Where(l => l.Instruction == "COPY")
            .SelectMany(l => l.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(t => !t.StartsWith("--", StringComparison.Ordinal)).SkipLast(1))
            .Select(source => source.TrimEnd('/'))
            .ToList();
        foreach (var project in new[] { "node/src/RaftKv.Server/RaftKv.Server.csproj", "operator/src/RaftKv.Operator/RaftKv.Operator.csproj" })
        {
            foreach (var file in Closure(Repo.PathOf(project)))
            {
                var relative = Path.GetRelativePath(Repo.Root, file).Replace('\\', '/');
                Assert.True(copied.Any(c => relative == c || relative.StartsWith(c + "/", StringComparison.Ordinal)),
                    $"the Dockerfile's build stage does not copy {relative}, which {project} builds from");
                Assert.True(copied.Contains(relative), $"{relative} is not copied before `dotnet restore` (restore then misses its packages)");
            }
        }

        foreach (var file in new[] { "global.json", "Directory.Build.props", "Directory.Packages.props" })
        {
            Assert.Contains(file, copied);
        }

        var ignore = Repo.Read(".dockerignore");
        Assert.Contains("**/bin/", ignore, StringComparison.Ordinal);
        Assert.Contains("**/obj/", ignore, StringComparison.Ordinal);
    }

    private static HashSet<string> Closure(string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>([Path.GetFullPath(project)]);
        while (stack.TryPop(out var p))
        {
            if (!seen.Add(p))
            {
                continue;
            }

            foreach (var reference in XDocument.Load(p).Descendants("ProjectReference").Select(r => (string?)r.Attribute("Include")).OfType<string>())
            {
                stack.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(p)!, reference.Replace('\\', '/'))));
            }
        }

        return seen;
    }

    private static List<string> Flags(string text) =>
        [.. Regex.Split(text.Trim(), @"\s+").Where(f => f is not ("-v" or "quiet" or "-o" or "/out" or "bin")).Order(StringComparer.Ordinal)];

    [GeneratedRegex(@"^(?<image>\S+)\s+AS\s+(?<name>[a-z0-9-]+)$", RegexOptions.IgnoreCase)]
    private static partial Regex FromLine();
}
