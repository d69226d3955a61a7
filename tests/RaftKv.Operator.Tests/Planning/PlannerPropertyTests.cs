using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;
using static RaftKv.Operator.Tests.Planning.States;

namespace RaftKv.Operator.Tests.Planning;

/// <summary>The safety rules checked on random observations, including ones no real cluster would reach.</summary>
public sealed class PlannerPropertyTests
{
    [Fact]
    public void No_planned_step_breaks_a_safety_rule_on_random_observations()
    {
        var random = new Random(20261124);
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 20_000; i++)
        {
            var observed = RandomObservation(random);
            var step = ReconcilePlanner.Plan(observed, Names);
            counts[step.GetType().Name] = counts.GetValueOrDefault(step.GetType().Name) + 1;
            var violation = Violation(observed, step);
            Assert.True(violation is null, $"{violation}\nstep: {step}\nobserved: {Describe(observed)}");
        }

        // The generator must reach every kind of step, or this test proves little.
        foreach (var kind in new[] { "Bootstrap", "CreateObjects", "AddLearner", "ScaleStatefulSet", "WaitForCatchUp", "PromoteLearner",
                     "TransferLeadership", "RemoveMember", "RemoveAndReaddLostMember", "RollPod", "UpdateTuning", "Wait", "Nothing" })
        {
            Assert.True(counts.GetValueOrDefault(kind) > 0, $"no {kind} planned in 20000 observations: {string.Join(", ", counts)}");
        }
    }

    private static string? Violation(ObservedCluster o, PlanStep step)
    {
        var voters = o.Members.Where(m => !m.IsLearner).ToList();
        var healthy = voters.Count(m => m.Healthy);
        var changesCluster = step is AddLearner or PromoteLearner or RemoveMember or RemoveAndReaddLostMember or TransferLeadership or RollPod or ScaleStatefulSet or UpdateTuning;

        if (changesCluster && o.LeaderId is null)
        {
            return "acted without a leader";
        }

        if (changesCluster && healthy < ReconcilePlanner.Quorum(voters.Count))
        {
            return "acted below quorum";
        }

        if (step is Bootstrap && (o.StatefulSetReplicas is not null || o.Bootstrapped))
        {
            return "bootstrapped an existing cluster";
        }

        switch (step)
        {
            case AddLearner when o.Members.Any(m => m.IsLearner):
                return "added a learner while another is joining";
            case AddLearner a when o.Members.Any(m => m.Ordinal == a.Ordinal):
                return "added a learner over an existing member";
            case PromoteLearner p when o.Members.Single(m => m.Id == p.Id) is var l && (!l.IsLearner || !l.CaughtUp):
                return "promoted a member that is no caught-up learner";
            case PromoteLearner when healthy + 1 < ReconcilePlanner.Quorum(voters.Count + 1):
                return "promotion left fewer healthy voters than quorum";
            case RemoveMember r when r.Id == o.LeaderId:
                return "removed the leader";
            case RemoveMember r when o.Members.Single(m => m.Id == r.Id) is { IsLearner: false } v
                                     && healthy - (v.Healthy ? 1 : 0) < ReconcilePlanner.Quorum(voters.Count - 1):
                return "removal left fewer healthy voters than quorum";
            case RemoveAndReaddLostMember l when l.Id == o.LeaderId:
                return "replaced the leader";
            case RemoveAndReaddLostMember l when o.Members.Single(m => m.Id == l.Id) is { IsLearner: false } v
                                               && healthy - (v.Healthy ? 1 : 0) < ReconcilePlanner.Quorum(voters.Count - 1):
                return "replacement left fewer healthy voters than quorum";
            case TransferLeadership t when o.Members.Single(m => m.Id == t.ToId) is var to && (to.IsLearner || !to.Healthy || !to.CaughtUp):
                return "handed leadership to a learner or an unhealthy member";
            case RollPod r when voters.Count > 1 && voters.Any(v => v.Id == o.LeaderId && v.Ordinal == r.Ordinal):
                return "restarted the leader's pod";
            case RollPod when o.Pods.Any(p => !p.Ready) || healthy < voters.Count:
                return "restarted a pod while another member was down";
            case ScaleStatefulSet s when o.Members.Any(m => m.Ordinal >= s.Replicas):
                return "shrank the StatefulSet below a member";
            default:
                return null;
        }
    }

    private static ObservedCluster RandomObservation(Random random)
    {
        var specReplicas = random.Next(10) == 0 ? random.Next(0, 11) : 1 + 2 * random.Next(5);
        var memberCount = random.Next(0, 10);
        var members = new List<ObservedMember>();
        var learnerSlots = random.Next(3);
        for (var i = 0; i < memberCount; i++)
        {
            if (random.Next(12) == 0)
            {
                continue; // a gap in the ordinals
            }

            var learner = learnerSlots > 0 && random.Next(5) == 0;
            learnerSlots -= learner ? 1 : 0;
            var healthy = random.Next(6) > 0;
            members.Add(new ObservedMember(i, Id(i), learner, healthy, CaughtUp: healthy && random.Next(3) > 0));
        }

        var voters = members.Where(m => !m.IsLearner).ToList();
        var leader = voters.Count > 0 && random.Next(8) > 0 ? voters[random.Next(voters.Count)].Id : (ulong?)null;
        var statefulSet = random.Next(10) == 0 ? (int?)null : Math.Max(0, members.Select(m => m.Ordinal!.Value + 1).DefaultIfEmpty(0).Max() + random.Next(-1, 2));
        var pods = Enumerable.Range(0, statefulSet ?? 0)
            .Where(_ => random.Next(10) > 0)
            .Select(i => new ObservedPod(i, Ready: random.Next(5) > 0, UpToDate: random.Next(4) > 0))
            .ToList();
        var lost = members.Where(_ => random.Next(15) == 0).Select(m => m.Ordinal!.Value).ToHashSet();
        var tuning = random.Next(8) == 0
            ? new RaftKv.Operator.Tuning.TuningDecision(RaftKv.Operator.Tuning.RaftTiming.EtcdDefault, true, "test", false, null, "")
            : null;
        return new ObservedCluster
        {
            Name = "demo",
            Spec = new RaftClusterSpec { Replicas = specReplicas },
            StatefulSetReplicas = statefulSet,
            Bootstrapped = leader is not null || random.Next(2) == 0,
            Members = leader is null && random.Next(2) == 0 ? [] : members,
            LeaderId = leader,
            Pods = pods,
            LostVolumes = lost,
            ObjectsToApply = random.Next(10) == 0 ? ["ConfigMap/demo-members"] : [],
            PreviousMemberCount = members.Count,
            Tuning = tuning,
        };
    }

    private static string Describe(ObservedCluster o) =>
        $"spec {o.Spec.Replicas}, sts {o.StatefulSetReplicas}, bootstrapped {o.Bootstrapped}, leader {o.LeaderId:x}, "
        + $"members [{string.Join(" ", o.Members.Select(m => $"{m.Ordinal}{(m.IsLearner ? "L" : "V")}{(m.Healthy ? "" : "!")}{(m.CaughtUp ? "" : "~")}"))}], "
        + $"pods [{string.Join(" ", o.Pods.Select(p => $"{p.Ordinal}{(p.Ready ? "r" : "-")}{(p.UpToDate ? "" : "old")}"))}], lost [{string.Join(",", o.LostVolumes)}]";
}
