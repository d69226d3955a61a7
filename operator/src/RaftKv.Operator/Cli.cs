using RaftKv.Operator.Manifests;

namespace RaftKv.Operator;

/// <summary>
/// The raftkv-operator command line. It answers <c>--version</c> and <c>--help</c> and writes the
/// manifests generated from the API types (<c>manifests --output-dir DIR</c>). The controller itself is
/// not part of this build yet: running the operator says so plainly and fails.
/// </summary>
internal static class Cli
{
    public const string ProgramName = "raftkv-operator";

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "--version" or "-version")
        {
            stdout.WriteLine(BuildInfo.Describe(ProgramName, typeof(Cli).Assembly));
            return 0;
        }

        if (args.Count == 1 && args[0] is "--help" or "-h" or "-help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }

        if (args.Count >= 1 && args[0] == "manifests")
        {
            return Manifests(args.Skip(1).ToList(), stdout, stderr);
        }

        stderr.WriteLine($"{ProgramName}: this build cannot reconcile yet: the controller is not part of it.");
        stderr.WriteLine($"{ProgramName}: run '{ProgramName} --help' for what it can do.");
        return 2;
    }

    private static int Manifests(List<string> args, TextWriter stdout, TextWriter stderr)
    {
        string? outputDir = null;
        var check = false;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--output-dir" when i + 1 < args.Count:
                    outputDir = args[++i];
                    break;
                case var arg when arg.StartsWith("--output-dir=", StringComparison.Ordinal):
                    outputDir = arg["--output-dir=".Length..];
                    break;
                case "--check":
                    check = true;
                    break;
                default:
                    stderr.WriteLine($"{ProgramName} manifests: unexpected argument '{args[i]}'");
                    stderr.WriteLine($"usage: {ProgramName} manifests --output-dir DIR [--check]");
                    return 2;
            }
        }

        if (string.IsNullOrEmpty(outputDir))
        {
            stderr.WriteLine($"{ProgramName} manifests: --output-dir DIR is required (the repository writes config/crd)");
            return 2;
        }

        var path = Path.Combine(outputDir, CrdGenerator.FileName);
        var yaml = CrdGenerator.ToYaml(CrdGenerator.Build());
        if (check)
        {
            var current = File.Exists(path) ? File.ReadAllText(path) : null;
            if (current == yaml)
            {
                stdout.WriteLine($"{path} is up to date");
                return 0;
            }

            stderr.WriteLine(current is null
                ? $"{path} is missing: run '{ProgramName} manifests --output-dir {outputDir}'"
                : $"{path} is stale: run '{ProgramName} manifests --output-dir {outputDir}' and commit the result");
            return 1;
        }

        Directory.CreateDirectory(outputDir);
        File.WriteAllText(path, yaml);
        stdout.WriteLine($"wrote {path}");
        return 0;
    }

    private const string Usage =
        """
        Usage: raftkv-operator [flags]
               raftkv-operator manifests --output-dir DIR [--check]

        Runs RaftCluster resources (raftclusters.raftkv.io) as raftkv clusters on Kubernetes.
        The controller is not part of this build yet; only the commands below work.

          --version   print the version and exit
          --help      print this help and exit
          manifests   write the RaftCluster CustomResourceDefinition, generated from the API types,
                      to DIR/raftkv.io_raftclusters.yaml; with --check, only compare and exit 1 if stale
        """;
}
