using k8s.Models;

namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>One problem with a RaftCluster: the field's path and a message that says what to do.</summary>
internal sealed record ValidationError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// The CRD's rules again, in code: the operator checks every spec it acts on, so a cluster whose API
/// server skipped a rule (an older CRD, a server without CEL) never gets an even member count or a
/// timing Raft cannot live with. The messages are the CEL rules' messages.
/// </summary>
internal static class RaftClusterValidator
{
    public const int MinReplicas = 1;
    public const int MaxReplicas = 9;
    public static readonly TimeSpan MaxElectionTimeout = TimeSpan.FromSeconds(50);
    public const int MinElectionToHeartbeatRatio = 5;

    /// <summary>Checks a spec on its own (creation, or any spec the operator is about to act on).</summary>
    public static IReadOnlyList<ValidationError> Validate(RaftClusterSpec spec)
    {
        var errors = new List<ValidationError>();
        if (spec.Replicas is < MinReplicas or > MaxReplicas || spec.Replicas % 2 == 0)
        {
            errors.Add(new("spec.replicas", $"{RaftClusterSpec.ReplicasRuleMessage} (got {spec.Replicas})"));
        }

        if (spec.Image is { } image && string.IsNullOrWhiteSpace(image))
        {
            errors.Add(new("spec.image", "image must not be blank: remove the field to use the version's image"));
        }

        if (spec.Resources is UnparsedResourceRequirements resources)
        {
            foreach (var (field, text) in resources.Unparsed)
            {
                errors.Add(new(field, $"\"{text}\" is not a Kubernetes quantity: use a number with an optional suffix, e.g. cpu 500m or 2, memory 512Mi or 1Gi"));
            }
        }

        ValidateStorage(spec.Storage, errors);
        ValidateTuning(spec.Tuning, errors);
        if (spec.Tls is { ServerSecretName: not null, ClientCertAuth: true, OperatorSecretName: null })
        {
            errors.Add(new("spec.tls.operatorSecretName", RaftClusterTls.OperatorSecretRuleMessage));
        }

        if (spec.Bootstrap?.Snapshot is { } snapshot)
        {
            if (string.IsNullOrEmpty(snapshot.PersistentVolumeClaimName) || !System.Text.RegularExpressions.Regex.IsMatch(snapshot.PersistentVolumeClaimName, RaftClusterTls.SecretNamePattern))
            {
                errors.Add(new("spec.bootstrap.snapshot.persistentVolumeClaimName", $"\"{snapshot.PersistentVolumeClaimName}\" is not a PersistentVolumeClaim name: use lowercase letters, digits, '-' and '.'"));
            }

            if (!System.Text.RegularExpressions.Regex.IsMatch(snapshot.Path ?? "", RaftClusterSnapshotSource.PathPattern))
            {
                errors.Add(new("spec.bootstrap.snapshot.path", $"{RaftClusterSnapshotSource.PathRuleMessage} (got \"{snapshot.Path}\")"));
            }
        }

        foreach (var (field, secret) in new[] { ("serverSecretName", spec.Tls?.ServerSecretName), ("peerSecretName", spec.Tls?.PeerSecretName), ("operatorSecretName", spec.Tls?.OperatorSecretName) })
        {
            if (secret is not null && !System.Text.RegularExpressions.Regex.IsMatch(secret, RaftClusterTls.SecretNamePattern))
            {
                errors.Add(new($"spec.tls.{field}", $"\"{secret}\" is not a Secret name: use lowercase letters, digits, '-' and '.'"));
            }
        }

        if (string.IsNullOrWhiteSpace(spec.Affinity.TopologyKey))
        {
            errors.Add(new("spec.affinity.topologyKey", "topologyKey must name a node label, e.g. kubernetes.io/hostname"));
        }

        return errors;
    }

    /// <summary>
    /// The longest RaftCluster name: the StatefulSet's pods carry a <c>controller-revision-hash</c> label of
    /// NAME plus 11 characters, and a label value has at most 63.
    /// </summary>
    public const int MaxNameLength = 52;

    /// <summary>
    /// Checks the RaftCluster's name: it becomes the StatefulSet's, the Services' (<c>NAME-peers</c>) and the
    /// pods' DNS names, so it must be a DNS-1035 label short enough for all of them.
    /// </summary>
    public static IReadOnlyList<ValidationError> ValidateName(string? name)
    {
        if (string.IsNullOrEmpty(name)
            || name.Length > MaxNameLength
            || !System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z]([-a-z0-9]*[a-z0-9])?$"))
        {
            return [new("metadata.name",
                $"\"{name}\" cannot name a RaftCluster: use at most {MaxNameLength} lowercase letters, digits and '-', "
                + "starting with a letter and ending with a letter or digit (it becomes the pods' and Services' DNS names)")];
        }

        return [];
    }

    /// <summary>Checks a change: everything <see cref="Validate"/> checks, plus the immutable fields.</summary>
    public static IReadOnlyList<ValidationError> ValidateUpdate(RaftClusterSpec oldSpec, RaftClusterSpec newSpec)
    {
        var errors = new List<ValidationError>(Validate(newSpec));
        if (!string.Equals(oldSpec.Storage.StorageClassName, newSpec.Storage.StorageClassName, StringComparison.Ordinal))
        {
            errors.Add(new("spec.storage.storageClassName", "storageClassName " + RaftClusterStorage.ImmutableRuleMessage));
        }

        if (!string.Equals(oldSpec.Storage.Size, newSpec.Storage.Size, StringComparison.Ordinal))
        {
            errors.Add(new("spec.storage.size", "size " + RaftClusterStorage.ImmutableRuleMessage));
        }

        if ((oldSpec.Tls?.ServerSecretName is null) != (newSpec.Tls?.ServerSecretName is null)
            || (oldSpec.Tls?.PeerSecretName is null) != (newSpec.Tls?.PeerSecretName is null))
        {
            errors.Add(new("spec.tls", RaftClusterTls.ImmutableRuleMessage));
        }

        return errors;
    }

    private static void ValidateStorage(RaftClusterStorage storage, List<ValidationError> errors)
    {
        var sizeOk = System.Text.RegularExpressions.Regex.IsMatch(storage.Size ?? "", RaftClusterStorage.QuantityPattern);
        if (sizeOk)
        {
            try
            {
                sizeOk = new ResourceQuantity(storage.Size).ToDecimal() > 0;
            }
            catch (FormatException)
            {
                sizeOk = false;
            }
        }

        if (!sizeOk)
        {
            errors.Add(new("spec.storage.size", $"size must be a positive quantity such as 10Gi (got \"{storage.Size}\")"));
        }
    }

    private static void ValidateTuning(RaftClusterTuning tuning, List<ValidationError> errors)
    {
        TimeSpan? heartbeat = null, election = null;
        if (tuning.HeartbeatInterval is { } heartbeatText)
        {
            if (GoDuration.TryParse(heartbeatText, out var value, out var error))
            {
                heartbeat = value;
            }
            else
            {
                errors.Add(new("spec.tuning.heartbeatInterval", error));
            }
        }

        if (tuning.ElectionTimeout is { } electionText)
        {
            if (GoDuration.TryParse(electionText, out var value, out var error))
            {
                election = value;
            }
            else
            {
                errors.Add(new("spec.tuning.electionTimeout", error));
            }
        }

        if (tuning.Mode != TuningMode.Manual)
        {
            return;
        }

        if (tuning.HeartbeatInterval is null || tuning.ElectionTimeout is null)
        {
            errors.Add(new("spec.tuning", "Manual tuning needs both heartbeatInterval and electionTimeout, e.g. heartbeatInterval: 100ms, electionTimeout: 1s"));
            return;
        }

        if (heartbeat is { } h && h < TimeSpan.FromMilliseconds(1))
        {
            errors.Add(new("spec.tuning.heartbeatInterval", "heartbeatInterval must be at least 1ms"));
        }

        if (heartbeat is { } hb && election is { } e)
        {
            // Whole milliseconds, as the CEL rule compares them (getMilliseconds truncates).
            if ((long)e.TotalMilliseconds < MinElectionToHeartbeatRatio * (long)hb.TotalMilliseconds)
            {
                errors.Add(new("spec.tuning.electionTimeout",
                    "electionTimeout must be at least 5 times heartbeatInterval: followers must miss several heartbeats before starting an election"
                    + $" (got {tuning.ElectionTimeout} with heartbeatInterval {tuning.HeartbeatInterval}; use at least {GoDuration.Format(hb * MinElectionToHeartbeatRatio)})"));
            }

            if (e > MaxElectionTimeout)
            {
                errors.Add(new("spec.tuning.electionTimeout",
                    $"electionTimeout must be at most 50s: a longer timeout leaves the cluster without a leader for too long after a failure (got {tuning.ElectionTimeout})"));
            }
        }
    }
}
