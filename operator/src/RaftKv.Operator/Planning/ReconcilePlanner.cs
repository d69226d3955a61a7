using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;

namespace RaftKv.Operator.Planning;

/// <summary>
/// Computes the one next safe step from an observation. Rules (DESIGN.md, "How it acts"):
/// <list type="bullet">
/// <item>Never act on membership or pods without a leader or below quorum; only bootstrap needs neither.</item>
/// <item>One voter change at a time: a new member joins as a learner, catches up, then is promoted.</item>
/// <item>Scale down from the highest ordinal: transfer leadership away if it leads, remove it from Raft,
/// and only then shrink the StatefulSet.</item>
/// <item>No step may leave fewer healthy voters than the quorum of the resulting configuration.</item>
/// <item>Rolling changes restart one pod at a time, only while every member is ready, the leader last
/// after handing leadership to an up-to-date member.</item>
/// </list>
/// Work already under way (a learner joining, a member removed but its pod still there) is finished
/// before new work starts, which is what makes a restarted operator resume safely.
/// </summary>
internal static class ReconcilePlanner
{
    /// <summary>Whether a CreateObjects key (<c>Kind/name</c>, as DesiredObjects makes them) names the StatefulSet.</summary>
    public static bool IsStatefulSet(string key) => key.StartsWith("StatefulSet/", StringComparison.Ordinal);

    public static int Quorum(int voters) => voters / 2 + 1;

    /// <summary>
    /// How many members form a new cluster: spec.replicas, or one when it starts from a snapshot (that member restores it;
    /// the others then join one at a time as learners and get the data from the leader, so no two pods need the snapshot's claim).
    /// </summary>
    public static int InitialMembers(RaftClusterSpec spec) => spec.Bootstrap?.Snapshot is null ? spec.Replicas : 1;

    /// <summary>
    /// What the <c>NAME-members</c> ConfigMap should say (see ClusterObjectBuilder.MembersConfigMap): before
    /// the first leader, the initial members and state <c>new</c>; once a leader has been seen, the current
    /// membership (learners included) and state <c>existing</c>. Null while the membership cannot be
    /// known (no leader after bootstrap): the ConfigMap is then left as it is.
    /// </summary>
    public static (int MemberCount, bool Bootstrapped)? MembersConfig(ObservedCluster observed)
    {
        if (observed.LeaderId is not null && observed.Members.Count > 0)
        {
            var span = observed.Members.Where(m => m.Ordinal is not null).Select(m => m.Ordinal!.Value + 1).DefaultIfEmpty(0).Max();
            return span > 0 ? (span, true) : null;
        }

        return observed.Bootstrapped ? null : (observed.StatefulSetReplicas ?? InitialMembers(observed.Spec), false);
    }

    public static PlanStep Plan(ObservedCluster observed, ClusterNames names)
    {
        var spec = observed.Spec;
        var problems = RaftClusterValidator.ValidateName(observed.Name).Concat(RaftClusterValidator.Validate(spec)).ToList();
        if (problems.Count > 0)
        {
            return new Wait(ConditionReasons.InvalidSpec, $"the spec is invalid, nothing is changed until it is fixed: {string.Join("; ", problems)}");
        }

        if (observed.TlsProblem is { } tlsProblem)
        {
            return new Wait(ConditionReasons.TlsSecretInvalid, $"the TLS Secrets cannot be used, nothing is changed until they are fixed: {tlsProblem}");
        }

        // Objects other than the member pods: safe to create or update at any time (the StatefulSet's
        // template uses OnDelete, so updating it restarts nothing).
        if (observed.StatefulSetReplicas is not { } statefulSetReplicas)
        {
            var others = observed.ObjectsToApply.Where(o => !IsStatefulSet(o)).ToList();
            if (others.Count > 0)
            {
                return new CreateObjects(others, 0);
            }

            return observed.Bootstrapped
                // The StatefulSet was deleted (its pods and volumes may remain): bring it back at the size it had.
                ? new CreateObjects([$"StatefulSet/{names.StatefulSet}"], Math.Max(1, observed.PreviousMemberCount))
                : new Bootstrap(InitialMembers(spec));
        }

        if (observed.ObjectsToApply.Count > 0)
        {
            return new CreateObjects(observed.ObjectsToApply, statefulSetReplicas);
        }

        if (observed.LeaderId is not { } leaderId)
        {
            if (observed.Bootstrapped)
            {
                return new Wait(ConditionReasons.NoLeader, "no leader: waiting for the members to elect one; membership and pods are left alone meanwhile");
            }

            // Before the first leader no member holds data anyone acknowledged: a pod that cannot run on an
            // older template goes, so a corrected spec (version, image, node selector) takes effect.
            if (observed.Pods.Where(p => !p.UpToDate && !p.Ready && p.Problem is not null).OrderByDescending(p => p.Ordinal).FirstOrDefault() is { } stuck)
            {
                return new RollPod(names.Pod(stuck.Ordinal), stuck.Ordinal);
            }

            return observed.Pods.Where(p => p.Problem is not null).OrderBy(p => p.Ordinal).FirstOrDefault() is { Problem: { } problem } blocked
                ? new Wait(problem.Reason, $"the initial members cannot start: {names.Pod(blocked.Ordinal)}: {problem.Message}")
                : new Wait(ConditionReasons.Bootstrapping, $"waiting for the {statefulSetReplicas} initial member(s) to start and elect a first leader");
        }

        var members = observed.Members;
        var voters = members.Where(m => !m.IsLearner).ToList();
        var healthyVoters = voters.Count(m => m.Healthy);
        if (healthyVoters < Quorum(voters.Count))
        {
            return new Wait(ConditionReasons.QuorumLost,
                $"only {healthyVoters} of {voters.Count} voters are healthy, fewer than the quorum of {Quorum(voters.Count)}; waiting for members to recover");
        }

        if (members.FirstOrDefault(m => m.Ordinal is null) is { } foreign)
        {
            return new Wait(ConditionReasons.ForeignMember,
                $"member {foreign.Id:x16} is not one of {names.StatefulSet}'s pods; remove it with 'etcdctl member remove {foreign.Id:x16}' if it should not be there");
        }

        // Timing first: raising timeouts protects the cluster, and applying them restarts nothing.
        if (observed.Tuning is { Changed: true } tuning)
        {
            return new UpdateTuning(tuning.Timing, tuning.Reason);
        }

        return PlanMembership(observed, names, statefulSetReplicas, leaderId, voters, healthyVoters)
            ?? PlanRollingUpdate(observed, names, leaderId, voters, healthyVoters)
            ?? (PlanStep?)PlanWaitForPods(observed, names)
            ?? Nothing.Instance;
    }

    private static PlanStep? PlanMembership(ObservedCluster observed, ClusterNames names, int statefulSetReplicas, ulong leaderId,
        List<ObservedMember> voters, int healthyVoters)
    {
        var spec = observed.Spec;
        var members = observed.Members;

        // 1. A learner is joining: finish (or cancel) that first.
        if (members.Where(m => m.IsLearner).OrderBy(m => m.Ordinal).FirstOrDefault() is { } learner)
        {
            var ordinal = learner.Ordinal!.Value;
            var name = names.Pod(ordinal);
            if (ordinal >= spec.Replicas)
            {
                // The spec shrank while it joined. A learner has no vote: removing it changes no quorum.
                return new RemoveMember(name, learner.Id, $"learner no longer wanted: spec.replicas is {spec.Replicas}");
            }

            if (observed.LostVolumes.Contains(ordinal))
            {
                return new RemoveAndReaddLostMember(name, learner.Id, ordinal, names.PeerUrl(ordinal));
            }

            if (statefulSetReplicas <= ordinal)
            {
                return new ScaleStatefulSet(ordinal + 1);
            }

            if (!learner.CaughtUp)
            {
                // A learner whose pod cannot run would wait forever: say why (Degraded carries the reason). A
                // pod on an older template goes, so a corrected spec takes effect; scaling back cancels (above).
                if (observed.Pods.FirstOrDefault(p => p.Ordinal == ordinal) is { Problem: { } problem } pod)
                {
                    return pod.UpToDate
                        ? new Wait(problem.Reason,
                            $"learner {name} cannot start: {problem.Message}; it joins once that is fixed, or set spec.replicas back to {voters.Count} to cancel the scale-up")
                        : new RollPod(name, ordinal);
                }

                return new WaitForCatchUp(name);
            }

            // Promotion grows the voter set; the new voter is caught up, so it counts as healthy.
            if (healthyVoters + 1 < Quorum(voters.Count + 1))
            {
                return new Wait(ConditionReasons.MembersNotReady,
                    $"promoting {name} would need {Quorum(voters.Count + 1)} healthy voters and only {healthyVoters + 1} would be; waiting for members to recover");
            }

            return new PromoteLearner(name, learner.Id);
        }

        // 2. A voter lost its volume: replace it, if the others keep quorum without it.
        if (voters.Where(m => observed.LostVolumes.Contains(m.Ordinal!.Value)).OrderBy(m => m.Ordinal).FirstOrDefault() is { } lost)
        {
            var ordinal = lost.Ordinal!.Value;
            if (lost.Id == leaderId)
            {
                return (PlanStep?)TransferAwayFrom(observed, names, lost, voters, "its volume was lost") ?? NoTransferTarget(names, lost);
            }

            var remainingHealthy = healthyVoters - (lost.Healthy ? 1 : 0);
            if (remainingHealthy < Quorum(voters.Count - 1))
            {
                return new Wait(ConditionReasons.MembersNotReady,
                    $"{names.Pod(ordinal)} lost its volume, but removing it would leave {remainingHealthy} healthy voters, below the quorum of {Quorum(voters.Count - 1)}");
            }

            return new RemoveAndReaddLostMember(names.Pod(ordinal), lost.Id, ordinal, names.PeerUrl(ordinal));
        }

        var memberOrdinals = members.Select(m => m.Ordinal!.Value).ToHashSet();
        var span = memberOrdinals.Count == 0 ? 0 : memberOrdinals.Max() + 1;

        // 3. Pods beyond the last member go first: their member was removed (a scale-down under way) or
        // never added (a StatefulSet scaled by hand); the StatefulSet deletes their volumes with them.
        if (statefulSetReplicas > span)
        {
            return new ScaleStatefulSet(span);
        }

        // 4. Scale up: one learner at a time, at the lowest free ordinal.
        if (voters.Count < spec.Replicas)
        {
            var next = Enumerable.Range(0, spec.Replicas).First(i => !memberOrdinals.Contains(i));
            return new AddLearner(names.Pod(next), next, names.PeerUrl(next));
        }

        // 5. Scale down: the highest ordinal leaves Raft first, then its pod (step 3, next round).
        if (voters.Count > spec.Replicas)
        {
            var target = voters.OrderByDescending(m => m.Ordinal).First();
            var name = names.Pod(target.Ordinal!.Value);
            if (target.Id == leaderId)
            {
                return (PlanStep?)TransferAwayFrom(observed, names, target, voters, "it is leaving the cluster") ?? NoTransferTarget(names, target);
            }

            var remainingHealthy = healthyVoters - (target.Healthy ? 1 : 0);
            if (remainingHealthy < Quorum(voters.Count - 1))
            {
                return new Wait(ConditionReasons.MembersNotReady,
                    $"removing {name} would leave {remainingHealthy} healthy voters, below the quorum of {Quorum(voters.Count - 1)}; waiting for members to recover");
            }

            return new RemoveMember(name, target.Id, $"scaling down to {spec.Replicas}");
        }

        // 6. Members whose pods are missing (a StatefulSet shrunk by hand) get them back.
        if (statefulSetReplicas < span)
        {
            return new ScaleStatefulSet(span);
        }

        return null;
    }

    private static PlanStep? PlanRollingUpdate(ObservedCluster observed, ClusterNames names, ulong leaderId, List<ObservedMember> voters, int healthyVoters)
    {
        var outdated = observed.Pods.Where(p => !p.UpToDate).ToList();
        if (outdated.Count == 0)
        {
            return null;
        }

        // An outdated pod that cannot run (bad image, unschedulable) and whose member is not a healthy voter is
        // down already: replacing it costs no availability, and waiting for it to become ready would wait forever
        // (a bad version rolled out, then corrected).
        var broken = outdated
            .Where(p => !p.Ready && p.Problem is not null && !voters.Any(v => v.Ordinal == p.Ordinal && v.Healthy))
            .OrderByDescending(p => p.Ordinal)
            .FirstOrDefault();
        if (broken is not null)
        {
            return new RollPod(names.Pod(broken.Ordinal), broken.Ordinal);
        }

        // A member whose pod is absent (deleted and not yet recreated) is down even if the leader has not
        // noticed yet: it counts as not ready, or a second restart could follow the first at once.
        var missing = observed.Members
            .Where(m => m.Ordinal is { } o && !observed.Pods.Any(p => p.Ordinal == o))
            .Select(m => names.Pod(m.Ordinal!.Value));
        var notReady = observed.Pods.Where(p => !p.Ready).Select(p => names.Pod(p.Ordinal)).Concat(missing).Distinct(StringComparer.Ordinal).ToList();
        if (notReady.Count > 0 || healthyVoters < voters.Count)
        {
            return new Wait(ConditionReasons.RollingUpdate,
                $"rolling update paused until every member is ready and healthy (not ready: {(notReady.Count > 0 ? string.Join(", ", notReady) : "none")}, healthy voters {healthyVoters}/{voters.Count})");
        }

        // With one voter a restart is an outage whatever we do; the user chose a single member.
        if (voters.Count > 1 && healthyVoters - 1 < Quorum(voters.Count))
        {
            return new Wait(ConditionReasons.RollingUpdate, "restarting a member now would leave fewer healthy voters than quorum");
        }

        var leaderOrdinal = voters.FirstOrDefault(v => v.Id == leaderId)?.Ordinal;
        var next = outdated.Where(p => p.Ordinal != leaderOrdinal).OrderByDescending(p => p.Ordinal).FirstOrDefault();
        if (next is not null)
        {
            return new RollPod(names.Pod(next.Ordinal), next.Ordinal);
        }

        // Only the leader's pod is left: hand leadership to an up-to-date voter, then restart it.
        var leader = voters.First(v => v.Id == leaderId);
        if (voters.Count == 1)
        {
            return new RollPod(names.Pod(leader.Ordinal!.Value), leader.Ordinal!.Value);
        }

        return (PlanStep?)TransferAwayFrom(observed, names, leader, voters, "its pod is restarted last in the rolling update") ?? NoTransferTarget(names, leader);
    }

    private static Wait? PlanWaitForPods(ObservedCluster observed, ClusterNames names)
    {
        if (observed.Pods.Where(p => p.Problem is not null && observed.Members.Any(m => m.Ordinal == p.Ordinal)).OrderBy(p => p.Ordinal).FirstOrDefault() is { Problem: { } problem } stuck)
        {
            return new Wait(problem.Reason, $"{names.Pod(stuck.Ordinal)} cannot run: {problem.Message}");
        }

        var notReady = observed.Members
            .Where(m => !observed.Pods.Any(p => p.Ordinal == m.Ordinal && p.Ready))
            .Select(m => names.Pod(m.Ordinal!.Value))
            .ToList();
        return notReady.Count > 0
            ? new Wait(ConditionReasons.MembersNotReady, $"waiting for {string.Join(", ", notReady)} to become ready")
            : null;
    }

    /// <summary>A healthy, caught-up voter other than <paramref name="from"/>, preferring one on the current template, then the lowest ordinal.</summary>
    private static TransferLeadership? TransferAwayFrom(ObservedCluster observed, ClusterNames names, ObservedMember from, List<ObservedMember> voters, string why)
    {
        var upToDate = observed.Pods.Where(p => p.UpToDate && p.Ready).Select(p => p.Ordinal).ToHashSet();
        var target = voters
            .Where(v => v.Id != from.Id && v.Healthy && v.CaughtUp && !observed.LostVolumes.Contains(v.Ordinal!.Value))
            .OrderBy(v => upToDate.Contains(v.Ordinal!.Value) ? 0 : 1)
            .ThenBy(v => v.Ordinal)
            .FirstOrDefault();
        return target is null
            ? null
            : new TransferLeadership(names.Pod(from.Ordinal!.Value), names.Pod(target.Ordinal!.Value), target.Id, why);
    }

    private static Wait NoTransferTarget(ClusterNames names, ObservedMember leader) =>
        new(ConditionReasons.MembersNotReady, $"{names.Pod(leader.Ordinal!.Value)} leads and must hand over leadership first, but no other voter is healthy and caught up");
}
