using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tests.Builders;

/// <summary>RaftCluster objects for tests.</summary>
internal static class Clusters
{
    public const string Uid = "6f1c2a9e-0d5b-4f37-9a51-3c2d1e0f4b7a";

    public static RaftCluster Demo(int replicas = 3, Action<RaftClusterSpec>? configure = null)
    {
        var spec = new RaftClusterSpec { Replicas = replicas };
        configure?.Invoke(spec);
        return new RaftCluster
        {
            Metadata = new V1ObjectMeta { Name = "demo", NamespaceProperty = "prod", Uid = Uid, Generation = 1 },
            Spec = spec,
        };
    }
}
