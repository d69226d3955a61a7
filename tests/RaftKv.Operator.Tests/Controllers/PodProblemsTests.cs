using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Controllers;

namespace RaftKv.Operator.Tests.Controllers;

public sealed class PodProblemsTests
{
    private static V1Pod Pod(V1PodCondition? scheduled = null, V1ContainerStateWaiting? waiting = null, int restarts = 0) => new()
    {
        Metadata = new V1ObjectMeta { Name = "demo-3" },
        Status = new V1PodStatus
        {
            Phase = "Pending",
            Conditions = scheduled is null ? [] : [scheduled],
            ContainerStatuses = waiting is null
                ? null
                : [new V1ContainerStatus { Name = "raftkv", Image = "ghcr.io/raftkv/raftkv:9.9", RestartCount = restarts, State = new V1ContainerState { Waiting = waiting } }],
        },
    };

    [Theory]
    [InlineData("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.", ConditionReasons.Unschedulable)]
    [InlineData("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", ConditionReasons.Unschedulable)]
    [InlineData("0/3 nodes are available: storageclass.storage.k8s.io \"nvme\" not found.", ConditionReasons.StorageClassNotFound)]
    public void An_unschedulable_pod_gets_the_schedulers_words(string message, string reason)
    {
        var problem = PodProblems.Of(Pod(new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable", Message = message }));
        Assert.NotNull(problem);
        Assert.Equal(reason, problem.Reason);
        Assert.StartsWith(message, problem.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3, true, "last")]
    [InlineData(3, true, "now")]
    [InlineData(1, false, "last")]
    [InlineData(0, false, "now")]
    public void Raftkv_refusing_to_rejoin_without_its_data_marks_the_pod_as_lost(int exitCode, bool lost, string when)
    {
        var terminated = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = exitCode } };
        var pod = Pod();
        pod.Status.ContainerStatuses =
        [
            new V1ContainerStatus
            {
                Name = "raftkv", Image = "ghcr.io/raftkv/raftkv:9.9", RestartCount = 2,
                State = when == "now" ? terminated : new V1ContainerState { Waiting = new V1ContainerStateWaiting { Reason = "CrashLoopBackOff" } },
                LastState = when == "last" ? terminated : null,
            },
        ];
        Assert.Equal(lost, PodProblems.LostItsData(pod));
    }

    [Fact]
    public void Raftkv_refusing_a_store_that_differs_from_its_peers_says_to_clear_the_volume()
    {
        var pod = Pod(new V1PodCondition { Type = "PodScheduled", Status = "True" }, new V1ContainerStateWaiting { Reason = "CrashLoopBackOff" }, restarts: 3);
        pod.Status.ContainerStatuses[0].LastState = new V1ContainerState { Terminated = new V1ContainerStateTerminated { ExitCode = RaftKvExitCodes.DataInconsistent } };
        var problem = PodProblems.Of(pod);
        Assert.NotNull(problem);
        Assert.Equal(ConditionReasons.DataInconsistent, problem.Reason);
        Assert.Contains("found data inconsistency with peers", problem.Message, StringComparison.Ordinal);
        Assert.Contains($"kubectl delete pvc data-{pod.Metadata.Name} --wait=false && kubectl delete pod {pod.Metadata.Name}", problem.Message, StringComparison.Ordinal);
        Assert.False(PodProblems.LostItsData(pod)); // the operator does not replace it (and so clear its data) on its own
    }

    [Theory]
    [InlineData("ErrImagePull", ConditionReasons.ImagePullFailed)]
    [InlineData("ImagePullBackOff", ConditionReasons.ImagePullFailed)]
    [InlineData("InvalidImageName", ConditionReasons.ImagePullFailed)]
    [InlineData("CrashLoopBackOff", ConditionReasons.CrashLoopBackOff)]
    [InlineData("CreateContainerConfigError", ConditionReasons.ContainerCannotRun)]
    [InlineData("RunContainerError", ConditionReasons.ContainerCannotRun)]
    public void A_container_that_cannot_start_gets_a_reason(string waitingReason, string reason)
    {
        var problem = PodProblems.Of(Pod(
            new V1PodCondition { Type = "PodScheduled", Status = "True" },
            new V1ContainerStateWaiting { Reason = waitingReason, Message = "details" }, restarts: 4));
        Assert.NotNull(problem);
        Assert.Equal(reason, problem.Reason);
        Assert.Contains(waitingReason, problem.Message, StringComparison.Ordinal);
        Assert.Contains("raftkv", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_starting_or_running_or_deleted_pod_has_no_problem()
    {
        Assert.Null(PodProblems.Of(Pod()));
        Assert.Null(PodProblems.Of(Pod(new V1PodCondition { Type = "PodScheduled", Status = "True" }, new V1ContainerStateWaiting { Reason = "ContainerCreating" })));
        Assert.Null(PodProblems.Of(Pod(new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "SchedulingGated" })));
        var deleting = Pod(new V1PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable", Message = "0/3" });
        deleting.Metadata.DeletionTimestamp = DateTime.UnixEpoch;
        Assert.Null(PodProblems.Of(deleting));
    }
}
