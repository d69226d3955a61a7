namespace RaftKv.Operator;

/// <summary>
/// The raftkv-operator command line. Today it answers <c>--version</c> and <c>--help</c>; the controller
/// arrives with the "raftkv-operator" issue, and until then any other invocation says so and fails.
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

        stderr.WriteLine($"{ProgramName}: this build cannot reconcile yet: the controller is not part of it.");
        stderr.WriteLine($"{ProgramName}: run '{ProgramName} --help' for what it can do.");
        return 2;
    }

    private const string Usage =
        """
        Usage: raftkv-operator [flags]

        Runs RaftCluster resources (raftclusters.raftkv.io) as raftkv clusters on Kubernetes.

          --version   print the version and exit
          --help      print this help and exit
        """;
}
