using k8s;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tests.Api;

/// <summary>
/// A RaftCluster whose resources hold a quantity the Kubernetes client cannot parse (found by the fault suite's
/// random-specs scenario: an API server without the CRD's quantity pattern stores it). Before, decoding threw, so the
/// RaftCluster list failed as a whole and the operator saw no cluster at all; now the spec decodes and is refused on
/// that field.
/// </summary>
public sealed class UnparsableQuantityTests
{
    private const string List = """
        {"apiVersion":"raftkv.io/v1alpha1","kind":"RaftClusterList","metadata":{"resourceVersion":"7"},"items":[
          {"apiVersion":"raftkv.io/v1alpha1","kind":"RaftCluster","metadata":{"name":"bad"},
           "spec":{"replicas":3,"resources":{"requests":{"cpu":"banana","memory":"256Mi"},"limits":{"memory":"1.5.5"}}}},
          {"apiVersion":"raftkv.io/v1alpha1","kind":"RaftCluster","metadata":{"name":"good"},
           "spec":{"replicas":3,"resources":{"requests":{"cpu":2,"memory":"256Mi"}}}}]}
        """;

    [Fact]
    public void A_list_with_an_unparsable_quantity_still_decodes_every_cluster()
    {
        var list = KubernetesJson.Deserialize<RaftClusterList>(List);

        Assert.Equal(["bad", "good"], list.Items.Select(c => c.Metadata.Name));
        var good = list.Items[1].Spec.Resources!;
        Assert.IsNotType<UnparsedResourceRequirements>(good);
        Assert.Equal(new ResourceQuantity("2"), good.Requests["cpu"]);
        Assert.Empty(RaftClusterValidator.Validate(list.Items[1].Spec));
    }

    [Fact]
    public void The_validator_names_each_unparsable_quantity_and_keeps_the_others()
    {
        var bad = KubernetesJson.Deserialize<RaftClusterList>(List).Items[0].Spec;

        var errors = RaftClusterValidator.Validate(bad);

        Assert.Equal(["spec.resources.limits.memory", "spec.resources.requests.cpu"], errors.Select(e => e.Field).Order(StringComparer.Ordinal));
        Assert.Contains(errors, e => e.Message.Contains("\"banana\" is not a Kubernetes quantity", StringComparison.Ordinal));
        Assert.Equal(new ResourceQuantity("256Mi"), bad.Resources!.Requests["memory"]);
    }

    [Fact]
    public void Resources_write_back_in_the_clients_format()
    {
        var cluster = new RaftCluster
        {
            Metadata = new V1ObjectMeta { Name = "x" },
            Spec = new RaftClusterSpec { Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m") } } },
        };

        var json = KubernetesJson.Serialize(cluster);

        Assert.Contains("\"resources\":{\"requests\":{\"cpu\":\"500m\"}}", json, StringComparison.Ordinal);
        Assert.Equal(new ResourceQuantity("500m"), KubernetesJson.Deserialize<RaftCluster>(json).Spec.Resources!.Requests["cpu"]);
    }
}
