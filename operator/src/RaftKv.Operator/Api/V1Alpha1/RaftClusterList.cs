using k8s;
using k8s.Models;

namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>A list of RaftClusters, as the API server returns it (for list-watch).</summary>
internal sealed class RaftClusterList : IKubernetesObject<V1ListMeta>, IItems<RaftCluster>
{
    public string ApiVersion { get; set; } = RaftCluster.GroupVersion;

    public string Kind { get; set; } = RaftCluster.ResourceKind + "List";

    public V1ListMeta Metadata { get; set; } = new();

    public IList<RaftCluster> Items { get; set; } = [];
}
