namespace RaftKv.Server;

/// <summary>
/// The raftkv command line. Today it answers <c>--version</c> and <c>--help</c>; serving the etcd API
/// arrives with the "raftkv server" issue, and until then any other invocation says so and fails.
/// </summary>
internal static class Cli
{
    public const string ProgramName = "raftkv";

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "--version" or "-version")
        {
            stdout.WriteLine(BuildInfo.Describe(ProgramName));
            return 0;
        }

        if (args.Count == 1 && args[0] is "--help" or "-h" or "-help")
        {
            stdout.WriteLine(Usage);
            return 0;
        }

        stderr.WriteLine($"{ProgramName}: this build cannot serve yet: the etcd v3 API server is not part of it.");
        stderr.WriteLine($"{ProgramName}: run '{ProgramName} --help' for what it can do.");
        return 2;
    }

    private const string Usage =
        """
        Usage: raftkv [flags]

        A Raft key-value server that speaks the etcd v3 gRPC API.

          --version   print the version and exit
          --help      print this help and exit
        """;
}
