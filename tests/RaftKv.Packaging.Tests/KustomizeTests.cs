using k8s.Models;
using RaftKv.Operator;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Packaging.Tests;

/// <summary>config/: `kubectl kustomize config/default` (what `kubectl apply -k config/default` applies) and the samples.</summary>
public sealed class KustomizeTests
{
    private static async Task<List<Manifest>> Build(string dir) =>
        Manifests.Split(await Repo.RunOk(Repo.Kubectl, "kustomize", Repo.PathOf(dir)));

    [Fact]
    public async Task Config_default_builds_the_CRD_RBAC_and_operator_and_every_object_reads_strictly()
    {
        var all = await Build("config/default");
        Assert.Equal(
            new[] { "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "Namespace", "Role", "RoleBinding", "Service", "ServiceAccount" },
            all.Select(m => m.Kind).Order(StringComparer.Ordinal).ToArray());
        foreach (var m in all)
        {
            Manifests.Strict(m);
        }

        Assert.All(all.Where(m => m.Kind is not ("Namespace" or "CustomResourceDefinition" or "ClusterRole" or "ClusterRoleBinding")),
            m => Assert.Equal("raftkv-system", m.Namespace));
        var binding = (V1ClusterRoleBinding)Manifests.Strict(all.Single(m => m.Kind == "ClusterRoleBinding"));
        Assert.Equal("raftkv-system", Assert.Single(binding.Subjects).NamespaceProperty);

        var deployment = (V1Deployment)Manifests.Strict(all.Single(m => m.Kind == "Deployment"));
        var container = deployment.Spec.Template.Spec.Containers[0];
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        var (_, _, error) = Cli.ParseControllerArgs([.. container.Args.Select(a => a.Replace("$(POD_IP)", "10.0.0.7", StringComparison.Ordinal))]);
        Assert.Null(error);
    }

    [Fact]
    public async Task The_kustomize_CRD_is_the_generated_one()
    {
        var crd = (V1CustomResourceDefinition)Manifests.Strict((await Build("config/default")).Single(m => m.Kind == "CustomResourceDefinition"));
        var generated = Manifests.Strict<V1CustomResourceDefinition>(Repo.Read("config/crd/raftkv.io_raftclusters.yaml"));
        Assert.Equal(k8s.KubernetesJson.Serialize(generated.Spec), k8s.KubernetesJson.Serialize(crd.Spec));
    }

    [Fact]
    public async Task The_samples_are_valid_RaftClusters()
    {
        var samples = await Build("config/samples");
        Assert.NotEmpty(samples);
        foreach (var m in samples)
        {
            var cluster = Manifests.Strict<RaftCluster>(m.Yaml);
            var errors = RaftClusterValidator.Validate(cluster.Spec).Concat(RaftClusterValidator.ValidateName(cluster.Metadata.Name)).ToList();
            Assert.True(errors.Count == 0, $"{m}: {string.Join("; ", errors)}");
        }

        var zones = Manifests.Strict<RaftCluster>(samples.Single(m => m.Name == "zones").Yaml);
        Assert.Equal(5, zones.Spec.Replicas);
        Assert.Equal(AntiAffinityMode.Required, zones.Spec.Affinity.AntiAffinity);
        var manual = Manifests.Strict<RaftCluster>(samples.Single(m => m.Name == "manual").Yaml);
        Assert.Equal(TuningMode.Manual, manual.Spec.Tuning.Mode);
        var secure = Manifests.Strict<RaftCluster>(samples.Single(m => m.Name == "secure").Yaml);
        Assert.Equal(("secure-server-tls", "secure-peer-tls", "secure-operator-tls"), (secure.Spec.Tls?.ServerSecretName, secure.Spec.Tls?.PeerSecretName, secure.Spec.Tls?.OperatorSecretName));
    }
}
