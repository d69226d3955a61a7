using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Builders;

/// <summary>
/// Names of everything a RaftCluster owns, and the members' stable addresses. Member N is pod
/// <c>NAME-N</c>, reachable at <c>NAME-N.NAME-peers.NAMESPACE.svc.CLUSTER_DOMAIN</c> whether or not it is ready
/// (the peers Service publishes not-ready addresses), so a member's identity survives pod restarts.
/// </summary>
internal sealed class ClusterNames(string name, string @namespace, string clusterDomain, bool peerTls = false, bool clientTls = false)
{
    public const int ClientPort = 2379;
    public const int PeerPort = 2380;

    public ClusterNames(RaftCluster cluster, OperatorSettings settings)
        : this(cluster.Metadata.Name, cluster.Metadata.NamespaceProperty ?? "default", settings.ClusterDomain,
            peerTls: cluster.Spec.Tls?.PeerSecretName is not null, clientTls: cluster.Spec.Tls?.ServerSecretName is not null)
    {
    }

    /// <summary>The port of the members' plain-HTTP metrics and health listener, served when the client URLs use TLS (etcd's usual 2381).</summary>
    public const int MetricsPort = 2381;

    /// <summary>The scheme of the peer URLs: https:// with tls.peerSecretName.</summary>
    public string PeerScheme { get; } = peerTls ? "https" : "http";

    /// <summary>The scheme of the client URLs: https:// with tls.serverSecretName.</summary>
    public string ClientScheme { get; } = clientTls ? "https" : "http";

    /// <summary>The cluster-internal DNS domain (cluster.local unless the operator is told otherwise).</summary>
    public string ClusterDomain { get; } = clusterDomain;

    public string Name { get; } = name;
    public string Namespace { get; } = @namespace;
    public string StatefulSet => Name;
    public string PeerService => $"{Name}-peers";
    public string ClientService => $"{Name}-client";
    public string TuningConfigMap => $"{Name}-tuning";
    public string MembersConfigMap => $"{Name}-members";
    public string PodDisruptionBudget => Name;

    public string Pod(int ordinal) => $"{Name}-{ordinal}";

    /// <summary>The stable DNS name of member <paramref name="ordinal"/>.</summary>
    public string Host(int ordinal) => HostOf(Pod(ordinal));

    /// <summary>The stable DNS name of a member given its pod name (or a <c>$(POD_NAME)</c> reference).</summary>
    public string HostOf(string podName) => $"{podName}.{PeerService}.{Namespace}.svc.{ClusterDomain}";

    public string PeerUrl(int ordinal) => $"{PeerScheme}://{Host(ordinal)}:{PeerPort}";

    public string ClientUrl(int ordinal) => $"{ClientScheme}://{Host(ordinal)}:{ClientPort}";

    /// <summary>The wildcard DNS name that covers every member's stable name.</summary>
    public string MembersWildcard => $"*.{PeerService}.{Namespace}.svc.{ClusterDomain}";

    /// <summary><c>--initial-cluster</c> for members 0..count-1: <c>NAME-0=http://NAME-0.NAME-peers…:2380,…</c>.</summary>
    public string InitialCluster(int count) =>
        string.Join(",", Enumerable.Range(0, count).Select(i => $"{Pod(i)}={PeerUrl(i)}"));

    /// <summary>The ordinal of pod <paramref name="podName"/> of this cluster, or null if it is not one.</summary>
    public int? OrdinalOf(string podName) =>
        podName.StartsWith(Name + "-", StringComparison.Ordinal)
        && int.TryParse(podName.AsSpan(Name.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ordinal)
        && Pod(ordinal) == podName
            ? ordinal
            : null;
}
