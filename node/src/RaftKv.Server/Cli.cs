using System.Collections;
using RaftKv.Server.Configuration;

namespace RaftKv.Server;

/// <summary>
/// The raftkv command line: etcd's flags and <c>ETCD_*</c> variables. Serving the etcd API arrives with the
/// "raftkv server" issue; until then a valid configuration is reported and the program says it cannot serve.
/// </summary>
internal static class Cli
{
    public const string ProgramName = "raftkv";

    /// <summary>Exit code for a command line or environment that cannot start a member.</summary>
    public const int ConfigError = 2;

    public static int Run(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "--version" or "-version")
        {
            stdout.WriteLine(BuildInfo.Describe(ProgramName, typeof(Cli).Assembly));
            return 0;
        }

        if (args.Count == 1 && args[0] is "--help" or "-h" or "-help")
        {
            stdout.WriteLine(Usage);
            stdout.WriteLine(MemberConfigParser.Usage());
            return 0;
        }

        MemberConfig config;
        try
        {
            config = MemberConfigParser.Parse(args, environment);
        }
        catch (ConfigException e)
        {
            stderr.WriteLine($"{ProgramName}: {e.Message}");
            return ConfigError;
        }

        stderr.WriteLine($"{ProgramName}: configuration of member \"{config.Name}\" is valid, but this build cannot serve yet: the etcd v3 API server is not part of it.");
        return ConfigError;
    }

    /// <summary>The process environment as a dictionary, for <see cref="Run"/>.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables()
            .Cast<DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);

    private const string Usage =
        """
        Usage: raftkv [flags]

        A Raft key-value server that speaks the etcd v3 gRPC API. Flags are etcd's; each can also be
        given as an environment variable ETCD_<FLAG> (for example --initial-cluster as ETCD_INITIAL_CLUSTER).

          --version
              Print the version and exit.
          --help
              Print this help and exit.
        """;
}
