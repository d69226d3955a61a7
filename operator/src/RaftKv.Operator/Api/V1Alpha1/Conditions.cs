namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>The condition types of a RaftCluster's status.</summary>
internal static class ConditionTypes
{
    /// <summary>True when a leader and a quorum of voters serve requests.</summary>
    public const string Available = "Available";

    /// <summary>True while the operator is changing the cluster (bootstrap, scaling, rolling update).</summary>
    public const string Progressing = "Progressing";

    /// <summary>True when something needs attention; the reason says what.</summary>
    public const string Degraded = "Degraded";
}

/// <summary>Condition reasons (CamelCase, as Kubernetes API conventions require).</summary>
internal static class ConditionReasons
{
    public const string QuorumAvailable = "QuorumAvailable";
    public const string NoLeader = "NoLeader";
    public const string QuorumLost = "QuorumLost";
    public const string NotBootstrapped = "NotBootstrapped";
    public const string Bootstrapping = "Bootstrapping";
    public const string ScalingUp = "ScalingUp";
    public const string ScalingDown = "ScalingDown";
    public const string RollingUpdate = "RollingUpdate";
    public const string ReplacingMember = "ReplacingMember";
    public const string Reconciled = "Reconciled";
    public const string AsExpected = "AsExpected";
    public const string SlowDisk = "SlowDisk";
    public const string MembersNotReady = "MembersNotReady";
    public const string InvalidSpec = "InvalidSpec";
    public const string ForeignMember = "ForeignMember";
    public const string CreatingObjects = "CreatingObjects";
    public const string Retuning = "Retuning";

    /// <summary>A Secret named in spec.tls is missing or unusable (no key, not issued by its ca.crt, not naming the members, expired).</summary>
    public const string TlsSecretInvalid = "TLSSecretInvalid";

    /// <summary>A member pod fits on no node (anti-affinity, node selector, resources); the message quotes the scheduler.</summary>
    public const string Unschedulable = "Unschedulable";

    /// <summary>A member pod's volume names a StorageClass that does not exist.</summary>
    public const string StorageClassNotFound = "StorageClassNotFound";

    /// <summary>A member pod's image cannot be pulled (wrong version or image reference, registry unreachable).</summary>
    public const string ImagePullFailed = "ImagePullFailed";

    /// <summary>A member pod's container keeps exiting and is restarted with back-off.</summary>
    public const string CrashLoopBackOff = "CrashLoopBackOff";

    /// <summary>A member pod's container could not be created or started (bad configuration, missing ConfigMap key).</summary>
    public const string ContainerCannotRun = "ContainerCannotRun";

    /// <summary>
    /// A member refused to start because its store differs from its peers' (raftkv's initial corruption check, exit code
    /// <see cref="RaftKvExitCodes.DataInconsistent"/>): its volume holds damaged data and must be cleared.
    /// </summary>
    public const string DataInconsistent = "DataInconsistent";
}
