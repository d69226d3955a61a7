using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;

namespace RaftKv.Operator.Planning;

/// <summary>
/// The status a reconcile writes: counts, members, and the three conditions, all stamped with the
/// generation they describe. A condition's lastTransitionTime moves only when its status changes.
/// </summary>
internal static class StatusComputer
{
    public static RaftClusterStatus Compute(ObservedCluster observed, PlanStep step, ClusterNames names,
        RaftClusterStatus? previous, RaftClusterTuningStatus? tuning, DateTimeOffset now)
    {
        var voters = observed.Members.Count(m => !m.IsLearner);
        var learners = observed.Members.Count(m => m.IsLearner);
        var quorum = voters == 0 ? 0 : ReconcilePlanner.Quorum(voters);
        var leader = observed.Members.FirstOrDefault(m => m.Id == observed.LeaderId && m.Ordinal is not null);
        var readyPods = observed.Pods.Where(p => p.Ready).Select(p => p.Ordinal).ToHashSet();
        var healthyVoters = observed.Members.Count(m => !m.IsLearner && m.Healthy);
        var available = observed.LeaderId is not null && voters > 0 && healthyVoters >= quorum;
        var slowDisk = observed.Tuning?.SlowDisk == true;

        var members = observed.Members
            .OrderBy(m => m.Ordinal ?? int.MaxValue)
            .Select(m => new RaftClusterMember
            {
                Name = m.Ordinal is { } ordinal ? names.Pod(ordinal) : $"{m.Id:x16}",
                Id = $"{m.Id:x16}",
                Role = m.IsLearner ? MemberRole.Learner : m.Id == observed.LeaderId ? MemberRole.Leader : MemberRole.Follower,
                Ready = m.Ordinal is { } o && readyPods.Contains(o),
                Rtt = m.Rtt is { } rtt ? GoDuration.Format(rtt) : null,
            })
            .ToList();

        var (availableStatus, availableReason, availableMessage) = available
            ? (true, ConditionReasons.QuorumAvailable, $"{healthyVoters} of {voters} voters healthy (quorum {quorum}); leader {names.Pod(leader?.Ordinal ?? 0)}")
            : observed.StatefulSetReplicas is null && !observed.Bootstrapped
                ? (false, ConditionReasons.NotBootstrapped, "the cluster has not been created yet")
                : !observed.Bootstrapped
                    ? (false, ConditionReasons.Bootstrapping, "the initial members are starting and electing a first leader")
                    : observed.LeaderId is null
                        ? (false, ConditionReasons.NoLeader, "no member reports a leader")
                        : (false, ConditionReasons.QuorumLost, $"only {healthyVoters} of {voters} voters are healthy, fewer than the quorum of {quorum}");

        var progressReason = ProgressReason(step, observed);
        var (degradedStatus, degradedReason, degradedMessage) = Degraded(observed, step, available, slowDisk, names);

        var conditions = new List<V1Condition>
        {
            Condition(ConditionTypes.Available, availableStatus, availableReason, availableMessage),
            Condition(ConditionTypes.Progressing, progressReason is not null, progressReason ?? ConditionReasons.Reconciled,
                progressReason is not null ? step.Describe() : "the cluster is as specified"),
            Condition(ConditionTypes.Degraded, degradedStatus, degradedReason, degradedMessage),
        };

        return new RaftClusterStatus
        {
            ObservedGeneration = observed.Generation,
            Conditions = conditions,
            Phase = Phase(observed, step, available, degradedStatus),
            Leader = leader is null ? null : names.Pod(leader.Ordinal!.Value),
            Members = members,
            Replicas = observed.Members.Count > 0 ? observed.Members.Count : observed.Pods.Count,
            ReadyReplicas = readyPods.Count,
            Selector = ClusterLabels.SelectorString(names.Name),
            Voters = voters,
            Learners = learners,
            Quorum = quorum,
            FailureTolerance = voters == 0 ? 0 : voters - quorum,
            Tuning = tuning ?? previous?.Tuning,
        };

        V1Condition Condition(string type, bool status, string reason, string message)
        {
            var statusText = status ? "True" : "False";
            var before = previous?.Conditions?.FirstOrDefault(c => c.Type == type);
            return new V1Condition
            {
                Type = type,
                Status = statusText,
                Reason = reason,
                Message = message,
                ObservedGeneration = observed.Generation,
                LastTransitionTime = before is not null && before.Status == statusText ? before.LastTransitionTime : now.UtcDateTime,
            };
        }
    }

    /// <summary>The Progressing reason for a step, or null when the operator is not changing anything.</summary>
    private static string? ProgressReason(PlanStep step, ObservedCluster observed) => step switch
    {
        Bootstrap => ConditionReasons.Bootstrapping,
        Wait { Reason: ConditionReasons.Bootstrapping } => ConditionReasons.Bootstrapping,
        CreateObjects => ConditionReasons.CreatingObjects,
        AddLearner or WaitForCatchUp or PromoteLearner => ConditionReasons.ScalingUp,
        RemoveMember when observed.Members.Count(m => !m.IsLearner) > observed.Spec.Replicas => ConditionReasons.ScalingDown,
        RemoveMember => ConditionReasons.ScalingUp,
        ScaleStatefulSet s when s.Replicas < (observed.StatefulSetReplicas ?? 0) => ConditionReasons.ScalingDown,
        ScaleStatefulSet => ConditionReasons.ScalingUp,
        RemoveAndReaddLostMember => ConditionReasons.ReplacingMember,
        RollPod when !observed.Bootstrapped => ConditionReasons.Bootstrapping,
        RollPod when observed.Members.Any(m => m.IsLearner && observed.Pods.Any(p => p.Ordinal == m.Ordinal && !p.UpToDate)) => ConditionReasons.ScalingUp,
        RollPod or Wait { Reason: ConditionReasons.RollingUpdate } => ConditionReasons.RollingUpdate,
        Wait w when PodProblem.Reasons.Contains(w.Reason) && !observed.Bootstrapped => ConditionReasons.Bootstrapping,
        Wait w when PodProblem.Reasons.Contains(w.Reason) && observed.Members.Any(m => m.IsLearner) => ConditionReasons.ScalingUp,
        TransferLeadership t when t.Why.Contains("rolling", StringComparison.Ordinal) => ConditionReasons.RollingUpdate,
        TransferLeadership t when t.Why.Contains("volume", StringComparison.Ordinal) => ConditionReasons.ReplacingMember,
        TransferLeadership => ConditionReasons.ScalingDown,
        UpdateTuning => ConditionReasons.Retuning,
        _ => null,
    };

    private static (bool Status, string Reason, string Message) Degraded(ObservedCluster observed, PlanStep step, bool available, bool slowDisk, ClusterNames names)
    {
        if (step is Wait { Reason: ConditionReasons.InvalidSpec } invalid)
        {
            return (true, ConditionReasons.InvalidSpec, invalid.Message);
        }

        if (step is Wait { Reason: ConditionReasons.TlsSecretInvalid } tls)
        {
            return (true, ConditionReasons.TlsSecretInvalid, tls.Message);
        }

        if (step is Wait { Reason: ConditionReasons.ForeignMember } foreign)
        {
            return (true, ConditionReasons.ForeignMember, foreign.Message);
        }

        // Pods that cannot run say why, whatever else follows from it (a learner that never joins, no quorum).
        var stuck = observed.Pods.Where(p => p.Problem is not null).OrderBy(p => p.Ordinal).ToList();
        if (stuck.Count > 0)
        {
            return (true, stuck[0].Problem!.Reason, string.Join("; ", stuck.Select(p => $"{names.Pod(p.Ordinal)}: {p.Problem!.Message}")));
        }

        if (observed.Bootstrapped && !available)
        {
            return observed.LeaderId is null
                ? (true, ConditionReasons.NoLeader, "no member reports a leader: the cluster does not serve requests")
                : (true, ConditionReasons.QuorumLost, "fewer healthy voters than quorum: the cluster does not serve requests");
        }

        if (observed.Bootstrapped)
        {
            // Voters only: a learner is expected to be unready while it joins, and holds no vote.
            var notReady = observed.Members
                .Where(m => !m.IsLearner && m.Ordinal is { } o && !observed.Pods.Any(p => p.Ordinal == o && p.Ready))
                .Select(m => names.Pod(m.Ordinal!.Value))
                .ToList();
            var unhealthy = observed.Members.Where(m => !m.IsLearner && !m.Healthy && m.Ordinal is not null).Select(m => names.Pod(m.Ordinal!.Value)).ToList();
            var down = notReady.Union(unhealthy).Order(StringComparer.Ordinal).ToList();
            // The pod being rolled is expected to be unready for a while.
            var expected = step is RollPod or Wait { Reason: ConditionReasons.RollingUpdate };
            if (down.Count > 0 && !expected)
            {
                return (true, ConditionReasons.MembersNotReady, $"not ready or not healthy: {string.Join(", ", down)}");
            }
        }

        if (slowDisk)
        {
            return (true, ConditionReasons.SlowDisk,
                $"WAL fsync p99 is {(observed.FsyncP99 is { } fsync ? GoDuration.Format(fsync) : "unknown")}, above 10ms: every write waits for the disk; use local SSD storage");
        }

        return (false, ConditionReasons.AsExpected, "no problem seen");
    }

    private static ClusterPhase Phase(ObservedCluster observed, PlanStep step, bool available, bool degraded)
    {
        if (observed.StatefulSetReplicas is null && !observed.Bootstrapped)
        {
            return ClusterPhase.Pending;
        }

        if (!observed.Bootstrapped)
        {
            return ClusterPhase.Bootstrapping;
        }

        if (!available)
        {
            return ClusterPhase.Unavailable;
        }

        return ProgressReason(step, observed) switch
        {
            ConditionReasons.ScalingUp or ConditionReasons.ScalingDown or ConditionReasons.ReplacingMember => ClusterPhase.Scaling,
            ConditionReasons.RollingUpdate => ClusterPhase.Updating,
            _ => degraded ? ClusterPhase.Degraded : ClusterPhase.Running,
        };
    }
}
