using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using RaftKv.Operator.Api.Schema;

namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>
/// A RaftCluster: an odd number of raftkv members run by a StatefulSet, with membership changed through
/// Raft and timing tuned from measured network and disk latency. This class is the CRD's contract: the
/// manifest in <c>config/crd</c> is generated from it.
/// </summary>
[KubernetesEntity(Group = RaftCluster.Group, ApiVersion = RaftCluster.Version, Kind = RaftCluster.ResourceKind, PluralName = RaftCluster.Plural)]
[Description("RaftCluster runs a replicated raftkv (etcd v3 API) cluster: an odd number of members on a StatefulSet, "
    + "membership changed through Raft one voter at a time, and Raft timing tuned from measured network and disk latency.")]
[ResourceNames(ShortNames = ["raft"], Categories = ["raftkv"])]
[ScaleSubresource(".spec.replicas", ".status.replicas", ".status.selector")]
[PrinterColumn("Replicas", "integer", ".spec.replicas", Order = 1, Description = "Desired number of members")]
[PrinterColumn("Ready", "integer", ".status.readyReplicas", Order = 2, Description = "Members whose pod is ready")]
[PrinterColumn("Leader", "string", ".status.leader", Order = 3, Description = "Pod of the current Raft leader")]
[PrinterColumn("Heartbeat", "string", ".status.tuning.heartbeatInterval", Order = 4, Description = "Heartbeat interval in effect")]
[PrinterColumn("Election", "string", ".status.tuning.electionTimeout", Order = 5, Description = "Election timeout in effect")]
[PrinterColumn("Phase", "string", ".status.phase", Order = 6, Priority = 1, Description = "What the operator is doing")]
[PrinterColumn("Age", "date", ".metadata.creationTimestamp", Order = 7)]
internal sealed class RaftCluster : IKubernetesObject<V1ObjectMeta>, ISpec<RaftClusterSpec>, IStatus<RaftClusterStatus?>
{
    public const string Group = "raftkv.io";
    public const string Version = "v1alpha1";
    public const string ResourceKind = "RaftCluster";
    public const string Plural = "raftclusters";
    public const string GroupVersion = Group + "/" + Version;

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = GroupVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = ResourceKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    [Required]
    [Description("The desired cluster.")]
    public RaftClusterSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    [Description("What the operator observed; written by the operator only.")]
    public RaftClusterStatus? Status { get; set; }
}

/// <summary>The desired cluster.</summary>
[ValidationRule("(has(self.tls) && has(self.tls.serverSecretName)) == (has(oldSelf.tls) && has(oldSelf.tls.serverSecretName)) "
    + "&& (has(self.tls) && has(self.tls.peerSecretName)) == (has(oldSelf.tls) && has(oldSelf.tls.peerSecretName))",
    RaftClusterTls.ImmutableRuleMessage, FieldPath = ".tls", Reason = "FieldValueForbidden")]
internal sealed class RaftClusterSpec
{
    /// <summary>The message of the CEL rule on <see cref="Replicas"/>; RaftClusterValidator uses the same text.</summary>
    public const string ReplicasRuleMessage =
        "replicas must be odd, from 1 to 9 (1, 3, 5, 7 or 9): Raft commits only with a majority (quorum) of members, "
        + "and an even count tolerates no more failures than the odd count below it while making every quorum larger";

    [JsonPropertyName("replicas")]
    [Description("Number of voting members: odd, from 1 to 9. 3 tolerates one failure, 5 two, 7 three, 9 four. "
        + "Changed one member at a time: a new member joins as a learner, catches up, then becomes a voter.")]
    [Default("3")]
    [Minimum(1)]
    [Maximum(9)]
    [ValidationRule("self >= 1 && self <= 9 && self % 2 == 1", ReplicasRuleMessage)]
    public int Replicas { get; set; } = 3;

    [JsonPropertyName("version")]
    [Description("raftkv version to run, e.g. 0.1.0: the image is the operator's image repository with this tag. "
        + "Ignored when image is set. Empty means the operator's own version. A change rolls the pods one at a time, leader last.")]
    [Pattern("^[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}$")]
    [MaxLength(128)]
    public string? Version { get; set; }

    [JsonPropertyName("image")]
    [Description("Full image reference of the raftkv member container; overrides version.")]
    [MaxLength(512)]
    public string? Image { get; set; }

    [JsonPropertyName("storage")]
    [Description("Each member's persistent volume. Cannot be changed after creation, except reclaimPolicy.")]
    [Default("{}")]
    public RaftClusterStorage Storage { get; set; } = new();

    [JsonPropertyName("tuning")]
    [Description("Raft timing: measured and set by the operator (Auto), or given here (Manual).")]
    [Default("{}")]
    public RaftClusterTuning Tuning { get; set; } = new();

    [JsonPropertyName("affinity")]
    [Description("How members are spread over nodes.")]
    [Default("{}")]
    public RaftClusterAffinity Affinity { get; set; } = new();

    [JsonPropertyName("resources")]
    [Description("CPU and memory requests and limits of the raftkv container.")]
    [JsonConverter(typeof(LenientResourceRequirementsConverter))]
    public V1ResourceRequirements? Resources { get; set; }

    [JsonPropertyName("bootstrap")]
    [Description("How a new cluster starts: empty (the default), or from a snapshot. Read while the cluster forms (until its first leader); changing it later has no effect.")]
    public RaftClusterBootstrap? Bootstrap { get; set; }

    [JsonPropertyName("tls")]
    [Description("TLS on the client and peer URLs, from kubernetes.io/tls Secrets (with ca.crt) such as cert-manager makes. "
        + "Which sides use TLS is fixed at creation; the Secrets' contents may change at any time (members reload them).")]
    public RaftClusterTls? Tls { get; set; }

    [JsonPropertyName("podTemplate")]
    [Description("Extra settings for the member pods.")]
    public RaftClusterPodTemplate? PodTemplate { get; set; }
}

/// <summary>
/// TLS on the members' client and peer URLs. Each Secret is of type kubernetes.io/tls with <c>tls.crt</c>, <c>tls.key</c>
/// and <c>ca.crt</c> (what cert-manager writes). The certificates must name the members' DNS names
/// (<c>*.NAME-peers.NAMESPACE.svc.CLUSTER_DOMAIN</c>): members call each other, and the operator calls them, by those names.
/// </summary>
[ValidationRule("!has(self.serverSecretName) || (has(self.clientCertAuth) && !self.clientCertAuth) || has(self.operatorSecretName)",
    RaftClusterTls.OperatorSecretRuleMessage,
    FieldPath = ".operatorSecretName", Reason = "FieldValueRequired")]
internal sealed class RaftClusterTls
{
    /// <summary>A Secret's name: a DNS subdomain.</summary>
    public const string SecretNamePattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$";

    public const string OperatorSecretRuleMessage =
        "tls.clientCertAuth needs tls.operatorSecretName: the operator must present a client certificate to the members (or set clientCertAuth: false)";

    public const string ImmutableRuleMessage =
        "tls.serverSecretName and tls.peerSecretName cannot be added or removed after creation: the members' URLs are part of the "
        + "Raft membership (to change, create a new RaftCluster and copy the data with etcdctl snapshot); the Secret names may change";

    [JsonPropertyName("serverSecretName")]
    [Description("Secret (kubernetes.io/tls with ca.crt) of the client URLs: clients reach the members over https:// with this certificate, "
        + "and its ca.crt is the CA that client certificates must chain to (clientCertAuth) and that the operator trusts for the members.")]
    [MaxLength(253)]
    [Pattern(RaftClusterTls.SecretNamePattern)]
    public string? ServerSecretName { get; set; }

    [JsonPropertyName("peerSecretName")]
    [Description("Secret (kubernetes.io/tls with ca.crt) of the peer URLs: members talk Raft to each other over https:// with this certificate "
        + "as server and as client certificate, and accept only peers whose certificate chains to its ca.crt.")]
    [MaxLength(253)]
    [Pattern(RaftClusterTls.SecretNamePattern)]
    public string? PeerSecretName { get; set; }

    [JsonPropertyName("clientCertAuth")]
    [Description("With serverSecretName: clients must present a certificate signed by the server Secret's ca.crt (etcd's --client-cert-auth).")]
    [Default("true")]
    public bool ClientCertAuth { get; set; } = true;

    [JsonPropertyName("operatorSecretName")]
    [Description("Secret (kubernetes.io/tls) with the client certificate the operator presents to the members when clientCertAuth is on; "
        + "it must chain to the server Secret's ca.crt.")]
    [MaxLength(253)]
    [Pattern(RaftClusterTls.SecretNamePattern)]
    public string? OperatorSecretName { get; set; }
}

/// <summary>How a new cluster starts.</summary>
internal sealed class RaftClusterBootstrap
{
    [JsonPropertyName("snapshot")]
    [Description("Start from a snapshot taken with 'etcdctl snapshot save' from a raftkv member: keys, revisions and leases are kept, the membership is new. "
        + "The first member restores it and forms a one-member cluster; the others join through Raft one at a time.")]
    public RaftClusterSnapshotSource? Snapshot { get; set; }
}

/// <summary>A snapshot file on a PersistentVolumeClaim.</summary>
internal sealed class RaftClusterSnapshotSource
{
    public const string PathRuleMessage = "path must be relative to the claim's root, of names that do not start with '.', e.g. backups/demo.db";

    /// <summary>Relative, '/'-separated names of letters, digits, '_', '-' and '.', none starting with '.' (so no '..' component).</summary>
    public const string PathPattern = "^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$";

    [JsonPropertyName("persistentVolumeClaimName")]
    [Required]
    [Description("The PersistentVolumeClaim (in the cluster's namespace) holding the file; the first member mounts it read-only while the cluster forms.")]
    [MaxLength(253)]
    [Pattern(RaftClusterTls.SecretNamePattern)]
    public string PersistentVolumeClaimName { get; set; } = "";

    [JsonPropertyName("path")]
    [Required]
    [Description("The snapshot file's path inside the claim, e.g. backups/demo.db.")]
    [MaxLength(1024)]
    [Pattern(PathPattern)]
    public string Path { get; set; } = "";
}

/// <summary>Each member's persistent volume.</summary>
[ValidationRule("has(self.storageClassName) == has(oldSelf.storageClassName) && has(self.size) == has(oldSelf.size)",
    "storage.storageClassName and storage.size cannot be added or removed after creation: the members' volumes already exist",
    Reason = "FieldValueForbidden")]
internal sealed class RaftClusterStorage
{
    public const string ImmutableRuleMessage =
        "is immutable: the members' volumes already exist (to move data, create a new RaftCluster and copy it with etcdctl snapshot)";

    [JsonPropertyName("storageClassName")]
    [Description("StorageClass of the members' volumes. Meant to be local SSD (volumeBindingMode WaitForFirstConsumer, no network disks): "
        + "Raft fsyncs before every acknowledgement. Empty means the operator's default class. Immutable.")]
    [MaxLength(253)]
    [ValidationRule("self == oldSelf", "storageClassName " + ImmutableRuleMessage, Reason = "FieldValueForbidden")]
    public string? StorageClassName { get; set; }

    [JsonPropertyName("size")]
    [Description("Size of each member's volume, a Kubernetes quantity such as 10Gi. Immutable.")]
    [Default("\"10Gi\"")]
    [Pattern(QuantityPattern)]
    [MaxLength(32)]
    [ValidationRule("self == oldSelf", "size " + ImmutableRuleMessage, Reason = "FieldValueForbidden")]
    public string Size { get; set; } = "10Gi";

    [JsonPropertyName("reclaimPolicy")]
    [Description("What happens to the volumes when the RaftCluster is deleted: Retain keeps them (the data survives), Delete removes them.")]
    [Default("\"Retain\"")]
    public ReclaimPolicy ReclaimPolicy { get; set; } = ReclaimPolicy.Retain;

    /// <summary>A binary or decimal Kubernetes quantity without exponent notation.</summary>
    public const string QuantityPattern = "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";
}

[JsonConverter(typeof(JsonStringEnumConverter<ReclaimPolicy>))]
internal enum ReclaimPolicy
{
    Retain,
    Delete,
}

/// <summary>Raft timing.</summary>
[ValidationRule("self.mode != 'Manual' || (has(self.heartbeatInterval) && has(self.electionTimeout))",
    "Manual tuning needs both heartbeatInterval and electionTimeout, e.g. heartbeatInterval: 100ms, electionTimeout: 1s",
    Reason = "FieldValueRequired")]
[ValidationRule("self.mode != 'Manual' || !has(self.heartbeatInterval) || !has(self.electionTimeout) "
    + "|| duration(self.electionTimeout).getMilliseconds() >= 5 * duration(self.heartbeatInterval).getMilliseconds()",
    "electionTimeout must be at least 5 times heartbeatInterval: followers must miss several heartbeats before starting an election",
    FieldPath = ".electionTimeout")]
[ValidationRule("self.mode != 'Manual' || !has(self.electionTimeout) || duration(self.electionTimeout) <= duration('50s')",
    "electionTimeout must be at most 50s: a longer timeout leaves the cluster without a leader for too long after a failure",
    FieldPath = ".electionTimeout")]
[ValidationRule("self.mode != 'Manual' || !has(self.heartbeatInterval) || duration(self.heartbeatInterval) >= duration('1ms')",
    "heartbeatInterval must be at least 1ms",
    FieldPath = ".heartbeatInterval")]
internal sealed class RaftClusterTuning
{
    [JsonPropertyName("mode")]
    [Description("Auto: the operator measures round-trip time and WAL fsync latency and sets the timing live. Manual: the values below are used.")]
    [Default("\"Auto\"")]
    public TuningMode Mode { get; set; } = TuningMode.Auto;

    [JsonPropertyName("heartbeatInterval")]
    [Description("Leader heartbeat interval, e.g. 100ms (Manual mode). Roughly the round-trip time between members.")]
    [Pattern(GoDuration.Pattern)]
    [MaxLength(32)]
    public string? HeartbeatInterval { get; set; }

    [JsonPropertyName("electionTimeout")]
    [Description("Election timeout, e.g. 1s (Manual mode): at least 5 times heartbeatInterval and at most 50s.")]
    [Pattern(GoDuration.Pattern)]
    [MaxLength(32)]
    public string? ElectionTimeout { get; set; }

    [JsonPropertyName("profile")]
    [Description("Auto mode's floors. Default: heartbeat at least 100ms, election at least 1s. Aggressive: heartbeat at least 30ms, election at least 300ms "
        + "(faster failover, more risk of needless elections on a busy network). When absent, the operator's default (its --default-tuning-profile, Default unless set).")]
    public TuningProfile? Profile { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<TuningMode>))]
internal enum TuningMode
{
    Auto,
    Manual,
}

[JsonConverter(typeof(JsonStringEnumConverter<TuningProfile>))]
internal enum TuningProfile
{
    Default,
    Aggressive,
}

/// <summary>How members are spread over nodes.</summary>
internal sealed class RaftClusterAffinity
{
    [JsonPropertyName("antiAffinity")]
    [Description("Required: never two members in one topology domain (pods stay Pending if there are too few). "
        + "Preferred: spread when possible.")]
    [Default("\"Required\"")]
    public AntiAffinityMode AntiAffinity { get; set; } = AntiAffinityMode.Required;

    [JsonPropertyName("topologyKey")]
    [Description("Node label whose values are the domains members are kept apart on.")]
    [MaxLength(317)]
    [Default("\"kubernetes.io/hostname\"")]
    public string TopologyKey { get; set; } = "kubernetes.io/hostname";
}

[JsonConverter(typeof(JsonStringEnumConverter<AntiAffinityMode>))]
internal enum AntiAffinityMode
{
    Required,
    Preferred,
}

/// <summary>Extra settings for the member pods.</summary>
internal sealed class RaftClusterPodTemplate
{
    [JsonPropertyName("labels")]
    [Description("Labels added to the member pods (the operator's app.kubernetes.io labels take precedence).")]
    public IDictionary<string, string>? Labels { get; set; }

    [JsonPropertyName("annotations")]
    [Description("Annotations added to the member pods.")]
    public IDictionary<string, string>? Annotations { get; set; }

    [JsonPropertyName("tolerations")]
    [Description("Tolerations of the member pods.")]
    public IList<V1Toleration>? Tolerations { get; set; }

    [JsonPropertyName("nodeSelector")]
    [Description("Node labels the member pods must be scheduled on.")]
    public IDictionary<string, string>? NodeSelector { get; set; }

    [JsonPropertyName("priorityClassName")]
    [Description("PriorityClass of the member pods.")]
    public string? PriorityClassName { get; set; }
}
