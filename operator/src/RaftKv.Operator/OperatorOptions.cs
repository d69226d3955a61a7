using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator;

/// <summary>
/// The running operator's settings (options pattern: the <c>Operator</c> configuration section, which the
/// command line's flags fill; see Cli).
/// </summary>
internal sealed class OperatorOptions
{
    public const string Section = "Operator";

    /// <summary>The namespace whose RaftClusters this operator runs; empty means all namespaces.</summary>
    public string? Namespace { get; set; }

    /// <summary>Where <c>/metrics</c>, <c>/healthz</c> and <c>/readyz</c> listen (host:port; port 0 picks one).</summary>
    public string MetricsAddress { get; set; } = "0.0.0.0:8080";

    /// <summary>Run leader election (off only for a single instance under test).</summary>
    public bool LeaderElection { get; set; } = true;

    public string LeaseName { get; set; } = "raftkv-operator";

    /// <summary>Namespace of the leader Lease; empty means the watched namespace, else the pod's own (POD_NAMESPACE), else <c>default</c>.</summary>
    public string? LeaseNamespace { get; set; }

    /// <summary>This instance's identity in the Lease; empty means the host name plus a random suffix.</summary>
    public string? Identity { get; set; }

    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Every RaftCluster is reconciled at least this often, events or not (measurements change without events).</summary>
    public TimeSpan ResyncPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How soon a cluster is looked at again while a step is under way (a learner catching up, a pod starting).</summary>
    public TimeSpan ProgressRequeue { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Concurrent reconciles (of different clusters; one cluster is never reconciled twice at once).</summary>
    public int Workers { get; set; } = 2;

    /// <summary>StorageClass for specs that name none (meant to be local SSD); empty leaves the cluster's default class.</summary>
    public string? DefaultStorageClass { get; set; }

    public string ImageRepository { get; set; } = "raftkv";

    public string ClusterDomain { get; set; } = "cluster.local";

    /// <summary>Auto tuning's floors for clusters whose spec names no profile (Default or Aggressive).</summary>
    public TuningProfile DefaultTuningProfile { get; set; } = TuningProfile.Default;

    /// <summary>How long Auto tuning waits, without leader changes, before lowering timeouts.</summary>
    public TimeSpan TuningQuietPeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Auto tuning raises timing only to what this many consecutive measurement samples (about 2 s apart) all call for.</summary>
    public int TuningSustainedSamples { get; set; } = 3;

    public OperatorSettings ToSettings() => new()
    {
        ImageRepository = ImageRepository,
        DefaultStorageClassName = string.IsNullOrEmpty(DefaultStorageClass) ? null : DefaultStorageClass,
        ClusterDomain = ClusterDomain,
    };

    /// <summary>Problems that make these settings unusable, each saying what to do.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (RenewDeadline >= LeaseDuration)
        {
            problems.Add($"renew deadline ({RenewDeadline}) must be shorter than the lease duration ({LeaseDuration})");
        }

        if (RetryPeriod >= RenewDeadline)
        {
            problems.Add($"retry period ({RetryPeriod}) must be shorter than the renew deadline ({RenewDeadline})");
        }

        if (Workers < 1)
        {
            problems.Add("workers must be at least 1");
        }

        if (string.IsNullOrWhiteSpace(LeaseName))
        {
            problems.Add("the lease name must not be empty");
        }

        return problems;
    }
}
