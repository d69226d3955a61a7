using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;
using RaftKv.Operator.Tuning;
using static RaftKv.Operator.Tests.Planning.States;

namespace RaftKv.Operator.Tests.Planning;

public sealed class StatusComputerTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

    private static RaftClusterStatus Compute(ObservedCluster observed, RaftClusterStatus? previous = null, PlanStep? step = null) =>
        StatusComputer.Compute(observed, step ?? ReconcilePlanner.Plan(observed, Names), Names, previous, tuning: null, Now);

    private static V1Condition Condition(RaftClusterStatus status, string type) => status.Conditions!.Single(c => c.Type == type);

    private static void AssertCondition(RaftClusterStatus status, string type, string expectedStatus, string expectedReason)
    {
        var condition = Condition(status, type);
        Assert.True(condition.Status == expectedStatus && condition.Reason == expectedReason,
            $"{type}: expected {expectedStatus}/{expectedReason}, got {condition.Status}/{condition.Reason}: {condition.Message}");
    }

    [Theory]
    [InlineData(1, 1, 0)]
    [InlineData(3, 2, 1)]
    [InlineData(5, 3, 2)]
    [InlineData(7, 4, 3)]
    [InlineData(9, 5, 4)]
    public void Counts_quorum_and_failure_tolerance(int members, int quorum, int tolerance)
    {
        var status = Compute(Steady(members));

        Assert.Equal(members, status.Voters);
        Assert.Equal(0, status.Learners);
        Assert.Equal(quorum, status.Quorum);
        Assert.Equal(tolerance, status.FailureTolerance);
        Assert.Equal(members, status.Replicas);
        Assert.Equal(members, status.ReadyReplicas);
    }

    [Fact]
    public void A_steady_cluster_is_available_not_progressing_not_degraded_and_running()
    {
        var status = Compute(Steady(3) with { Generation = 7 });

        AssertCondition(status, ConditionTypes.Available, "True", ConditionReasons.QuorumAvailable);
        AssertCondition(status, ConditionTypes.Progressing, "False", ConditionReasons.Reconciled);
        AssertCondition(status, ConditionTypes.Degraded, "False", ConditionReasons.AsExpected);
        Assert.Equal(ClusterPhase.Running, status.Phase);
        Assert.Equal(7, status.ObservedGeneration);
        Assert.All(status.Conditions!, c => Assert.Equal(7, c.ObservedGeneration));
        Assert.All(status.Conditions!, c => Assert.Equal(Now.UtcDateTime, c.LastTransitionTime));
        Assert.Equal("demo-0", status.Leader);
        Assert.Equal("app.kubernetes.io/component=member,app.kubernetes.io/instance=demo,app.kubernetes.io/name=raftkv", status.Selector);
    }

    [Fact]
    public void Members_are_listed_with_role_readiness_id_and_rtt()
    {
        var observed = Steady(3) with
        {
            Members = [Voter(0), Voter(1) with { Rtt = TimeSpan.FromMilliseconds(2) }, Voter(2), Learner(3)],
            Pods = [Pod(0), Pod(1), Pod(2, ready: false), Pod(3, ready: false)],
            LeaderId = Id(1),
            StatefulSetReplicas = 4,
            Spec = new RaftClusterSpec { Replicas = 5 },
        };
        var status = Compute(observed);

        Assert.Equal(
            [("demo-0", MemberRole.Follower, true), ("demo-1", MemberRole.Leader, true), ("demo-2", MemberRole.Follower, false), ("demo-3", MemberRole.Learner, false)],
            status.Members!.Select(m => (m.Name, m.Role, m.Ready)));
        Assert.Equal("0000000000000101", status.Members![1].Id);
        Assert.Equal("2ms", status.Members[1].Rtt);
        Assert.Null(status.Members[0].Rtt);
        Assert.Equal((3, 1, 4), (status.Voters, status.Learners, status.Replicas));
        Assert.Equal("demo-1", status.Leader);
    }

    [Fact]
    public void Before_creation_the_cluster_is_pending()
    {
        var status = Compute(new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec(), Generation = 1 });

        Assert.Equal(ClusterPhase.Pending, status.Phase);
        AssertCondition(status, ConditionTypes.Available, "False", ConditionReasons.NotBootstrapped);
        AssertCondition(status, ConditionTypes.Progressing, "True", ConditionReasons.Bootstrapping);
        AssertCondition(status, ConditionTypes.Degraded, "False", ConditionReasons.AsExpected);
    }

    [Fact]
    public void While_bootstrapping_the_cluster_is_progressing_not_degraded()
    {
        var status = Compute(new ObservedCluster { Name = "demo", Spec = new RaftClusterSpec(), StatefulSetReplicas = 3, Pods = [Pod(0, ready: false)] });

        Assert.Equal(ClusterPhase.Bootstrapping, status.Phase);
        AssertCondition(status, ConditionTypes.Available, "False", ConditionReasons.Bootstrapping);
        AssertCondition(status, ConditionTypes.Progressing, "True", ConditionReasons.Bootstrapping);
        AssertCondition(status, ConditionTypes.Degraded, "False", ConditionReasons.AsExpected);
    }

    [Fact]
    public void Without_a_leader_after_bootstrap_the_cluster_is_unavailable_and_degraded()
    {
        var status = Compute(Steady(3) with { LeaderId = null, Members = [] });

        Assert.Equal(ClusterPhase.Unavailable, status.Phase);
        AssertCondition(status, ConditionTypes.Available, "False", ConditionReasons.NoLeader);
        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.NoLeader);
        Assert.Null(status.Leader);
    }

    [Fact]
    public void Below_quorum_the_cluster_is_unavailable()
    {
        var status = Compute(Steady(3) with { Members = [Voter(0), Voter(1, healthy: false), Voter(2, healthy: false)] });

        AssertCondition(status, ConditionTypes.Available, "False", ConditionReasons.QuorumLost);
        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.QuorumLost);
    }

    [Fact]
    public void A_member_down_leaves_the_cluster_available_but_degraded()
    {
        var status = Compute(Steady(3) with { Members = [Voter(0), Voter(1), Voter(2, healthy: false)], Pods = [Pod(0), Pod(1), Pod(2, ready: false)] });

        AssertCondition(status, ConditionTypes.Available, "True", ConditionReasons.QuorumAvailable);
        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.MembersNotReady);
        Assert.Contains("demo-2", Condition(status, ConditionTypes.Degraded).Message, StringComparison.Ordinal);
        Assert.Equal(ClusterPhase.Degraded, status.Phase);
    }

    [Fact]
    public void A_joining_learner_is_not_a_member_down()
    {
        var observed = Steady(3).WithSpec(5) with { StatefulSetReplicas = 4, Members = [Voter(0), Voter(1), Voter(2), Learner(3)], Pods = [Pod(0), Pod(1), Pod(2), Pod(3, ready: false)] };
        var status = Compute(observed);

        AssertCondition(status, ConditionTypes.Degraded, "False", ConditionReasons.AsExpected);
        AssertCondition(status, ConditionTypes.Progressing, "True", ConditionReasons.ScalingUp);
        Assert.Equal(ClusterPhase.Scaling, status.Phase);
    }

    [Fact]
    public void A_voter_down_while_a_learner_joins_is_still_reported()
    {
        var observed = Steady(3).WithSpec(5) with
        {
            StatefulSetReplicas = 4,
            Members = [Voter(0), Voter(1, healthy: false), Voter(2), Learner(3)],
            Pods = [Pod(0), Pod(1, ready: false), Pod(2), Pod(3, ready: false)],
        };
        var status = Compute(observed);

        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.MembersNotReady);
        Assert.Equal("not ready or not healthy: demo-1", Condition(status, ConditionTypes.Degraded).Message);
    }

    [Theory]
    [InlineData("scale up", ConditionReasons.ScalingUp, "Scaling")]
    [InlineData("scale down", ConditionReasons.ScalingDown, "Scaling")]
    [InlineData("rolling", ConditionReasons.RollingUpdate, "Updating")]
    [InlineData("lost volume", ConditionReasons.ReplacingMember, "Scaling")]
    public void Work_under_way_shows_as_progressing(string situation, string reason, string phase)
    {
        var observed = situation switch
        {
            "scale up" => Steady(3).WithSpec(5),
            "scale down" => Steady(5).WithSpec(3),
            "rolling" => Steady(3) with { Pods = [Pod(0), Pod(1), Pod(2, upToDate: false)] },
            "lost volume" => Steady(3) with { LostVolumes = new HashSet<int> { 2 }, Members = [Voter(0), Voter(1), Voter(2, healthy: false)] },
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };
        var status = Compute(observed);

        AssertCondition(status, ConditionTypes.Progressing, "True", reason);
        Assert.Equal(Enum.Parse<ClusterPhase>(phase), status.Phase);
    }

    [Fact]
    public void An_invalid_spec_is_degraded_with_the_reason()
    {
        var status = Compute(Steady(3, specReplicas: 4));
        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.InvalidSpec);
        Assert.Contains("must be odd", Condition(status, ConditionTypes.Degraded).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unusable_tls_secrets_are_degraded_with_what_to_fix()
    {
        var status = Compute(Steady(3) with { TlsProblem = "Secret demo-peer-tls (tls.peerSecretName) not found in namespace prod: create it" });
        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.TlsSecretInvalid);
        Assert.Contains("Secret demo-peer-tls (tls.peerSecretName) not found", Condition(status, ConditionTypes.Degraded).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_slow_disk_is_degraded_with_reason_SlowDisk()
    {
        var decision = new TuningDecision(RaftTiming.EtcdDefault, false, "", SlowDisk: true, null, "");
        var status = Compute(Steady(3) with { Tuning = decision, FsyncP99 = TimeSpan.FromMilliseconds(25) });

        AssertCondition(status, ConditionTypes.Degraded, "True", ConditionReasons.SlowDisk);
        Assert.Contains("25ms", Condition(status, ConditionTypes.Degraded).Message, StringComparison.Ordinal);
        AssertCondition(status, ConditionTypes.Available, "True", ConditionReasons.QuorumAvailable);
    }

    [Fact]
    public void Transition_times_move_only_when_a_condition_changes_status()
    {
        var earlier = Now - TimeSpan.FromHours(2);
        var previous = new RaftClusterStatus
        {
            Conditions =
            [
                new V1Condition { Type = ConditionTypes.Available, Status = "True", Reason = ConditionReasons.QuorumAvailable, LastTransitionTime = earlier.UtcDateTime },
                new V1Condition { Type = ConditionTypes.Progressing, Status = "True", Reason = ConditionReasons.ScalingUp, LastTransitionTime = earlier.UtcDateTime },
                new V1Condition { Type = ConditionTypes.Degraded, Status = "False", Reason = ConditionReasons.AsExpected, LastTransitionTime = earlier.UtcDateTime },
            ],
        };
        var status = Compute(Steady(3), previous);

        Assert.Equal(earlier.UtcDateTime, Condition(status, ConditionTypes.Available).LastTransitionTime);
        Assert.Equal(Now.UtcDateTime, Condition(status, ConditionTypes.Progressing).LastTransitionTime);
        Assert.Equal(earlier.UtcDateTime, Condition(status, ConditionTypes.Degraded).LastTransitionTime);
    }

    [Fact]
    public void The_tuning_block_is_kept_when_there_is_no_new_one()
    {
        var previous = new RaftClusterStatus { Tuning = new RaftClusterTuningStatus { HeartbeatInterval = "100ms" } };
        Assert.Equal("100ms", Compute(Steady(3), previous).Tuning!.HeartbeatInterval);
    }

    [Fact]
    public void Every_reason_is_CamelCase()
    {
        var reasons = typeof(ConditionReasons).GetFields().Select(f => (string)f.GetValue(null)!).ToList();
        Assert.NotEmpty(reasons);
        Assert.All(reasons, r => Assert.Matches("^[A-Z][A-Za-z0-9]*$", r));
    }
}
