using k8s.Models;
using RaftKv.Operator;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Packaging.Tests;

/// <summary>charts/raftkv-operator: lint, the values schema, and what it renders, read strictly as Kubernetes types.</summary>
public sealed class ChartTests
{
    [Fact]
    public async Task Helm_lint_strict_passes_with_defaults_and_with_every_option_on()
    {
        await Repo.RunOk(Repo.Helm, "lint", "--strict", Repo.ChartDir);
        await Repo.RunOk(Repo.Helm, ["lint", "--strict", Repo.ChartDir, .. Chart.AllOptions]);
    }

    [Theory]
    [InlineData("replicaCount=0", "/replicaCount")]
    [InlineData("replicaCount=two", "/replicaCount")]
    [InlineData("image.pullPolicy=Sometimes", "/image/pullPolicy")]
    [InlineData("operator.resyncPeriod=soon", "/operator/resyncPeriod")]
    [InlineData("operator.workers=0", "/operator/workers")]
    [InlineData("operator.logLevel=Verbose", "/operator/logLevel")]
    [InlineData("operator.watchNamespace=Not_A_Namespace", "/operator/watchNamespace")]
    [InlineData("clusterDefaults.tuningProfile=Fast", "/clusterDefaults/tuningProfile")]
    [InlineData("localStorageClass.reclaimPolicy=Recycle", "/localStorageClass/reclaimPolicy")]
    [InlineData("metrics.serviceMonitor.enabeld=true", "/metrics/serviceMonitor")]
    [InlineData("replicas=3", "replicas")]
    public async Task The_values_schema_rejects_a_wrong_value_and_names_it(string set, string path)
    {
        var r = await Chart.Template("--set", set);
        Assert.True(r.ExitCode != 0, $"--set {set} was accepted:\n{r}");
        Assert.Contains("schema", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(path, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ServiceMonitor_without_the_metrics_Service_fails_with_a_message_that_says_what_to_do()
    {
        var r = await Chart.Template("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false");
        Assert.True(r.ExitCode != 0, r.ToString());
        Assert.Contains("needs metrics.service.enabled", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_rendered_object_reads_strictly_as_its_Kubernetes_type()
    {
        var all = await Chart.Render(Chart.AllOptions);
        var kinds = all.Select(m => m.Kind).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            new[] { "ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition", "Deployment", "PodMonitor", "PrometheusRule",
                "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor", "StorageClass" },
            kinds);
        foreach (var m in all.Where(m => !Manifests.MonitoringKinds.Contains($"{m.ApiVersion}/{m.Kind}")))
        {
            Manifests.Strict(m);
        }

        // Namespaced watch: a Role and RoleBinding in the watched namespace instead of cluster-wide ones.
        var scoped = await Chart.Render("--set", "operator.watchNamespace=apps");
        foreach (var m in scoped)
        {
            Manifests.Strict(m);
        }

        Assert.Contains(scoped, m => m is { Kind: "Role", Namespace: "apps" });
        Assert.DoesNotContain(scoped, m => m.Kind == "ClusterRole");
    }

    [Fact]
    public async Task The_PodMonitor_scrapes_the_ports_the_operator_gives_members_with_and_without_client_tls()
    {
        var monitor = (await Chart.Render(Chart.AllOptions)).Single(m => m.Kind == "PodMonitor").Yaml;
        var builder = new RaftKv.Operator.Builders.ClusterObjectBuilder(new RaftKv.Operator.OperatorSettings());
        var plain = builder.StatefulSet(new RaftCluster { Metadata = new() { Name = "a", NamespaceProperty = "ns" } }, 3).Spec.Template;
        var secure = builder.StatefulSet(new RaftCluster
        {
            Metadata = new() { Name = "b", NamespaceProperty = "ns" },
            Spec = new RaftClusterSpec { Tls = new RaftClusterTls { ServerSecretName = "s", OperatorSecretName = "o" } },
        }, 3).Spec.Template;

        // Members without client TLS: the client port, kept; with it: the metrics port, and the client port dropped by the label.
        Assert.Contains("- port: client", monitor, StringComparison.Ordinal);
        Assert.Contains("- port: metrics", monitor, StringComparison.Ordinal);
        Assert.Contains(plain.Spec.Containers[0].Ports, p => p.Name == "client");
        Assert.DoesNotContain(plain.Spec.Containers[0].Ports, p => p.Name == "metrics");
        Assert.Contains(secure.Spec.Containers[0].Ports, p => p.Name == "metrics");
        var label = RaftKv.Operator.Builders.ClusterObjectBuilder.ClientTlsLabel;
        Assert.Contains($"__meta_kubernetes_pod_label_{label.Replace('.', '_').Replace('/', '_').Replace('-', '_')}", monitor, StringComparison.Ordinal);
        Assert.Equal("true", secure.Metadata.Labels[label]);
        Assert.False(plain.Metadata.Labels.ContainsKey(label));
    }

    [Fact]
    public async Task Defaults_render_no_monitoring_objects_and_no_StorageClass()
    {
        var kinds = (await Chart.Render()).Select(m => m.Kind).ToHashSet(StringComparer.Ordinal);
        Assert.DoesNotContain("ServiceMonitor", kinds);
        Assert.DoesNotContain("PodMonitor", kinds);
        Assert.DoesNotContain("PrometheusRule", kinds);
        Assert.DoesNotContain("StorageClass", kinds);
        Assert.Contains("CustomResourceDefinition", kinds);
    }

    [Fact]
    public async Task The_CRD_is_kept_on_uninstall_and_otherwise_the_generated_one()
    {
        var crd = (V1CustomResourceDefinition)Manifests.Strict((await Chart.Render()).Single(m => m.Kind == "CustomResourceDefinition"));
        Assert.Equal("keep", crd.Metadata.Annotations["helm.sh/resource-policy"]);
        var generated = Manifests.Strict<V1CustomResourceDefinition>(Repo.Read("config/crd/raftkv.io_raftclusters.yaml"));
        Assert.Equal(k8s.KubernetesJson.Serialize(generated.Spec), k8s.KubernetesJson.Serialize(crd.Spec));

        var notKept = (V1CustomResourceDefinition)Manifests.Strict((await Chart.Render("--set", "crds.keep=false")).Single(m => m.Kind == "CustomResourceDefinition"));
        Assert.False(notKept.Metadata.Annotations?.ContainsKey("helm.sh/resource-policy") ?? false);
        Assert.DoesNotContain(await Chart.Render("--set", "crds.install=false"), m => m.Kind == "CustomResourceDefinition");
    }

    [Fact]
    public async Task The_Deployment_runs_restricted_with_health_probes_on_the_metrics_port()
    {
        var deployment = (V1Deployment)Manifests.Strict((await Chart.Render()).Single(m => m.Kind == "Deployment"));
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0L, pod.SecurityContext.RunAsUser ?? 0L);
        Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal(new[] { "ALL" }, container.SecurityContext.Capabilities.Drop);
        Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal("metrics", container.LivenessProbe.HttpGet.Port.Value);
        Assert.Equal(8080, container.Ports.Single(p => p.Name == "metrics").ContainerPort);
        Assert.Equal("ghcr.io/raftkv/raftkv-operator:0.1.0", container.Image);
        Assert.Equal(2, deployment.Spec.Replicas);
        Assert.Contains(pod.Volumes, v => v.Name == "tmp" && v.EmptyDir is not null);
    }

    [Fact]
    public async Task The_Deployment_flags_are_ones_the_operator_accepts()
    {
        foreach (var values in new[] { Array.Empty<string>(), Chart.AllOptions, ["--set", "operator.watchNamespace=apps", "--set", "clusterDefaults.storageClassName=fast"] })
        {
            var deployment = (V1Deployment)Manifests.Strict((await Chart.Render(values)).Single(m => m.Kind == "Deployment"));
            var args = deployment.Spec.Template.Spec.Containers[0].Args
                .Select(a => a.Replace("$(POD_IP)", "10.0.0.7", StringComparison.Ordinal).Replace("$(POD_NAME)", "op-0", StringComparison.Ordinal))
                .ToList();
            var (settings, _, error) = Cli.ParseControllerArgs(args);
            Assert.True(error is null, $"raftkv-operator refuses the chart's flags ({string.Join(' ', args)}): {error}");
            Assert.Equal("10.0.0.7:8080", settings["Operator:MetricsAddress"]);
            Assert.Equal("raftkv-system", settings["Operator:LeaseNamespace"]);
        }

        var scoped = (V1Deployment)Manifests.Strict((await Chart.Render("--set", "operator.watchNamespace=apps", "--set", "localStorageClass.create=true")).Single(m => m.Kind == "Deployment"));
        var (scopedSettings, _, _) = Cli.ParseControllerArgs([.. scoped.Spec.Template.Spec.Containers[0].Args]);
        Assert.Equal("apps", scopedSettings["Operator:Namespace"]);
        Assert.Equal("local-ssd", scopedSettings["Operator:DefaultStorageClass"]);
    }

    [Fact]
    public async Task The_chart_grants_the_same_permissions_as_config_rbac()
    {
        var chart = await Chart.Render();
        var config = Manifests.Split(Repo.Read("config/rbac/role.yaml") + "\n---\n" + Repo.Read("config/rbac/leader_election_role.yaml"));
        string Rules(IEnumerable<V1PolicyRule> rules) => string.Join("\n", rules.Select(r =>
            $"{string.Join(',', r.ApiGroups)} {string.Join(',', r.Resources)}: {string.Join(',', r.Verbs.Order(StringComparer.Ordinal))}").Order(StringComparer.Ordinal));
        Assert.Equal(
            Rules(((V1ClusterRole)Manifests.Strict(config.Single(m => m.Kind == "ClusterRole"))).Rules),
            Rules(((V1ClusterRole)Manifests.Strict(chart.Single(m => m.Kind == "ClusterRole"))).Rules));
        Assert.Equal(
            Rules(((V1Role)Manifests.Strict(config.Single(m => m.Kind == "Role"))).Rules),
            Rules(((V1Role)Manifests.Strict(chart.Single(m => m.Kind == "Role"))).Rules));
        // Nothing broader than what the operator calls: no wildcards, no get on what informers cache, and Secrets only
        // by name (get: the ones spec.tls names), never listed or watched.
        var all = ((V1ClusterRole)Manifests.Strict(chart.Single(m => m.Kind == "ClusterRole"))).Rules;
        Assert.DoesNotContain(all, r => r.Verbs.Contains("*") || r.Resources.Contains("*"));
        Assert.Equal(["get"], Assert.Single(all, r => r.Resources.Contains("secrets")).Verbs);
    }

    [Fact]
    public async Task NOTES_end_with_a_RaftCluster_that_passes_the_CRD_rules()
    {
        var r = await Repo.Run(Repo.Helm, ["install", "rk", Repo.ChartDir, "--namespace", "raftkv-system", "--dry-run=client", "--set", "localStorageClass.create=true"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var notes = r.Stdout[(r.Stdout.IndexOf("NOTES:", StringComparison.Ordinal) + "NOTES:".Length)..];
        var start = notes.IndexOf("apiVersion: raftkv.io/v1alpha1", StringComparison.Ordinal);
        Assert.True(start >= 0, $"NOTES carry no RaftCluster:\n{notes}");
        var cluster = Manifests.Strict<RaftCluster>(notes[start..]);
        Assert.Equal("demo", cluster.Metadata.Name);
        Assert.Equal("local-ssd", cluster.Spec.Storage.StorageClassName);
        Assert.Empty(RaftClusterValidator.Validate(cluster.Spec));
    }
}
