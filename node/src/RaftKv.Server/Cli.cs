using System.Collections;
using Microsoft.Extensions.Logging;
using RaftKv.Server.Configuration;
using RaftKv.Server.Node;

namespace RaftKv.Server;

/// <summary>
/// The raftkv command line: etcd's flags and <c>ETCD_*</c> variables; a valid configuration starts a member that
/// serves until SIGINT/SIGTERM (or until it is removed from its cluster).
/// </summary>
internal static class Cli
{
    public const string ProgramName = "raftkv";

    /// <summary>Exit code for a command line or environment that cannot start a member.</summary>
    public const int ConfigError = 2;

    /// <summary>Exit code for a member that could not start or failed while running.</summary>
    public const int RuntimeError = 1;

    public static int Run(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "--version" or "-version")
        {
            stdout.WriteLine(BuildInfo.Describe(ProgramName, typeof(Cli).Assembly));
            return 0;
        }

        if (args.Count >= 2 && args[0] == "snapshot" && args[1] == "restore")
        {
            return SnapshotRestore.Run([.. args.Skip(2)], stdout, stderr);
        }

        if (args.Count >= 1 && args[0] == "snapshot")
        {
            stderr.WriteLine($"{ProgramName}: snapshot takes one command, restore: {ProgramName} snapshot restore FILE [flags] (see {ProgramName} snapshot restore --help); "
                + "to take a snapshot use etcdctl snapshot save");
            return ConfigError;
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

        return Serve(config, stderr, CancellationToken.None);
    }

    /// <summary>Runs a member until <paramref name="cancellationToken"/>, SIGINT or SIGTERM; returns the exit code.</summary>
    public static int Serve(MemberConfig config, TextWriter stderr, CancellationToken cancellationToken)
    {
        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(config.LogLevel switch { "debug" => LogLevel.Debug, "warn" => LogLevel.Warning, "error" => LogLevel.Error, _ => LogLevel.Information })
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            })
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddFilter("Grpc", LogLevel.Warning));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        MemberHost host;
        try
        {
            host = MemberHost.StartAsync(config, new MemberHostOptions { Loggers = loggers }, stop.Token).GetAwaiter().GetResult();
        }
        catch (MemberStartException e)
        {
            stderr.WriteLine($"{ProgramName}: {e.Message}");
            return e.ExitCode;
        }

        try
        {
            host.Stopped.WaitAsync(stop.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"{ProgramName}: member stopped: {e.Message}");
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return RuntimeError;
        }

        host.StopGracefullyAsync().GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>The process environment as a dictionary, for <see cref="Run"/>.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables()
            .Cast<DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);

    private const string Usage =
        """
        Usage: raftkv [flags]
               raftkv snapshot restore FILE [flags]   (a new data dir from 'etcdctl snapshot save'; see its --help)

        A Raft key-value server that speaks the etcd v3 gRPC API. Flags are etcd's; each can also be
        given as an environment variable ETCD_<FLAG> (for example --initial-cluster as ETCD_INITIAL_CLUSTER).

        Environment: RAFTKV_HOSTS_FILE names a hosts-format file (address, then names) consulted before DNS
        for peer host names, read again when it changes; without it, LOCALKUBE_HOSTS_FILE (set by the
        local control plane in tests/LocalKube) is used when present.

          --version
              Print the version and exit.
          --help
              Print this help and exit.
        """;
}
