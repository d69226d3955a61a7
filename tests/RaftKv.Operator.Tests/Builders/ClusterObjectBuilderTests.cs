using k8s;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Builders;

public sealed class ClusterObjectBuilderTests
{
    private static readonly ClusterObjectBuilder Builder = new(new OperatorSettings
    {
        ImageRepository = "registry.example/raftkv",
        DefaultVersion = "0.1.0",
        DefaultStorageClassName = "local-ssd",
    });

    private static readonly Dictionary<string, string> ExpectedLabels = new()
    {
        ["app.kubernetes.io/name"] = "raftkv",
        ["app.kubernetes.io/instance"] = "demo",
        ["app.kubernetes.io/component"] = "member",
        ["app.kubernetes.io/managed-by"] = "raftkv-operator",
    };

    public static TheoryData<string> ObjectKinds => ["peers", "client", "statefulset", "pdb", "tuning", "members"];

    private static IKubernetesObject<V1ObjectMeta> Build(string kind, RaftCluster cluster) => kind switch
    {
        "peers" => Builder.PeerService(cluster),
        "client" => Builder.ClientService(cluster),
        "statefulset" => Builder.StatefulSet(cluster, cluster.Spec.Replicas),
        "pdb" => Builder.PodDisruptionBudget(cluster),
        "tuning" => Builder.TuningConfigMap(cluster, RaftTiming.EtcdDefault),
        "members" => Builder.MembersConfigMap(cluster, 3, bootstrapped: false),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(ObjectKinds))]
    public void Every_object_is_owned_by_the_cluster_and_carries_the_standard_labels(string kind)
    {
        var obj = Build(kind, Clusters.Demo());

        Assert.Equal("prod", obj.Metadata.NamespaceProperty);
        Assert.Equal(ExpectedLabels, obj.Metadata.Labels);
        var owner = Assert.Single(obj.Metadata.OwnerReferences);
        Assert.Equal("raftkv.io/v1alpha1", owner.ApiVersion);
        Assert.Equal("RaftCluster", owner.Kind);
        Assert.Equal("demo", owner.Name);
        Assert.Equal(Clusters.Uid, owner.Uid);
        Assert.True(owner.Controller);
        Assert.True(owner.BlockOwnerDeletion);
        Assert.False(string.IsNullOrEmpty(obj.ApiVersion));
        Assert.False(string.IsNullOrEmpty(obj.Kind));
    }

    [Theory]
    [InlineData("peers", "demo-peers")]
    [InlineData("client", "demo-client")]
    [InlineData("statefulset", "demo")]
    [InlineData("pdb", "demo")]
    [InlineData("tuning", "demo-tuning")]
    [InlineData("members", "demo-members")]
    public void Objects_are_named_after_the_cluster(string kind, string expectedName)
    {
        Assert.Equal(expectedName, Build(kind, Clusters.Demo()).Metadata.Name);
    }

    [Fact]
    public void The_peers_service_is_headless_publishes_not_ready_members_and_exposes_both_ports()
    {
        var service = Builder.PeerService(Clusters.Demo());

        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.True(service.Spec.PublishNotReadyAddresses);
        Assert.Equal([("peer", 2380), ("client", 2379)], service.Spec.Ports.Select(p => (p.Name, p.Port)));
        Assert.Equal(ClusterLabels.Selector("demo"), service.Spec.Selector);
    }

    [Fact]
    public void The_client_service_serves_2379_from_ready_members_only()
    {
        var service = Builder.ClientService(Clusters.Demo());

        Assert.Equal("ClusterIP", service.Spec.Type);
        Assert.NotEqual(true, service.Spec.PublishNotReadyAddresses);
        var port = Assert.Single(service.Spec.Ports);
        Assert.Equal(2379, port.Port);
        Assert.Equal("client", port.TargetPort.Value);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 1)]
    [InlineData(5, 1)]
    [InlineData(7, 1)]
    [InlineData(9, 1)]
    public void The_disruption_budget_never_exceeds_the_failure_tolerance(int replicas, int expectedMaxUnavailable)
    {
        var pdb = Builder.PodDisruptionBudget(Clusters.Demo(replicas));

        Assert.Equal(expectedMaxUnavailable, int.Parse(pdb.Spec.MaxUnavailable.Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(expectedMaxUnavailable <= (replicas - 1) / 2);
        Assert.Null(pdb.Spec.MinAvailable);
        Assert.Equal(ClusterLabels.Selector("demo"), pdb.Spec.Selector.MatchLabels);
        Assert.Equal("AlwaysAllow", pdb.Spec.UnhealthyPodEvictionPolicy);
    }

    [Theory]
    [InlineData(100, 1000, "100", "1000")]
    [InlineData(30, 300, "30", "300")]
    [InlineData(2.5, 1000, "3", "1000")]
    [InlineData(5000, 50000, "5000", "50000")]
    public void The_tuning_config_map_holds_whole_milliseconds_as_etcd_flags_take_them(double heartbeatMs, double electionMs, string heartbeat, string election)
    {
        var map = Builder.TuningConfigMap(Clusters.Demo(), new RaftTiming(TimeSpan.FromMilliseconds(heartbeatMs), TimeSpan.FromMilliseconds(electionMs)));

        Assert.Equal(heartbeat, map.Data["heartbeat-interval"]);
        Assert.Equal(election, map.Data["election-timeout"]);
    }

    [Theory]
    [InlineData(1, false, "demo-0=http://demo-0.demo-peers.prod.svc.cluster.local:2380", "new")]
    [InlineData(3, false, "demo-0=http://demo-0.demo-peers.prod.svc.cluster.local:2380,demo-1=http://demo-1.demo-peers.prod.svc.cluster.local:2380,demo-2=http://demo-2.demo-peers.prod.svc.cluster.local:2380", "new")]
    [InlineData(2, true, "demo-0=http://demo-0.demo-peers.prod.svc.cluster.local:2380,demo-1=http://demo-1.demo-peers.prod.svc.cluster.local:2380", "existing")]
    public void The_members_config_map_lists_every_member_by_stable_name(int count, bool bootstrapped, string initialCluster, string state)
    {
        var map = Builder.MembersConfigMap(Clusters.Demo(), count, bootstrapped);

        Assert.Equal(initialCluster, map.Data["initial-cluster"]);
        Assert.Equal(state, map.Data["initial-cluster-state"]);
    }

    [Fact]
    public void The_members_config_map_needs_at_least_one_member()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Builder.MembersConfigMap(Clusters.Demo(), 0, bootstrapped: false));
    }

    [Fact]
    public void The_cluster_domain_comes_from_the_settings()
    {
        var builder = new ClusterObjectBuilder(new OperatorSettings { ClusterDomain = "corp.internal" });
        var map = builder.MembersConfigMap(Clusters.Demo(), 1, bootstrapped: false);
        Assert.Equal("demo-0=http://demo-0.demo-peers.prod.svc.corp.internal:2380", map.Data["initial-cluster"]);
    }

    [Theory]
    [InlineData("demo-0", 0)]
    [InlineData("demo-8", 8)]
    [InlineData("demo-12", 12)]
    [InlineData("demo-x", null)]
    [InlineData("demo-01", null)]
    [InlineData("demo-", null)]
    [InlineData("demo2-0", null)]
    [InlineData("other-0", null)]
    [InlineData("demo--1", null)]
    public void Pod_names_map_back_to_ordinals(string pod, int? ordinal)
    {
        Assert.Equal(ordinal, new ClusterNames("demo", "prod", "cluster.local").OrdinalOf(pod));
    }

    [Fact]
    public void The_status_selector_string_matches_the_selector_labels()
    {
        Assert.Equal("app.kubernetes.io/component=member,app.kubernetes.io/instance=demo,app.kubernetes.io/name=raftkv", ClusterLabels.SelectorString("demo"));
    }
}
