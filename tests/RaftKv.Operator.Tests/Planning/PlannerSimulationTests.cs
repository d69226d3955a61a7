using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;
using Xunit.Abstractions;
using static RaftKv.Operator.Tests.Planning.States;

namespace RaftKv.Operator.Tests.Planning;

/// <summary>
/// Runs the planner against a small model of a StatefulSet and a Raft cluster: each planned step is
/// executed, the model moves on (pods start, learners catch up, leaders change, pods fail at random),
/// and the safety rules are checked after every step. Since the planner keeps no state, this also
/// covers an operator restarted between any two steps.
/// </summary>
public sealed class PlannerSimulationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("bootstrap 3")]
    [InlineData("bootstrap 3, scale to 5")]
    [InlineData("bootstrap 5, scale to 3")]
    [InlineData("bootstrap 3, scale to 9, scale to 1")]
    [InlineData("bootstrap 3, new version")]
    [InlineData("bootstrap 5, lose a volume")]
    [InlineData("bootstrap 1, new version, scale to 3")]
    public void Scenarios_converge_without_breaking_a_safety_rule(string scenario)
    {
        var model = new ClusterModel(new Random(1), faults: false);
        foreach (var change in scenario.Split(", "))
        {
            Apply(model, change);
            RunToCompletion(model, scenario);
        }
    }

    [Fact]
    public void With_random_faults_every_step_stays_safe_and_the_cluster_converges_once_they_stop()
    {
        for (var seed = 1; seed <= 150; seed++)
        {
            var random = new Random(seed);
            var model = new ClusterModel(random, faults: true);
            Apply(model, "bootstrap 3");
            for (var round = 0; round < 4; round++)
            {
                var change = random.Next(4) switch
                {
                    0 => $"scale to {1 + 2 * random.Next(5)}",
                    1 => "new version",
                    2 => "lose a volume",
                    _ => $"scale to {1 + 2 * random.Next(5)}",
                };
                Apply(model, change);
                // Some steps under faults, then let it settle without faults.
                for (var i = 0; i < random.Next(0, 15); i++)
                {
                    Step(model, $"seed {seed}");
                }
            }

            model.Faults = false;
            RunToCompletion(model, $"seed {seed}");
        }
    }

    private static void Apply(ClusterModel model, string change)
    {
        switch (change.Split(' '))
        {
            case ["bootstrap", var n]:
                model.Spec = new RaftClusterSpec { Replicas = int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) };
                break;
            case ["scale", "to", var n]:
                model.Spec = new RaftClusterSpec { Replicas = int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) };
                break;
            case ["new", "version"]:
                model.TemplateRevision++;
                break;
            case ["lose", "a", "volume"]:
                // Only where the others keep quorum: losing the data of a majority needs a restore by hand.
                if (model.Members.Values.Count(m => !m.Learner) >= 3 && model.LostVolumes.Count == 0)
                {
                    model.LoseVolume(model.Members.Keys.Max());
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(change), change, null);
        }
    }

    private void RunToCompletion(ClusterModel model, string context)
    {
        for (var i = 0; i < 200; i++)
        {
            if (Step(model, context) is Nothing)
            {
                var seen = model.Describe();
                Assert.True(model.Members.Count == model.Spec.Replicas && model.Members.Values.All(m => !m.Learner), $"{context}: settled with {seen}");
                Assert.True(model.StatefulSetReplicas == model.Spec.Replicas, $"{context}: settled with {seen}");
                Assert.True(model.Pods.Values.All(p => p.Ready && p.Revision == model.TemplateRevision), $"{context}: settled with {seen}");
                return;
            }
        }

        Assert.Fail($"{context}: no convergence after 200 steps: {model.Describe()}\n{string.Join("\n", model.History.TakeLast(20))}");
    }

    private PlanStep Step(ClusterModel model, string context)
    {
        var observed = model.Observe();
        var step = ReconcilePlanner.Plan(observed, Names);
        var votersBefore = model.Members.Values.Count(m => !m.Learner);
        var violation = model.Execute(step);
        if (violation is not null)
        {
            output.WriteLine(string.Join("\n", model.History));
        }

        Assert.True(violation is null, $"{context}: {step.Describe()}: {violation}\nbefore: {observed}\nafter: {model.Describe()}");
        var votersAfter = model.Members.Values.Count(m => !m.Learner);
        Assert.True(Math.Abs(votersAfter - votersBefore) <= 1, $"{context}: {step.Describe()} changed the voters from {votersBefore} to {votersAfter}");
        model.Progress();
        return step;
    }

    private sealed record ModelMember(ulong Id, bool Learner, bool CaughtUp);

    private sealed record ModelPod(bool Ready, int Revision, bool Fresh);

    /// <summary>A StatefulSet, its pods and the Raft membership, moved by plan steps and by time.</summary>
    private sealed class ClusterModel(Random random, bool faults)
    {
        private ulong _nextId = 0x100;

        public bool Faults { get; set; } = faults;
        public RaftClusterSpec Spec { get; set; } = new();
        public int? StatefulSetReplicas { get; private set; }
        public Dictionary<int, ModelPod> Pods { get; } = [];
        public Dictionary<int, ModelMember> Members { get; } = [];
        public ulong? LeaderId { get; private set; }
        public bool Bootstrapped { get; private set; }
        public int TemplateRevision { get; set; } = 1;
        public HashSet<int> LostVolumes { get; } = [];
        public List<string> History { get; } = [];

        private bool Healthy(int ordinal) => Pods.TryGetValue(ordinal, out var pod) && pod.Ready && !LostVolumes.Contains(ordinal);

        public void LoseVolume(int ordinal)
        {
            LostVolumes.Add(ordinal);
            if (Pods.TryGetValue(ordinal, out var pod))
            {
                Pods[ordinal] = pod with { Ready = false };
            }

            ElectIfNeeded();
        }

        public ObservedCluster Observe() => new()
        {
            Name = "demo",
            Spec = Spec,
            StatefulSetReplicas = StatefulSetReplicas,
            Bootstrapped = Bootstrapped,
            Pods = [.. Pods.OrderBy(p => p.Key).Select(p => new ObservedPod(p.Key, p.Value.Ready, p.Value.Revision == TemplateRevision))],
            Members = LeaderId is null ? [] : [.. Members.OrderBy(m => m.Key).Select(m => new ObservedMember(m.Key, m.Value.Id, m.Value.Learner, Healthy(m.Key), m.Value.CaughtUp))],
            LeaderId = LeaderId,
            LostVolumes = LostVolumes.Where(Members.ContainsKey).ToHashSet(),
            PreviousMemberCount = Members.Count,
        };

        /// <summary>Executes a step; returns a broken safety rule, or null.</summary>
        public string? Execute(PlanStep step)
        {
            History.Add($"{step.Describe()}  [{Describe()}]");
            var voters = Members.Where(m => !m.Value.Learner).Select(m => m.Key).ToList();
            var healthyVoters = voters.Count(Healthy);
            switch (step)
            {
                case Bootstrap b:
                    if (StatefulSetReplicas is not null || Members.Count > 0)
                    {
                        return "bootstrap of an existing cluster";
                    }

                    Scale(b.Replicas);
                    break;
                case CreateObjects c:
                    StatefulSetReplicas ??= c.StatefulSetReplicas;
                    break;
                case AddLearner a:
                    if (LeaderId is null || Members.Values.Any(m => m.Learner) || Members.ContainsKey(a.Ordinal))
                    {
                        return "learner added without a leader, beside another learner, or over an existing member";
                    }

                    Members[a.Ordinal] = new ModelMember(_nextId++, Learner: true, CaughtUp: false);
                    break;
                case ScaleStatefulSet s:
                    if (Members.Keys.Any(k => k >= s.Replicas) && Bootstrapped)
                    {
                        return $"StatefulSet shrunk to {s.Replicas} while member(s) {string.Join(",", Members.Keys.Where(k => k >= s.Replicas))} remain in Raft";
                    }

                    Scale(s.Replicas);
                    break;
                case PromoteLearner p:
                    var learner = Members.Single(m => m.Value.Id == p.Id);
                    if (!learner.Value.Learner || !learner.Value.CaughtUp || LeaderId is null)
                    {
                        return "promoted a member that is no caught-up learner, or without a leader";
                    }

                    Members[learner.Key] = learner.Value with { Learner = false };
                    break;
                case TransferLeadership t:
                    var to = Members.Single(m => m.Value.Id == t.ToId);
                    if (to.Value.Learner || !Healthy(to.Key))
                    {
                        return "leadership handed to a learner or an unhealthy member";
                    }

                    LeaderId = t.ToId;
                    break;
                case RemoveMember r:
                    if (r.Id == LeaderId)
                    {
                        return "removed the leader";
                    }

                    var removed = Members.Single(m => m.Value.Id == r.Id);
                    if (!removed.Value.Learner && voters.Count(v => v != removed.Key && Healthy(v)) < ReconcilePlanner.Quorum(voters.Count - 1))
                    {
                        return "removal left fewer healthy voters than quorum";
                    }

                    Members.Remove(removed.Key);
                    break;
                case RemoveAndReaddLostMember l:
                    if (l.Id == LeaderId)
                    {
                        return "replaced the leader";
                    }

                    Members[l.Ordinal] = new ModelMember(_nextId++, Learner: true, CaughtUp: false);
                    LostVolumes.Remove(l.Ordinal);
                    if (Pods.ContainsKey(l.Ordinal))
                    {
                        Pods[l.Ordinal] = new ModelPod(Ready: false, TemplateRevision, Fresh: true);
                    }

                    break;
                case RollPod roll:
                    if (Members.TryGetValue(roll.Ordinal, out var rolled) && rolled.Id == LeaderId && voters.Count > 1)
                    {
                        return "restarted the leader's pod";
                    }

                    if (voters.Count > 1 && healthyVoters - 1 < ReconcilePlanner.Quorum(voters.Count))
                    {
                        return "restart left fewer healthy voters than quorum";
                    }

                    Pods[roll.Ordinal] = new ModelPod(Ready: false, TemplateRevision, Fresh: true);
                    ElectIfNeeded();
                    break;
                case WaitForCatchUp or Wait or Nothing or UpdateTuning:
                    break;
                default:
                    return $"unknown step {step}";
            }

            return null;
        }

        /// <summary>Time passes: pods start, learners catch up, the first leader is elected; with faults, pods fail and leaders change.</summary>
        public void Progress()
        {
            foreach (var ordinal in Pods.Keys.ToList())
            {
                var pod = Pods[ordinal];
                if (!pod.Ready && !LostVolumes.Contains(ordinal) && (Members.ContainsKey(ordinal) || !Bootstrapped) && random.Next(3) > 0)
                {
                    Pods[ordinal] = pod with { Ready = true, Fresh = false };
                }
            }

            foreach (var (ordinal, member) in Members.ToList())
            {
                if (member.Learner && Healthy(ordinal) && random.Next(2) == 0)
                {
                    Members[ordinal] = member with { CaughtUp = true };
                }
            }

            if (!Bootstrapped && StatefulSetReplicas is { } n && n > 0 && Enumerable.Range(0, n).All(i => Pods.TryGetValue(i, out var p) && p.Ready))
            {
                foreach (var i in Enumerable.Range(0, n))
                {
                    Members[i] = new ModelMember(_nextId++, Learner: false, CaughtUp: true);
                }

                Bootstrapped = true;
            }

            if (Faults && Pods.Count > 0 && random.Next(6) == 0)
            {
                var victim = Pods.Keys.ElementAt(random.Next(Pods.Count));
                Pods[victim] = Pods[victim] with { Ready = false };
            }

            if (Faults && LeaderId is not null && random.Next(8) == 0)
            {
                LeaderId = null;
            }

            ElectIfNeeded();
        }

        private void ElectIfNeeded()
        {
            var voters = Members.Where(m => !m.Value.Learner).ToList();
            var healthy = voters.Where(v => Healthy(v.Key)).ToList();
            var leaderHealthy = LeaderId is { } id && healthy.Any(v => v.Value.Id == id);
            if (!Bootstrapped || voters.Count == 0 || healthy.Count < ReconcilePlanner.Quorum(voters.Count))
            {
                LeaderId = null;
                return;
            }

            if (!leaderHealthy)
            {
                LeaderId = healthy[random.Next(healthy.Count)].Value.Id;
            }
        }

        private void Scale(int replicas)
        {
            StatefulSetReplicas = replicas;
            foreach (var ordinal in Pods.Keys.Where(k => k >= replicas).ToList())
            {
                Pods.Remove(ordinal);
                LostVolumes.Remove(ordinal);
            }

            for (var i = 0; i < replicas; i++)
            {
                if (!Pods.ContainsKey(i))
                {
                    Pods[i] = new ModelPod(Ready: false, TemplateRevision, Fresh: true);
                }
            }

            ElectIfNeeded();
        }

        public string Describe() =>
            $"spec {Spec.Replicas}, sts {StatefulSetReplicas?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}, leader {LeaderId:x}, "
            + $"members [{string.Join(" ", Members.OrderBy(m => m.Key).Select(m => $"{m.Key}{(m.Value.Learner ? (m.Value.CaughtUp ? "L+" : "L") : "V")}"))}], "
            + $"pods [{string.Join(" ", Pods.OrderBy(p => p.Key).Select(p => $"{p.Key}{(p.Value.Ready ? "r" : "-")}{(p.Value.Revision == TemplateRevision ? "" : "old")}"))}], "
            + $"lost [{string.Join(",", LostVolumes)}]";
    }
}
