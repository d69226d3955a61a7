namespace RaftKv.Operator;

/// <summary>Operator-wide settings (options pattern): what a RaftCluster gets when its spec leaves a choice open.</summary>
internal sealed record OperatorSettings
{
    /// <summary>Image repository of the raftkv member; <c>spec.version</c> (or this operator's version) is the tag.</summary>
    public string ImageRepository { get; init; } = "raftkv";

    /// <summary>Tag used when the spec names neither image nor version: the operator runs members of its own release.</summary>
    public string DefaultVersion { get; init; } = BuildInfo.Version(typeof(OperatorSettings).Assembly);

    /// <summary>StorageClass for specs that name none (meant to be local SSD); null leaves the cluster's default class.</summary>
    public string? DefaultStorageClassName { get; init; }

    /// <summary>DNS suffix of the cluster's Services, for the members' stable names.</summary>
    public string ClusterDomain { get; init; } = "cluster.local";
}
