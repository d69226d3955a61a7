using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;

namespace RaftKv.Operator.Tests.Builders;

public sealed class StatefulSetBuilderTests
{
    private static readonly ClusterObjectBuilder Builder = new(new OperatorSettings
    {
        ImageRepository = "registry.example/raftkv",
        DefaultVersion = "0.1.0",
        DefaultStorageClassName = "local-ssd",
    });

    private static V1StatefulSet Build(RaftCluster cluster, int? replicas = null) => Builder.StatefulSet(cluster, replicas ?? cluster.Spec.Replicas);

    private static V1Container Container(V1StatefulSet set) => Assert.Single(set.Spec.Template.Spec.Containers);

    private static Dictionary<string, string> Flags(V1StatefulSet set) =>
        Container(set).Args.ToDictionary(a => a[2..a.IndexOf('=', StringComparison.Ordinal)], a => a[(a.IndexOf('=', StringComparison.Ordinal) + 1)..]);

    [Fact]
    public void Shape_parallel_on_delete_headless_service_and_selector()
    {
        var set = Build(Clusters.Demo(5), replicas: 4);

        Assert.Equal("demo", set.Metadata.Name);
        Assert.Equal(4, set.Spec.Replicas);
        Assert.Equal("demo-peers", set.Spec.ServiceName);
        Assert.Equal("Parallel", set.Spec.PodManagementPolicy);
        Assert.Equal("OnDelete", set.Spec.UpdateStrategy.Type);
        Assert.Equal(ClusterLabels.Selector("demo"), set.Spec.Selector.MatchLabels);
        Assert.All(set.Spec.Selector.MatchLabels, label => Assert.Equal(label.Value, set.Spec.Template.Metadata.Labels[label.Key]));
    }

    [Fact]
    public void Members_are_kept_apart_on_hostnames_by_default_and_spread_over_zones()
    {
        var spec = Build(Clusters.Demo()).Spec.Template.Spec;

        var required = Assert.Single(spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal("kubernetes.io/hostname", required.TopologyKey);
        Assert.Equal(ClusterLabels.Selector("demo"), required.LabelSelector.MatchLabels);
        Assert.Null(spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution);

        var spread = Assert.Single(spec.TopologySpreadConstraints);
        Assert.Equal("topology.kubernetes.io/zone", spread.TopologyKey);
        Assert.Equal("ScheduleAnyway", spread.WhenUnsatisfiable);
        Assert.Equal(1, spread.MaxSkew);
    }

    [Fact]
    public void Preferred_anti_affinity_uses_the_given_topology_key()
    {
        var cluster = Clusters.Demo(configure: s => s.Affinity = new RaftClusterAffinity { AntiAffinity = AntiAffinityMode.Preferred, TopologyKey = "rack" });
        var antiAffinity = Build(cluster).Spec.Template.Spec.Affinity.PodAntiAffinity;

        Assert.Null(antiAffinity.RequiredDuringSchedulingIgnoredDuringExecution);
        var preferred = Assert.Single(antiAffinity.PreferredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal(100, preferred.Weight);
        Assert.Equal("rack", preferred.PodAffinityTerm.TopologyKey);
    }

    [Theory]
    [InlineData(null, "20Gi", "local-ssd")]
    [InlineData("fast-nvme", "1Ti", "fast-nvme")]
    public void Each_member_gets_a_volume_of_the_storage_class_and_size(string? storageClass, string size, string expectedClass)
    {
        var cluster = Clusters.Demo(configure: s => s.Storage = new RaftClusterStorage { StorageClassName = storageClass, Size = size });
        var set = Build(cluster);

        var claim = Assert.Single(set.Spec.VolumeClaimTemplates);
        Assert.Equal("data", claim.Metadata.Name);
        Assert.Equal(expectedClass, claim.Spec.StorageClassName);
        Assert.Equal(["ReadWriteOnce"], claim.Spec.AccessModes);
        Assert.Equal(size, claim.Spec.Resources.Requests["storage"].ToString());
        Assert.Contains(Container(set).VolumeMounts, m => m.Name == "data" && m.MountPath == "/var/lib/raftkv");
    }

    [Fact]
    public void Without_a_class_in_spec_or_settings_the_cluster_default_class_is_used()
    {
        var set = new ClusterObjectBuilder(new OperatorSettings()).StatefulSet(Clusters.Demo(), 3);
        Assert.Null(set.Spec.VolumeClaimTemplates[0].Spec.StorageClassName);
    }

    [Theory]
    [InlineData("Retain", "Retain")]
    [InlineData("Delete", "Delete")]
    public void Volumes_follow_the_reclaim_policy_on_deletion_and_go_with_a_removed_member(string policy, string whenDeleted)
    {
        var set = Build(Clusters.Demo(configure: s => s.Storage.ReclaimPolicy = Enum.Parse<ReclaimPolicy>(policy)));
        Assert.Equal(whenDeleted, set.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted);
        Assert.Equal("Delete", set.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled);
    }

    [Fact]
    public void The_member_gets_etcd_flags_built_from_its_stable_name()
    {
        var flags = Flags(Build(Clusters.Demo()));

        Assert.Equal("$(POD_NAME)", flags["name"]);
        Assert.Equal("/var/lib/raftkv", flags["data-dir"]);
        Assert.Equal("http://$(POD_IP):2380", flags["listen-peer-urls"]);
        Assert.Equal("http://$(POD_IP):2379", flags["listen-client-urls"]);
        Assert.Equal("http://$(POD_NAME).demo-peers.prod.svc.cluster.local:2379", flags["advertise-client-urls"]);
        Assert.Equal("http://$(POD_NAME).demo-peers.prod.svc.cluster.local:2380", flags["initial-advertise-peer-urls"]);
        Assert.Equal("$(INITIAL_CLUSTER)", flags["initial-cluster"]);
        Assert.Equal("$(INITIAL_CLUSTER_STATE)", flags["initial-cluster-state"]);
        Assert.Equal($"demo-{Clusters.Uid}", flags["initial-cluster-token"]);
        Assert.Equal("$(HEARTBEAT_INTERVAL)", flags["heartbeat-interval"]);
        Assert.Equal("$(ELECTION_TIMEOUT)", flags["election-timeout"]);
    }

    [Fact]
    public void Every_variable_a_flag_refers_to_is_defined_before_use()
    {
        var container = Container(Build(Clusters.Demo()));
        var defined = container.Env.Select(e => e.Name).ToHashSet();
        foreach (var arg in container.Args)
        {
            foreach (System.Text.RegularExpressions.Match reference in System.Text.RegularExpressions.Regex.Matches(arg, @"\$\(([A-Z_]+)\)"))
            {
                Assert.True(defined.Contains(reference.Groups[1].Value), $"{arg} refers to {reference.Value}, which is not in env");
            }
        }

        var env = container.Env.ToDictionary(e => e.Name);
        Assert.Equal("metadata.name", env["POD_NAME"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal("status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath);
        Assert.Equal(("demo-members", "initial-cluster"), (env["INITIAL_CLUSTER"].ValueFrom.ConfigMapKeyRef.Name, env["INITIAL_CLUSTER"].ValueFrom.ConfigMapKeyRef.Key));
        Assert.Equal(("demo-tuning", "heartbeat-interval"), (env["HEARTBEAT_INTERVAL"].ValueFrom.ConfigMapKeyRef.Name, env["HEARTBEAT_INTERVAL"].ValueFrom.ConfigMapKeyRef.Key));
        Assert.Equal(("demo-tuning", "election-timeout"), (env["ELECTION_TIMEOUT"].ValueFrom.ConfigMapKeyRef.Name, env["ELECTION_TIMEOUT"].ValueFrom.ConfigMapKeyRef.Key));
        Assert.DoesNotContain(container.Env, e => e.Name.StartsWith("ETCD_", StringComparison.Ordinal));
    }

    [Fact]
    public void Scaling_and_retuning_do_not_change_the_pod_template()
    {
        // The template must not depend on the replica count or on timing: a change there would mark every
        // pod out of date and make the operator roll them all.
        var three = Build(Clusters.Demo(3), replicas: 3);
        var five = Build(Clusters.Demo(5), replicas: 5);
        Assert.Equal(k8s.KubernetesJson.Serialize(three.Spec.Template), k8s.KubernetesJson.Serialize(five.Spec.Template));
    }

    [Fact]
    public void Probes_use_readyz_livez_and_a_patient_startup_probe_on_the_client_port()
    {
        var container = Container(Build(Clusters.Demo()));

        Assert.Equal(("/readyz", "client"), (container.ReadinessProbe.HttpGet.Path, container.ReadinessProbe.HttpGet.Port.Value));
        Assert.Equal(("/livez", "client"), (container.LivenessProbe.HttpGet.Path, container.LivenessProbe.HttpGet.Port.Value));
        Assert.Equal("/livez", container.StartupProbe.HttpGet.Path);
        Assert.True(container.StartupProbe.PeriodSeconds * container.StartupProbe.FailureThreshold >= 300, "startup must allow at least 5 minutes of WAL replay");
        Assert.Contains(container.Ports, p => p.Name == "client" && p.ContainerPort == 2379);
        Assert.Contains(container.Ports, p => p.Name == "peer" && p.ContainerPort == 2380);
    }

    [Fact]
    public void The_pod_meets_the_restricted_pod_security_standard()
    {
        var set = Build(Clusters.Demo());
        var pod = set.Spec.Template.Spec;
        var container = Container(set);

        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
        Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
        Assert.NotNull(pod.SecurityContext.FsGroup);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);
        Assert.Null(container.SecurityContext.Capabilities.Add);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.True(container.SecurityContext.RunAsNonRoot);
        Assert.Contains(container.VolumeMounts, m => m.MountPath == "/tmp");
        Assert.False(pod.EnableServiceLinks);
        Assert.False(pod.AutomountServiceAccountToken);
        Assert.Null(pod.HostNetwork);
    }

    [Theory]
    [InlineData(null, null, "registry.example/raftkv:0.1.0")]
    [InlineData("0.2.0", null, "registry.example/raftkv:0.2.0")]
    [InlineData("0.2.0", "mirror.example/raftkv@sha256:abc", "mirror.example/raftkv@sha256:abc")]
    public void The_image_comes_from_image_else_version_else_the_operator(string? version, string? image, string expected)
    {
        var set = Build(Clusters.Demo(configure: s => { s.Version = version; s.Image = image; }));
        Assert.Equal(expected, Container(set).Image);
    }

    [Fact]
    public void Resources_and_pod_template_settings_are_passed_through_and_our_labels_win()
    {
        var cluster = Clusters.Demo(configure: s =>
        {
            s.Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m"), ["memory"] = new("1Gi") } };
            s.PodTemplate = new RaftClusterPodTemplate
            {
                Labels = new Dictionary<string, string> { ["team"] = "storage", ["app.kubernetes.io/instance"] = "hijack" },
                Annotations = new Dictionary<string, string> { ["prometheus.io/scrape"] = "true" },
                Tolerations = [new V1Toleration { Key = "dedicated", OperatorProperty = "Equal", Value = "raftkv", Effect = "NoSchedule" }],
                NodeSelector = new Dictionary<string, string> { ["disk"] = "nvme" },
                PriorityClassName = "system-cluster-critical",
            };
        });
        var set = Build(cluster);
        var pod = set.Spec.Template;

        Assert.Equal("500m", Container(set).Resources.Requests["cpu"].ToString());
        Assert.Equal("storage", pod.Metadata.Labels["team"]);
        Assert.Equal("demo", pod.Metadata.Labels["app.kubernetes.io/instance"]);
        Assert.Equal("true", pod.Metadata.Annotations["prometheus.io/scrape"]);
        Assert.Equal("raftkv", Assert.Single(pod.Spec.Tolerations).Value);
        Assert.Equal("nvme", pod.Spec.NodeSelector["disk"]);
        Assert.Equal("system-cluster-critical", pod.Spec.PriorityClassName);
    }

    [Fact]
    public void A_spec_without_extras_leaves_the_optional_pod_fields_unset()
    {
        var pod = Build(Clusters.Demo()).Spec.Template;
        Assert.Null(pod.Metadata.Annotations);
        Assert.Null(pod.Spec.Tolerations);
        Assert.Null(pod.Spec.NodeSelector);
        Assert.Null(pod.Spec.PriorityClassName);
        Assert.Null(Container(Build(Clusters.Demo())).Resources);
    }

    [Fact]
    public void Tls_makes_the_urls_https_mounts_the_secrets_and_probes_the_plain_http_metrics_port()
    {
        var cluster = Clusters.Demo(configure: s => s.Tls = new RaftClusterTls
        {
            ServerSecretName = "demo-server-tls",
            PeerSecretName = "demo-peer-tls",
            OperatorSecretName = "demo-operator-tls",
        });
        var set = Build(cluster);
        var container = Container(set);

        var host = "$(POD_NAME).demo-peers.prod.svc.cluster.local";
        Assert.Equal(
            [
                "--name=$(POD_NAME)", "--data-dir=/var/lib/raftkv",
                "--listen-peer-urls=https://$(POD_IP):2380", "--listen-client-urls=https://$(POD_IP):2379",
                $"--advertise-client-urls=https://{host}:2379", $"--initial-advertise-peer-urls=https://{host}:2380",
                "--initial-cluster=$(INITIAL_CLUSTER)", "--initial-cluster-state=$(INITIAL_CLUSTER_STATE)",
                $"--initial-cluster-token=demo-{Clusters.Uid}", "--heartbeat-interval=$(HEARTBEAT_INTERVAL)", "--election-timeout=$(ELECTION_TIMEOUT)",
                "--cert-file=/etc/raftkv/tls/server-tls/tls.crt", "--key-file=/etc/raftkv/tls/server-tls/tls.key",
                "--trusted-ca-file=/etc/raftkv/tls/server-tls/ca.crt", "--client-cert-auth",
                "--listen-metrics-urls=http://$(POD_IP):2381",
                "--peer-cert-file=/etc/raftkv/tls/peer-tls/tls.crt", "--peer-key-file=/etc/raftkv/tls/peer-tls/tls.key",
                "--peer-trusted-ca-file=/etc/raftkv/tls/peer-tls/ca.crt", "--peer-client-cert-auth",
            ],
            container.Args);
        Assert.Equal(
            [("server-tls", "demo-server-tls", 288), ("peer-tls", "demo-peer-tls", 288)],
            set.Spec.Template.Spec.Volumes.Where(v => v.Secret is not null).Select(v => (v.Name, v.Secret.SecretName, v.Secret.DefaultMode ?? 0)).ToList());
        Assert.Equal(
            [("server-tls", "/etc/raftkv/tls/server-tls", true), ("peer-tls", "/etc/raftkv/tls/peer-tls", true)],
            container.VolumeMounts.Where(m => m.Name.EndsWith("-tls", StringComparison.Ordinal)).Select(m => (m.Name, m.MountPath, m.ReadOnlyProperty ?? false)).ToList());
        Assert.Contains(container.Ports, p => p.Name == "metrics" && p.ContainerPort == 2381);
        Assert.Equal("true", set.Spec.Template.Metadata.Labels["raftkv.io/client-tls"]);
        Assert.All(new[] { container.ReadinessProbe, container.LivenessProbe, container.StartupProbe }, probe =>
        {
            Assert.Equal("metrics", probe.HttpGet.Port.Value);
            Assert.Equal("HTTP", probe.HttpGet.Scheme);
        });

        var members = Builder.MembersConfigMap(cluster, 3, bootstrapped: false);
        Assert.StartsWith("demo-0=https://demo-0.demo-peers.prod.svc.cluster.local:2380,", members.Data["initial-cluster"], StringComparison.Ordinal);
    }

    [Fact]
    public void Without_client_cert_auth_or_with_peer_tls_only_only_those_flags_change()
    {
        var serverOnly = Container(Build(Clusters.Demo(configure: s => s.Tls = new RaftClusterTls { ServerSecretName = "s", ClientCertAuth = false })));
        Assert.DoesNotContain("--client-cert-auth", serverOnly.Args);
        Assert.Contains("--listen-peer-urls=http://$(POD_IP):2380", serverOnly.Args);
        Assert.DoesNotContain(serverOnly.Args, a => a.StartsWith("--peer-", StringComparison.Ordinal));

        var peerOnly = Container(Build(Clusters.Demo(configure: s => s.Tls = new RaftClusterTls { PeerSecretName = "p" })));
        Assert.Contains("--listen-client-urls=http://$(POD_IP):2379", peerOnly.Args);
        Assert.Contains("--listen-peer-urls=https://$(POD_IP):2380", peerOnly.Args);
        Assert.DoesNotContain(peerOnly.Args, a => a.StartsWith("--listen-metrics-urls", StringComparison.Ordinal));
        Assert.Equal("client", peerOnly.ReadinessProbe.HttpGet.Port.Value);
    }

    [Fact]
    public void Without_tls_the_pod_template_is_as_before_tls_existed()
    {
        var container = Container(Build(Clusters.Demo()));

        Assert.All(container.Args.Where(a => a.Contains("://", StringComparison.Ordinal)), a => Assert.Contains("http://", a, StringComparison.Ordinal));
        Assert.DoesNotContain(container.Args, a => a.Contains("cert", StringComparison.Ordinal) || a.Contains("metrics", StringComparison.Ordinal));
        Assert.Equal(["client", "peer"], container.Ports.Select(p => p.Name).ToList());
        Assert.Equal(["data", "tmp"], container.VolumeMounts.Select(m => m.Name).ToList());
        Assert.Equal("client", container.LivenessProbe.HttpGet.Port.Value);
        Assert.DoesNotContain("raftkv.io/client-tls", Build(Clusters.Demo()).Spec.Template.Metadata.Labels.Keys);
    }
}
