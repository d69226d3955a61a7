using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;
using static RaftKv.Operator.Tests.Planning.States;

namespace RaftKv.Operator.Tests.Planning;

/// <summary>
/// Pods that cannot run (unschedulable, missing StorageClass, image not pulled, crash loop) never leave the
/// plan waiting in silence: the step names the reason (which Degraded carries), scaling back cancels a stuck
/// learner, and a corrected template replaces a stuck pod, since a pod that never ran holds nothing.
/// </summary>
public sealed class StuckPodTests
{
    private static readonly PodProblem Unschedulable = new(ConditionReasons.Unschedulable, "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
    private static readonly PodProblem BadImage = new(ConditionReasons.ImagePullFailed, "container raftkv image raftkv:9.9 cannot be pulled (ErrImagePull)");
    private static readonly PodProblem NoClass = new(ConditionReasons.StorageClassNotFound, "storageclass.storage.k8s.io \"nvme\" not found");
    private static readonly PodProblem Crashing = new(ConditionReasons.CrashLoopBackOff, "container raftkv keeps exiting");

    /// <summary>3 voters, spec 5: learner demo-3 added, its pod created but stuck with <paramref name="problem"/>.</summary>
    private static ObservedCluster StuckLearner(PodProblem problem, bool upToDate = true) => Steady(3).WithSpec(5) with
    {
        StatefulSetReplicas = 4,
        Members = [Voter(0), Voter(1), Voter(2), Learner(3)],
        Pods = [Pod(0), Pod(1), Pod(2), new ObservedPod(3, Ready: false, upToDate, problem)],
    };

    private static string Plan(ObservedCluster state) => ReconcilePlannerTests.Summary(ReconcilePlanner.Plan(state, Names));

    public static TheoryData<string, string> Steps => new()
    {
        // situation → the one next step
        { "learner pod unschedulable", "Wait Unschedulable" },
        { "learner pod with a missing storage class", "Wait StorageClassNotFound" },
        { "learner pod image not pulled", "Wait ImagePullFailed" },
        { "learner pod image not pulled, template corrected since", "RollPod demo-3" },
        { "learner pod unschedulable, scaled back to 3", "RemoveMember demo-3" },
        { "learner removed after scale-back, its pod still there", "ScaleStatefulSet 3" },
        { "learner pod unschedulable, scaled back to 3, leader elsewhere", "RemoveMember demo-3" },
        { "learner 4 stuck after 3 joined, scaled back to 3", "RemoveMember demo-4" },
        { "learner 4 removed, its pod still there", "ScaleStatefulSet 4" },
        { "learner 4 gone, voter 3 leads", "TransferLeadership demo-3->demo-0" },
        { "bootstrap pod unschedulable", "Wait Unschedulable" },
        { "bootstrap pod image not pulled, version corrected", "RollPod demo-2" },
        { "voter pod crash-looping", "Wait CrashLoopBackOff" },
        { "rolled pod image not pulled, version corrected", "RollPod demo-2" },
        { "rolled pod image not pulled, member still healthy", "Wait RollingUpdate" },
    };

    [Theory]
    [MemberData(nameof(Steps))]
    public void A_stuck_pod_gets_a_step_that_names_it_or_replaces_it(string situation, string expected)
    {
        var state = situation switch
        {
            "learner pod unschedulable" => StuckLearner(Unschedulable),
            "learner pod with a missing storage class" => StuckLearner(NoClass),
            "learner pod image not pulled" => StuckLearner(BadImage),
            "learner pod image not pulled, template corrected since" => StuckLearner(BadImage, upToDate: false),
            "learner pod unschedulable, scaled back to 3" => StuckLearner(Unschedulable).WithSpec(3),
            "learner removed after scale-back, its pod still there" => StuckLearner(Unschedulable).WithSpec(3) with { Members = [Voter(0), Voter(1), Voter(2)] },
            "learner pod unschedulable, scaled back to 3, leader elsewhere" => StuckLearner(Unschedulable).WithSpec(3) with { LeaderId = Id(2) },
            "learner 4 stuck after 3 joined, scaled back to 3" => Steady(4).WithSpec(3) with
            {
                StatefulSetReplicas = 5,
                LeaderId = Id(3),
                Members = [Voter(0), Voter(1), Voter(2), Voter(3), Learner(4)],
                Pods = [Pod(0), Pod(1), Pod(2), Pod(3), new ObservedPod(4, false, true, Unschedulable)],
            },
            "learner 4 removed, its pod still there" => Steady(4).WithSpec(3) with
            {
                StatefulSetReplicas = 5,
                LeaderId = Id(3),
                Pods = [Pod(0), Pod(1), Pod(2), Pod(3), new ObservedPod(4, false, true, Unschedulable)],
            },
            "learner 4 gone, voter 3 leads" => Steady(4).WithSpec(3) with { LeaderId = Id(3) },
            "bootstrap pod unschedulable" => Bootstrapping(new ObservedPod(2, false, true, Unschedulable)),
            "bootstrap pod image not pulled, version corrected" => Bootstrapping(new ObservedPod(2, false, false, BadImage)),
            "voter pod crash-looping" => Steady(3) with
            {
                Members = [Voter(0), Voter(1), Voter(2, healthy: false)],
                Pods = [Pod(0), Pod(1), new ObservedPod(2, false, true, Crashing)],
            },
            "rolled pod image not pulled, version corrected" => Steady(3) with
            {
                Members = [Voter(0), Voter(1), Voter(2, healthy: false)],
                Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false), new ObservedPod(2, false, false, BadImage)],
            },
            "rolled pod image not pulled, member still healthy" => Steady(3) with
            {
                Pods = [Pod(0, upToDate: false), Pod(1, upToDate: false), new ObservedPod(2, false, false, BadImage)],
            },
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };

        var step = ReconcilePlanner.Plan(state, Names);
        var summary = step is Wait wait ? $"Wait {wait.Reason}" : Plan(state);
        Assert.True(expected == summary, $"{situation}: expected {expected}, planned {step}");
    }

    [Fact]
    public void A_stuck_learners_wait_says_why_and_how_to_cancel()
    {
        var wait = Assert.IsType<Wait>(ReconcilePlanner.Plan(StuckLearner(Unschedulable), Names));
        Assert.Contains("learner demo-3 cannot start", wait.Message, StringComparison.Ordinal);
        Assert.Contains("anti-affinity", wait.Message, StringComparison.Ordinal);
        Assert.Contains("spec.replicas back to 3", wait.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Status_of_a_stuck_learner_is_degraded_with_the_pods_reason_and_still_scaling_up()
    {
        var state = StuckLearner(Unschedulable);
        var status = StatusComputer.Compute(state, ReconcilePlanner.Plan(state, Names), Names, previous: null, tuning: null, DateTimeOffset.UnixEpoch);

        var degraded = status.Conditions!.Single(c => c.Type == ConditionTypes.Degraded);
        Assert.True(degraded is { Status: "True", Reason: ConditionReasons.Unschedulable }, $"{degraded.Status}/{degraded.Reason}: {degraded.Message}");
        Assert.StartsWith("demo-3: 0/3 nodes are available", degraded.Message, StringComparison.Ordinal);
        var progressing = status.Conditions!.Single(c => c.Type == ConditionTypes.Progressing);
        Assert.True(progressing is { Status: "True", Reason: ConditionReasons.ScalingUp }, $"{progressing.Status}/{progressing.Reason}: {progressing.Message}");
        Assert.True(status.Conditions!.Single(c => c.Type == ConditionTypes.Available).Status == "True", "3 healthy voters keep the cluster available");
    }

    [Fact]
    public void Status_of_a_bootstrap_with_a_bad_image_is_degraded_with_ImagePullFailed()
    {
        var state = Bootstrapping(new ObservedPod(2, false, true, BadImage));
        var status = StatusComputer.Compute(state, ReconcilePlanner.Plan(state, Names), Names, previous: null, tuning: null, DateTimeOffset.UnixEpoch);

        var degraded = status.Conditions!.Single(c => c.Type == ConditionTypes.Degraded);
        Assert.True(degraded is { Status: "True", Reason: ConditionReasons.ImagePullFailed }, $"{degraded.Status}/{degraded.Reason}: {degraded.Message}");
        Assert.Equal(ConditionReasons.Bootstrapping, status.Conditions!.Single(c => c.Type == ConditionTypes.Progressing).Reason);
    }

    [Fact]
    public void Once_the_stuck_learner_is_gone_nothing_is_degraded()
    {
        var state = Steady(3);
        var status = StatusComputer.Compute(state, ReconcilePlanner.Plan(state, Names), Names, previous: null, tuning: null, DateTimeOffset.UnixEpoch);
        Assert.Equal("False", status.Conditions!.Single(c => c.Type == ConditionTypes.Degraded).Status);
    }

    /// <summary>3 initial members, no leader yet; pod 2 is <paramref name="stuck"/>.</summary>
    private static ObservedCluster Bootstrapping(ObservedPod stuck) => new()
    {
        Name = "demo",
        Spec = new RaftClusterSpec { Replicas = 3 },
        StatefulSetReplicas = 3,
        Pods = [Pod(0, ready: false), Pod(1, ready: false), stuck],
    };
}
