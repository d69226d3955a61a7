using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Tuning;
using static RaftKv.Operator.Tests.Planning.States;

namespace RaftKv.Operator.Tests.Planning;

public sealed class ReconcilePlannerTests
{
    private static PlanStep Plan(ObservedCluster state) => ReconcilePlanner.Plan(state, Names);

    private static T Expect<T>(ObservedCluster state)
        where T : PlanStep
    {
        var step = Plan(state);
        return Assert.IsType<T>(step, exactMatch: true) ?? throw new InvalidOperationException(step.Describe());
    }

    private static void ExpectWait(ObservedCluster state, string reason, string? messagePart = null)
    {
        var step = Plan(state);
        var wait = step as Wait;
        Assert.True(wait is not null, $"expected Wait({reason}), planned: {step}");
        Assert.Equal(reason, wait.Reason);
        if (messagePart is not null)
        {
            Assert.Contains(messagePart, wait.Message, StringComparison.Ordinal);
        }
    }

    // ---- Before and during bootstrap ----

    [Fact]
    public void An_invalid_spec_changes_nothing()
    {
        ExpectWait(Steady(3, specReplicas: 4), ConditionReasons.InvalidSpec, "must be odd");
        ExpectWait(Steady() with { Name = "Demo" }, ConditionReasons.InvalidSpec, "cannot name a RaftCluster");
    }

    [Fact]
    public void Unusable_tls_secrets_change_nothing_not_even_a_bootstrap()
    {
        const string Problem = "Secret demo-peer-tls (tls.peerSecretName) not found in namespace prod";
        ExpectWait(Steady(3) with { TlsProblem = Problem }, ConditionReasons.TlsSecretInvalid, Problem);
        ExpectWait(new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec { Replicas = 3 }, TlsProblem = Problem }, ConditionReasons.TlsSecretInvalid, Problem);
    }

    [Fact]
    public void A_new_cluster_gets_its_objects_then_its_statefulset()
    {
        var fresh = new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec { Replicas = 3 }, ObjectsToApply = ["Service/demo-peers", "Service/demo-client", "ConfigMap/demo-members", "StatefulSet/demo"] };

        var create = Expect<CreateObjects>(fresh);
        Assert.Equal(["Service/demo-peers", "Service/demo-client", "ConfigMap/demo-members"], create.Objects);

        Assert.Equal(new Bootstrap(3), Plan(fresh with { ObjectsToApply = ["StatefulSet/demo"] }));
        Assert.Equal(new Bootstrap(3), Plan(fresh with { ObjectsToApply = [] }));
    }

    [Fact]
    public void A_cluster_from_a_snapshot_forms_with_one_member_then_grows_through_learners()
    {
        var spec = new RaftClusterSpec
        {
            Replicas = 3,
            Bootstrap = new RaftClusterBootstrap { Snapshot = new RaftClusterSnapshotSource { PersistentVolumeClaimName = "backups", Path = "demo.db" } },
        };
        var fresh = new ObservedCluster { Name = "demo", Spec = spec };

        Assert.Equal((1, false), ReconcilePlanner.MembersConfig(fresh));
        Assert.Equal(new Bootstrap(1), Plan(fresh));
        var formed = Steady(1) with { Spec = spec };
        Assert.Equal(1, Expect<AddLearner>(formed).Ordinal);
    }

    [Fact]
    public void Bootstrap_waits_for_the_first_leader_without_touching_members()
    {
        var starting = new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec { Replicas = 3 }, StatefulSetReplicas = 3, Pods = [Pod(0, ready: false), Pod(1, ready: false)] };
        ExpectWait(starting, ConditionReasons.Bootstrapping, "3 initial member(s)");
    }

    [Fact]
    public void A_deleted_statefulset_comes_back_at_its_former_size()
    {
        var orphaned = Steady() with { StatefulSetReplicas = null, Members = [], LeaderId = null, Pods = [], PreviousMemberCount = 3, ObjectsToApply = ["StatefulSet/demo"] };
        var step = Expect<CreateObjects>(orphaned);
        Assert.Equal(["StatefulSet/demo"], step.Objects);
        Assert.Equal(3, step.StatefulSetReplicas);
    }

    [Fact]
    public void Outdated_objects_are_applied_keeping_the_statefulset_size()
    {
        var step = Expect<CreateObjects>(Steady(5) with { ObjectsToApply = ["ConfigMap/demo-members", "StatefulSet/demo"] });
        Assert.Equal(5, step.StatefulSetReplicas);
    }

    // ---- No leader, no quorum ----

    [Fact]
    public void Without_a_leader_nothing_is_done()
    {
        ExpectWait(Steady().WithSpec(5) with { LeaderId = null }, ConditionReasons.NoLeader);
    }

    [Fact]
    public void Below_quorum_nothing_is_done()
    {
        var state = Steady(3).WithSpec(5) with { Members = [Voter(0), Voter(1, healthy: false), Voter(2, healthy: false)] };
        ExpectWait(state, ConditionReasons.QuorumLost, "only 1 of 3 voters are healthy");
    }

    [Fact]
    public void A_member_that_is_not_one_of_our_pods_is_reported_not_removed()
    {
        var state = Steady() with { Members = [.. Steady().Members, new ObservedMember(null, 0xabc, false, true, true)] };
        ExpectWait(state, ConditionReasons.ForeignMember, "etcdctl member remove 0000000000000abc");
    }

    [Fact]
    public void A_steady_cluster_needs_nothing()
    {
        Assert.Same(Nothing.Instance, Plan(Steady()));
    }

    // ---- Scale up: learner, pod, catch up, promote ----

    public static TheoryData<string, string> ScaleUpSteps => new()
    {
        { "3 voters, spec 5", "AddLearner demo-3" },
        { "learner 3 added, no pod yet", "ScaleStatefulSet 4" },
        { "learner 3 has a pod, behind", "WaitForCatchUp demo-3" },
        { "learner 3 caught up", "PromoteLearner demo-3" },
        { "4 voters, spec 5", "AddLearner demo-4" },
    };

    [Theory]
    [MemberData(nameof(ScaleUpSteps))]
    public void Scale_up_adds_one_learner_at_a_time_and_promotes_it_when_caught_up(string situation, string expected)
    {
        var state = situation switch
        {
            "3 voters, spec 5" => Steady(3).WithSpec(5),
            "learner 3 added, no pod yet" => Steady(3).WithSpec(5) with { Members = [Voter(0), Voter(1), Voter(2), Learner(3)] },
            "learner 3 has a pod, behind" => Steady(3).WithSpec(5) with { StatefulSetReplicas = 4, Members = [Voter(0), Voter(1), Voter(2), Learner(3)], Pods = [Pod(0), Pod(1), Pod(2), Pod(3, ready: false)] },
            "learner 3 caught up" => Steady(3).WithSpec(5) with { StatefulSetReplicas = 4, Members = [Voter(0), Voter(1), Voter(2), Learner(3, caughtUp: true)], Pods = [Pod(0), Pod(1), Pod(2), Pod(3)] },
            "4 voters, spec 5" => Steady(4).WithSpec(5),
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };

        Assert.Equal(expected, Summary(Plan(state)));
    }

    [Fact]
    public void A_learner_is_added_with_its_stable_peer_url()
    {
        var add = Expect<AddLearner>(Steady(3).WithSpec(5));
        Assert.Equal(("demo-3", 3, "http://demo-3.demo-peers.prod.svc.cluster.local:2380"), (add.Member, add.Ordinal, add.PeerUrl));
    }

    [Fact]
    public void A_learner_no_longer_wanted_is_removed()
    {
        var state = Steady(3) with { StatefulSetReplicas = 4, Members = [Voter(0), Voter(1), Voter(2), Learner(3)], Pods = [Pod(0), Pod(1), Pod(2), Pod(3, ready: false)] };
        var remove = Expect<RemoveMember>(state);
        Assert.Equal(("demo-3", Id(3)), (remove.Member, remove.Id));
    }

    [Fact]
    public void Scaling_up_proceeds_with_one_voter_down_as_quorum_holds()
    {
        var state = Steady(3).WithSpec(5) with { Members = [Voter(0), Voter(1), Voter(2, healthy: false)], Pods = [Pod(0), Pod(1), Pod(2, ready: false)] };
        Assert.Equal("AddLearner demo-3", Summary(Plan(state)));
    }

    // ---- Scale down: leadership away, remove, shrink ----

    [Fact]
    public void Scale_down_removes_the_highest_ordinal_from_raft_before_its_pod()
    {
        var remove = Expect<RemoveMember>(Steady(5).WithSpec(3));
        Assert.Equal(("demo-4", Id(4)), (remove.Member, remove.Id));

        var removed = Steady(5).WithSpec(3) with { Members = [Voter(0), Voter(1), Voter(2), Voter(3)] };
        Assert.Equal(new ScaleStatefulSet(4), Plan(removed));

        var shrunk = removed with { StatefulSetReplicas = 4, Pods = [Pod(0), Pod(1), Pod(2), Pod(3)] };
        Assert.Equal("RemoveMember demo-3", Summary(Plan(shrunk)));
    }

    [Fact]
    public void Scale_down_transfers_leadership_away_from_a_leaving_leader()
    {
        var state = Steady(5).WithSpec(3) with { LeaderId = Id(4) };
        var transfer = Expect<TransferLeadership>(state);
        Assert.Equal(("demo-4", "demo-0", Id(0)), (transfer.From, transfer.To, transfer.ToId));
    }

    [Fact]
    public void Leadership_goes_to_a_healthy_caught_up_voter()
    {
        var state = Steady(5).WithSpec(3) with { LeaderId = Id(4), Members = [Voter(0, healthy: false), Voter(1), Voter(2), Voter(3), Voter(4)] };
        Assert.Equal("demo-1", Expect<TransferLeadership>(state).To);
    }

    [Fact]
    public void A_removal_that_would_leave_fewer_healthy_voters_than_quorum_waits()
    {
        // 5 voters, 0 and 1 down: 3 healthy, quorum 3 holds. Removing healthy 4 would leave 2 healthy of 4 (quorum 3).
        var state = Steady(5).WithSpec(3) with { LeaderId = Id(2), Members = [Voter(0, healthy: false), Voter(1, healthy: false), Voter(2), Voter(3), Voter(4)] };
        ExpectWait(state, ConditionReasons.MembersNotReady, "below the quorum of 3");
    }

    [Fact]
    public void An_unhealthy_member_may_be_removed_when_the_rest_keep_quorum()
    {
        var state = Steady(5).WithSpec(3) with { Members = [Voter(0), Voter(1), Voter(2), Voter(3), Voter(4, healthy: false)] };
        Assert.Equal("RemoveMember demo-4", Summary(Plan(state)));
    }

    [Fact]
    public void Pods_without_a_member_go_before_further_changes()
    {
        // Someone scaled the StatefulSet by hand: pod 3 runs but is no member.
        var state = Steady(3).WithSpec(5) with { StatefulSetReplicas = 4, Pods = [Pod(0), Pod(1), Pod(2), Pod(3, ready: false)] };
        Assert.Equal(new ScaleStatefulSet(3), Plan(state));
    }

    [Fact]
    public void Missing_member_pods_are_brought_back()
    {
        var state = Steady(3) with { StatefulSetReplicas = 2, Pods = [Pod(0), Pod(1)] };
        Assert.Equal(new ScaleStatefulSet(3), Plan(state));
    }

    // ---- Lost volumes ----

    [Fact]
    public void A_member_whose_volume_was_lost_is_removed_and_readded()
    {
        var state = Steady(3) with { Members = [Voter(0), Voter(1, healthy: false), Voter(2)], Pods = [Pod(0), Pod(1, ready: false), Pod(2)], LostVolumes = new HashSet<int> { 1 } };
        var step = Expect<RemoveAndReaddLostMember>(state);
        Assert.Equal(("demo-1", Id(1), 1, "http://demo-1.demo-peers.prod.svc.cluster.local:2380"), (step.Member, step.Id, step.Ordinal, step.PeerUrl));
    }

    [Fact]
    public void A_lost_member_is_not_replaced_when_that_would_break_quorum()
    {
        // 5 voters: 3 and 4 down, 1 lost its volume but still answers. Removing it leaves 2 healthy of 4.
        var state = Steady(5) with
        {
            Members = [Voter(0), Voter(1), Voter(2), Voter(3, healthy: false), Voter(4, healthy: false)],
            LostVolumes = new HashSet<int> { 1 },
        };
        ExpectWait(state, ConditionReasons.MembersNotReady, "lost its volume");
    }

    [Fact]
    public void A_leader_whose_volume_was_lost_hands_over_leadership_first()
    {
        var state = Steady(3) with { LostVolumes = new HashSet<int> { 0 } };
        var transfer = Expect<TransferLeadership>(state);
        Assert.Equal(("demo-0", "demo-1"), (transfer.From, transfer.To));
        Assert.Contains("volume", transfer.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void A_readded_member_then_catches_up_and_is_promoted()
    {
        var readded = Steady(3) with { Members = [Voter(0), Learner(1), Voter(2)], Pods = [Pod(0), Pod(1, ready: false), Pod(2)] };
        Assert.Equal("WaitForCatchUp demo-1", Summary(Plan(readded)));
        Assert.Equal("PromoteLearner demo-1", Summary(Plan(readded with { Members = [Voter(0), Learner(1, caughtUp: true), Voter(2)] })));
    }

    [Fact]
    public void A_learner_that_lost_its_volume_is_readded_too()
    {
        var state = Steady(3).WithSpec(5) with { StatefulSetReplicas = 4, Members = [Voter(0), Voter(1), Voter(2), Learner(3)], LostVolumes = new HashSet<int> { 3 } };
        Assert.Equal("RemoveAndReaddLostMember demo-3", Summary(Plan(state)));
    }

    // ---- Rolling update ----

    [Fact]
    public void A_rolling_update_restarts_followers_from_the_highest_ordinal()
    {
        var state = Steady(3) with { Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false), Pod(2, upToDate: false)] };
        Assert.Equal(new RollPod("demo-2", 2), Plan(state));

        var next = state with { Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false), Pod(2)] };
        Assert.Equal(new RollPod("demo-1", 1), Plan(next));
    }

    [Fact]
    public void The_leader_is_restarted_last_after_handing_over_to_an_updated_member()
    {
        var leaderLeft = Steady(3) with { Pods = [Pod(0, upToDate: false), Pod(1), Pod(2)] };
        var transfer = Expect<TransferLeadership>(leaderLeft);
        Assert.Equal(("demo-0", "demo-1"), (transfer.From, transfer.To));

        Assert.Equal(new RollPod("demo-0", 0), Plan(leaderLeft with { LeaderId = Id(1) }));
    }

    [Fact]
    public void A_rolling_update_pauses_while_any_member_is_not_ready()
    {
        var state = Steady(3) with { Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false), Pod(2, ready: false)] };
        ExpectWait(state, ConditionReasons.RollingUpdate, "not ready: demo-2");
    }

    [Fact]
    public void A_rolling_update_pauses_while_a_members_pod_is_gone_even_before_the_leader_notices()
    {
        // demo-2 was just deleted and the StatefulSet has not recreated it; Raft still reports it healthy.
        var state = Steady(3) with { Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false)] };
        ExpectWait(state, ConditionReasons.RollingUpdate, "not ready: demo-2");
    }

    [Fact]
    public void A_single_member_is_restarted_since_nothing_else_can_update_it()
    {
        var state = Steady(1) with { Pods = [Pod(0, upToDate: false)] };
        Assert.Equal(new RollPod("demo-0", 0), Plan(state));
    }

    [Fact]
    public void Membership_changes_come_before_rolling()
    {
        var state = Steady(3).WithSpec(5) with { Pods = [Pod(0, upToDate: false), Pod(1), Pod(2)] };
        Assert.Equal("AddLearner demo-3", Summary(Plan(state)));
    }

    // ---- Tuning and waiting ----

    [Fact]
    public void New_timing_is_applied_before_membership_work()
    {
        var decision = new TuningDecision(new RaftTiming(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(3200)), true, "raised", false, null, "");
        var update = Expect<UpdateTuning>(Steady(3).WithSpec(5) with { Tuning = decision });
        Assert.Equal(decision.Timing, update.Timing);

        Assert.Equal("AddLearner demo-3", Summary(Plan(Steady(3).WithSpec(5) with { Tuning = decision with { Changed = false } })));
    }

    [Fact]
    public void Timing_is_not_changed_without_a_leader()
    {
        var decision = new TuningDecision(RaftTiming.EtcdDefault, true, "raised", false, null, "");
        ExpectWait(Steady() with { LeaderId = null, Tuning = decision }, ConditionReasons.NoLeader);
    }

    [Fact]
    public void A_member_pod_that_is_not_ready_is_waited_for()
    {
        ExpectWait(Steady(3) with { Pods = [Pod(0), Pod(1, ready: false), Pod(2)] }, ConditionReasons.MembersNotReady, "demo-1");
    }

    // ---- Members ConfigMap ----

    [Fact]
    public void The_members_config_follows_bootstrap_then_the_membership()
    {
        var fresh = new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec { Replicas = 3 } };
        Assert.Equal((3, false), ReconcilePlanner.MembersConfig(fresh));
        Assert.Equal((3, false), ReconcilePlanner.MembersConfig(fresh with { StatefulSetReplicas = 3 }));

        Assert.Equal((3, true), ReconcilePlanner.MembersConfig(Steady(3)));
        Assert.Equal((4, true), ReconcilePlanner.MembersConfig(Steady(3) with { Members = [Voter(0), Voter(1), Voter(2), Learner(3)] }));
        Assert.Null(ReconcilePlanner.MembersConfig(Steady(3) with { LeaderId = null }));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    [InlineData(5, 3)]
    [InlineData(9, 5)]
    public void Quorum_is_a_majority_of_voters(int voters, int quorum)
    {
        Assert.Equal(quorum, ReconcilePlanner.Quorum(voters));
    }

    internal static string Summary(PlanStep step) => step switch
    {
        AddLearner a => $"AddLearner {a.Member}",
        ScaleStatefulSet s => $"ScaleStatefulSet {s.Replicas}",
        WaitForCatchUp w => $"WaitForCatchUp {w.Member}",
        PromoteLearner p => $"PromoteLearner {p.Member}",
        RemoveMember r => $"RemoveMember {r.Member}",
        RemoveAndReaddLostMember r => $"RemoveAndReaddLostMember {r.Member}",
        TransferLeadership t => $"TransferLeadership {t.From}->{t.To}",
        RollPod r => $"RollPod {r.Pod}",
        _ => step.ToString(),
    };
}
