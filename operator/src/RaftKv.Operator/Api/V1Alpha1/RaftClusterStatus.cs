using System.Text.Json.Serialization;
using k8s.Models;
using RaftKv.Operator.Api.Schema;

namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>What the operator observed. Written through the status subresource by the operator only.</summary>
internal sealed class RaftClusterStatus
{
    [JsonPropertyName("observedGeneration")]
    [Description("The metadata.generation this status describes; GitOps tools wait for it to reach the spec's generation.")]
    public long? ObservedGeneration { get; set; }

    [JsonPropertyName("conditions")]
    [Description("Available (a leader and a quorum serve requests), Progressing (the operator is changing the cluster), "
        + "Degraded (something needs attention: see the reason).")]
    [ListMap("type")]
    public IList<V1Condition>? Conditions { get; set; }

    [JsonPropertyName("phase")]
    [Description("A one-word summary for people; tools should read conditions.")]
    public ClusterPhase? Phase { get; set; }

    [JsonPropertyName("leader")]
    [Description("Pod name of the current Raft leader; empty when there is none.")]
    public string? Leader { get; set; }

    [JsonPropertyName("members")]
    [Description("Raft members as the cluster reports them.")]
    [ListMap("name")]
    public IList<RaftClusterMember>? Members { get; set; }

    [JsonPropertyName("replicas")]
    [Description("Number of Raft members, voters and learners (the scale subresource's current count).")]
    public int Replicas { get; set; }

    [JsonPropertyName("readyReplicas")]
    [Description("Number of member pods that are ready.")]
    public int ReadyReplicas { get; set; }

    [JsonPropertyName("selector")]
    [Description("Label selector of the member pods (for the scale subresource).")]
    public string? Selector { get; set; }

    [JsonPropertyName("voters")]
    [Description("Number of voting members.")]
    public int Voters { get; set; }

    [JsonPropertyName("learners")]
    [Description("Number of non-voting members catching up.")]
    public int Learners { get; set; }

    [JsonPropertyName("quorum")]
    [Description("Votes needed to commit or elect: voters / 2 + 1.")]
    public int Quorum { get; set; }

    [JsonPropertyName("failureTolerance")]
    [Description("Voters that can fail while the cluster keeps serving: voters - quorum.")]
    public int FailureTolerance { get; set; }

    [JsonPropertyName("tuning")]
    [Description("Raft timing in effect and the measurements it was derived from.")]
    public RaftClusterTuningStatus? Tuning { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<ClusterPhase>))]
internal enum ClusterPhase
{
    /// <summary>Objects are being created; no member runs yet.</summary>
    Pending,

    /// <summary>The initial members are starting and electing a first leader.</summary>
    Bootstrapping,

    /// <summary>Every member is a ready voter and the spec is applied.</summary>
    Running,

    /// <summary>Members are being added or removed.</summary>
    Scaling,

    /// <summary>Pods are being restarted one at a time for a new version or template.</summary>
    Updating,

    /// <summary>The cluster serves but needs attention (see the Degraded condition).</summary>
    Degraded,

    /// <summary>No leader or no quorum: the cluster does not serve.</summary>
    Unavailable,
}

/// <summary>One Raft member.</summary>
internal sealed class RaftClusterMember
{
    [JsonPropertyName("name")]
    [Required]
    [Description("Member name, the same as its pod's name.")]
    public string Name { get; set; } = "";

    [JsonPropertyName("id")]
    [Description("Raft member ID in hexadecimal, as etcdctl member list prints it.")]
    public string? Id { get; set; }

    [JsonPropertyName("role")]
    [Description("Leader, Follower or Learner.")]
    public MemberRole Role { get; set; }

    [JsonPropertyName("ready")]
    [Description("Whether the member's pod is ready.")]
    public bool Ready { get; set; }

    [JsonPropertyName("rtt")]
    [Description("Median round-trip time from the leader to this member, e.g. 2ms.")]
    public string? Rtt { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<MemberRole>))]
internal enum MemberRole
{
    Follower,
    Leader,
    Learner,
}

/// <summary>Raft timing in effect and its inputs.</summary>
internal sealed class RaftClusterTuningStatus
{
    [JsonPropertyName("heartbeatInterval")]
    [Description("Heartbeat interval in effect.")]
    public string? HeartbeatInterval { get; set; }

    [JsonPropertyName("electionTimeout")]
    [Description("Election timeout in effect.")]
    public string? ElectionTimeout { get; set; }

    [JsonPropertyName("rttP50")]
    [Description("Median round-trip time between members (the largest over member pairs).")]
    public string? RttP50 { get; set; }

    [JsonPropertyName("rttP99")]
    [Description("99th percentile round-trip time between members (the largest over member pairs).")]
    public string? RttP99 { get; set; }

    [JsonPropertyName("fsyncP99")]
    [Description("99th percentile WAL fsync latency (the largest over members).")]
    public string? FsyncP99 { get; set; }

    [JsonPropertyName("predictedFailover")]
    [Description("Expected time without a leader after the leader fails, as a range, e.g. 1.1s-2.1s.")]
    public string? PredictedFailover { get; set; }

    [JsonPropertyName("reason")]
    [Description("Why the timing has its current values.")]
    public string? Reason { get; set; }

    [JsonPropertyName("lastChange")]
    [Description("When the timing last changed.")]
    public DateTime? LastChange { get; set; }
}
