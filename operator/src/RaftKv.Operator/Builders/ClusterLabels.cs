using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Builders;

/// <summary>The standard <c>app.kubernetes.io/*</c> labels on every object the operator owns.</summary>
internal static class ClusterLabels
{
    public const string NameKey = "app.kubernetes.io/name";
    public const string InstanceKey = "app.kubernetes.io/instance";
    public const string ComponentKey = "app.kubernetes.io/component";
    public const string ManagedByKey = "app.kubernetes.io/managed-by";

    public const string AppName = "raftkv";
    public const string MemberComponent = "member";
    public const string ManagedBy = "raftkv-operator";

    /// <summary>All four labels.</summary>
    public static Dictionary<string, string> For(string clusterName) => new(StringComparer.Ordinal)
    {
        [NameKey] = AppName,
        [InstanceKey] = clusterName,
        [ComponentKey] = MemberComponent,
        [ManagedByKey] = ManagedBy,
    };

    /// <summary>
    /// The labels that select one cluster's member pods. A StatefulSet's selector is immutable, so this
    /// set never changes; managed-by is left out so another tool taking over does not orphan the pods.
    /// </summary>
    public static Dictionary<string, string> Selector(string clusterName) => new(StringComparer.Ordinal)
    {
        [NameKey] = AppName,
        [InstanceKey] = clusterName,
        [ComponentKey] = MemberComponent,
    };

    /// <summary>The selector as a label-selector string (<c>status.selector</c>, for the scale subresource).</summary>
    public static string SelectorString(string clusterName) =>
        string.Join(",", Selector(clusterName).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    public static Dictionary<string, string> For(RaftCluster cluster) => For(cluster.Metadata.Name);
}
