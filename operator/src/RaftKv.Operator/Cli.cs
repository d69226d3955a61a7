using System.Globalization;
using k8s;
using k8s.Exceptions;
using Microsoft.Extensions.Configuration;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Manifests;

namespace RaftKv.Operator;

/// <summary>
/// The raftkv-operator command line: <c>--version</c>, <c>--help</c>, <c>manifests --output-dir DIR</c>
/// (the CRD generated from the API types), and otherwise the controller, configured by flags.
/// </summary>
internal static class Cli
{
    public const string ProgramName = "raftkv-operator";

    /// <summary>Runs the command synchronously (the controller until SIGTERM or Ctrl-C).</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr) =>
        RunAsync(args, stdout, stderr).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
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

        return await RunControllerAsync(args, stderr);
    }

    /// <summary>Flags of the controller and the configuration keys they set (see OperatorOptions).</summary>
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["--namespace"] = nameof(OperatorOptions.Namespace),
        ["--metrics-address"] = nameof(OperatorOptions.MetricsAddress),
        ["--leader-elect"] = nameof(OperatorOptions.LeaderElection),
        ["--lease-name"] = nameof(OperatorOptions.LeaseName),
        ["--lease-namespace"] = nameof(OperatorOptions.LeaseNamespace),
        ["--identity"] = nameof(OperatorOptions.Identity),
        ["--default-storage-class"] = nameof(OperatorOptions.DefaultStorageClass),
        ["--image-repository"] = nameof(OperatorOptions.ImageRepository),
        ["--cluster-domain"] = nameof(OperatorOptions.ClusterDomain),
        ["--workers"] = nameof(OperatorOptions.Workers),
        ["--resync-period"] = nameof(OperatorOptions.ResyncPeriod),
        ["--tuning-quiet-period"] = nameof(OperatorOptions.TuningQuietPeriod),
        ["--tuning-sustained-samples"] = nameof(OperatorOptions.TuningSustainedSamples),
        ["--default-tuning-profile"] = nameof(OperatorOptions.DefaultTuningProfile),
    };

    /// <summary>Parses the controller's flags into configuration keys, or says what is wrong.</summary>
    internal static (Dictionary<string, string?> Settings, string? Kubeconfig, string? Error) ParseControllerArgs(IReadOnlyList<string> args)
    {
        var settings = new Dictionary<string, string?>(StringComparer.Ordinal);
        string? kubeconfig = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var flag = eq > 0 ? arg[..eq] : arg;
            string? value = eq > 0 ? arg[(eq + 1)..] : null;
            if (flag == "--all-namespaces")
            {
                settings[$"{OperatorOptions.Section}:{nameof(OperatorOptions.Namespace)}"] = "";
                continue;
            }

            if (flag != "--kubeconfig" && flag != "--log-level" && !Flags.ContainsKey(flag))
            {
                return (settings, null, $"unknown flag '{arg}'");
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    return (settings, null, $"flag {flag} needs a value");
                }

                value = args[++i];
            }

            switch (flag)
            {
                case "--kubeconfig":
                    kubeconfig = value;
                    break;
                case "--log-level":
                    settings["Logging:LogLevel:Default"] = value;
                    break;
                case "--resync-period" or "--tuning-quiet-period":
                    if (!GoDuration.TryParse(value, out var duration, out var why) || duration <= TimeSpan.Zero)
                    {
                        return (settings, null, $"{flag} '{value}' is not a positive duration like 30s or 10m{(why is null ? "" : $": {why}")}");
                    }

                    settings[$"{OperatorOptions.Section}:{Flags[flag]}"] = duration.ToString("c", CultureInfo.InvariantCulture);
                    break;
                case "--leader-elect" when !bool.TryParse(value, out _):
                    return (settings, null, $"--leader-elect takes true or false, not '{value}'");
                case "--tuning-sustained-samples" when !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var samples) || samples is < 1 or > 100:
                    return (settings, null, $"--tuning-sustained-samples takes a number from 1 to 100, not '{value}'");
                case "--workers" when !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1:
                    return (settings, null, $"--workers takes a positive number, not '{value}'");
                case "--default-tuning-profile" when value is not (nameof(TuningProfile.Default) or nameof(TuningProfile.Aggressive)):
                    return (settings, null, $"--default-tuning-profile takes Default or Aggressive, not '{value}'");
                default:
                    settings[$"{OperatorOptions.Section}:{Flags[flag]}"] = value;
                    break;
            }
        }

        return (settings, kubeconfig, null);
    }

    /// <summary>Where the Kubernetes credentials come from: --kubeconfig, then KUBECONFIG, then the pod's service account, then ~/.kube/config.</summary>
    internal static KubernetesClientConfiguration LoadKubeconfig(string? path)
    {
        path ??= Environment.GetEnvironmentVariable("KUBECONFIG") is { Length: > 0 } env ? env.Split(Path.PathSeparator)[0] : null;
        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new KubeConfigException($"kubeconfig {path} does not exist");
            }

            return KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
        }

        if (KubernetesClientConfiguration.IsInCluster())
        {
            return KubernetesClientConfiguration.InClusterConfig();
        }

        var home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
        if (File.Exists(home))
        {
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(home);
        }

        throw new KubeConfigException("no Kubernetes credentials: pass --kubeconfig PATH, set KUBECONFIG, or run in a pod with a service account");
    }

    private static async Task<int> RunControllerAsync(IReadOnlyList<string> args, TextWriter stderr)
    {
        var (settings, kubeconfigPath, error) = ParseControllerArgs(args);
        if (error is not null)
        {
            stderr.WriteLine($"{ProgramName}: {error}");
            stderr.WriteLine($"{ProgramName}: run '{ProgramName} --help' for the flags");
            return 2;
        }

        KubernetesClientConfiguration config;
        try
        {
            config = LoadKubeconfig(kubeconfigPath);
        }
        catch (KubeConfigException e)
        {
            stderr.WriteLine($"{ProgramName}: {e.Message}");
            return 1;
        }

        var options = new ConfigurationBuilder().AddInMemoryCollection(settings).Build()
            .GetSection(OperatorOptions.Section).Get<OperatorOptions>() ?? new OperatorOptions();
        if (options.Validate() is { Count: > 0 } problems)
        {
            foreach (var problem in problems)
            {
                stderr.WriteLine($"{ProgramName}: {problem}");
            }

            return 2;
        }

        using var client = new Kubernetes(config);
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = OperatorApp.Build(settings, client);
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine($"{ProgramName}: {e.Message}");
            return 2;
        }

        await using (app)
        {
            try
            {
                await app.RunAsync();
            }
            catch (IOException e)
            {
                stderr.WriteLine($"{ProgramName}: cannot serve health and metrics on {options.MetricsAddress}: {e.Message}");
                return 1;
            }
        }

        return 0;
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

        Runs RaftCluster resources (raftclusters.raftkv.io) as raftkv clusters on Kubernetes: the
        controller runs until SIGTERM or Ctrl-C, reconciling only while it holds the leader Lease.

          --version   print the version and exit
          --help      print this help and exit
          manifests   write the RaftCluster CustomResourceDefinition, generated from the API types,
                      to DIR/raftkv.io_raftclusters.yaml; with --check, only compare and exit 1 if stale

        Controller flags (--flag value or --flag=value):
          --kubeconfig PATH              credentials (default: $KUBECONFIG, the pod's service account, ~/.kube/config)
          --namespace NS                 run the RaftClusters of one namespace (default: all namespaces)
          --all-namespaces               run the RaftClusters of every namespace
          --metrics-address HOST:PORT    /metrics, /healthz, /readyz (default 0.0.0.0:8080)
          --leader-elect true|false      leader election on a Lease (default true)
          --lease-name NAME              the Lease (default raftkv-operator)
          --lease-namespace NS           its namespace (default: --namespace, $POD_NAMESPACE, default)
          --identity ID                  this instance in the Lease (default: pod or host name + random suffix)
          --default-storage-class NAME   for RaftClusters that name none (meant to be local SSD)
          --image-repository REPO        member image repository (default raftkv; the tag is spec.version)
          --cluster-domain DOMAIN        DNS suffix of Services (default cluster.local)
          --workers N                    clusters reconciled at once (default 2)
          --resync-period DURATION       reconcile every cluster at least this often (default 30s)
          --tuning-quiet-period DURATION Auto tuning lowers timeouts only after this long without leader changes (default 10m)
          --tuning-sustained-samples N   Auto tuning raises timeouts only to what N samples in a row (about 2s apart) call for (default 3)
          --default-tuning-profile P     Auto tuning floors for RaftClusters that name no profile: Default or Aggressive (default Default)
          --log-level LEVEL              Trace, Debug, Information, Warning, Error (default Information)
        """;
}
