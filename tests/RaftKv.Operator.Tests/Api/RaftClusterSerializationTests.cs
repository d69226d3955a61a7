using System.Text.Json.Nodes;
using k8s;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tests.Api;

public sealed class RaftClusterSerializationTests
{
    [Fact]
    public void A_sample_manifest_reads_into_the_types()
    {
        const string yaml = """
            apiVersion: raftkv.io/v1alpha1
            kind: RaftCluster
            metadata:
              name: demo
              namespace: default
            spec:
              replicas: 5
              version: 0.1.0
              storage:
                storageClassName: local-ssd
                size: 20Gi
                reclaimPolicy: Delete
              tuning:
                mode: Manual
                heartbeatInterval: 50ms
                electionTimeout: 500ms
                profile: Aggressive
              affinity:
                antiAffinity: Preferred
                topologyKey: topology.kubernetes.io/zone
              resources:
                requests:
                  cpu: 500m
                  memory: 1Gi
              podTemplate:
                labels: {team: storage}
                tolerations:
                - key: dedicated
                  operator: Equal
                  value: raftkv
                  effect: NoSchedule
                priorityClassName: system-cluster-critical
            """;
        var cluster = KubernetesYaml.Deserialize<RaftCluster>(yaml, strict: true);

        Assert.Equal("demo", cluster.Metadata.Name);
        Assert.Equal(5, cluster.Spec.Replicas);
        Assert.Equal(ReclaimPolicy.Delete, cluster.Spec.Storage.ReclaimPolicy);
        Assert.Equal(TuningMode.Manual, cluster.Spec.Tuning.Mode);
        Assert.Equal(TuningProfile.Aggressive, cluster.Spec.Tuning.Profile);
        Assert.Equal("500ms", cluster.Spec.Tuning.ElectionTimeout);
        Assert.Equal(AntiAffinityMode.Preferred, cluster.Spec.Affinity.AntiAffinity);
        Assert.Equal("1Gi", cluster.Spec.Resources!.Requests["memory"].ToString());
        Assert.Equal("raftkv", Assert.Single(cluster.Spec.PodTemplate!.Tolerations!).Value);
        Assert.Empty(RaftClusterValidator.Validate(cluster.Spec));
    }

    [Fact]
    public void JSON_uses_the_CRD_field_names_and_enum_names()
    {
        var cluster = new RaftCluster
        {
            Metadata = new() { Name = "demo" },
            Status = new RaftClusterStatus
            {
                Phase = ClusterPhase.Running,
                Members = [new RaftClusterMember { Name = "demo-0", Id = "8e9e05c52164694d", Role = MemberRole.Leader, Ready = true, Rtt = "2ms" }],
                Tuning = new RaftClusterTuningStatus { HeartbeatInterval = "100ms", LastChange = new DateTime(2026, 11, 24, 12, 0, 0, DateTimeKind.Utc) },
            },
        };

        var json = JsonNode.Parse(KubernetesJson.Serialize(cluster))!;

        Assert.Equal("raftkv.io/v1alpha1", (string?)json["apiVersion"]);
        Assert.Equal("RaftCluster", (string?)json["kind"]);
        Assert.Equal(3, (int?)json["spec"]!["replicas"]);
        Assert.Equal("Auto", (string?)json["spec"]!["tuning"]!["mode"]);
        Assert.Equal("Retain", (string?)json["spec"]!["storage"]!["reclaimPolicy"]);
        Assert.Equal("Running", (string?)json["status"]!["phase"]);
        Assert.Equal("Leader", (string?)json["status"]!["members"]![0]!["role"]);
        Assert.Equal("2026-11-24T12:00:00Z", (string?)json["status"]!["tuning"]!["lastChange"]);
        Assert.Null(json["spec"]!["image"]);

        var back = KubernetesJson.Deserialize<RaftCluster>(json.ToJsonString());
        Assert.Equal(MemberRole.Leader, back.Status!.Members![0].Role);
    }
}
