using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Planning;

namespace RaftKv.Operator.Controllers;

/// <summary>
/// Reads from a pod's status why it cannot run, in the words Kubernetes uses: the scheduler's
/// <c>PodScheduled=False/Unschedulable</c> condition, and the kubelet's waiting reasons of its containers.
/// A pod that is merely starting (ContainerCreating, PodInitializing, not yet scheduled) has no problem.
/// </summary>
internal static class PodProblems
{
    private static readonly HashSet<string> ImageReasons = new(StringComparer.Ordinal)
    {
        "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "ImageInspectError", "RegistryUnavailable",
    };

    private static readonly HashSet<string> CannotRunReasons = new(StringComparer.Ordinal)
    {
        "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "ContainerCannotRun",
    };

    /// <summary>
    /// raftkv in this pod exited (now or last time) because its data dir was lost: it found no WAL while the cluster lists it
    /// as started, and refused to rejoin (<see cref="RaftKvExitCodes.DataDirLost"/>). Its member must be removed and re-added.
    /// </summary>
    public static bool LostItsData(V1Pod pod) =>
        pod.Metadata?.DeletionTimestamp is null
        && (pod.Status?.ContainerStatuses ?? []).Any(c =>
            c.State?.Terminated?.ExitCode == RaftKvExitCodes.DataDirLost || c.LastState?.Terminated?.ExitCode == RaftKvExitCodes.DataDirLost);

    public static PodProblem? Of(V1Pod pod)
    {
        if (pod.Metadata?.DeletionTimestamp is not null || pod.Status is not { } status)
        {
            return null;
        }

        var scheduled = status.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
        if (scheduled is { Status: "False", Reason: "Unschedulable" })
        {
            var message = scheduled.Message ?? "no node fits the pod";
            // The scheduler's volume binding names a missing class: storageclass.storage.k8s.io "x" not found.
            var storageClass = message.Contains("storageclass", StringComparison.OrdinalIgnoreCase)
                && message.Contains("not found", StringComparison.OrdinalIgnoreCase);
            return storageClass
                ? new PodProblem(ConditionReasons.StorageClassNotFound, $"{message} (create the StorageClass, or recreate the RaftCluster naming one that exists)")
                : new PodProblem(ConditionReasons.Unschedulable, message);
        }

        foreach (var container in (status.InitContainerStatuses ?? []).Concat(status.ContainerStatuses ?? []))
        {
            if (container.State?.Waiting is not { Reason: { } reason } waiting)
            {
                continue;
            }

            var detail = string.IsNullOrEmpty(waiting.Message) ? reason : $"{reason}: {waiting.Message}";
            if (ImageReasons.Contains(reason))
            {
                return new PodProblem(ConditionReasons.ImagePullFailed,
                    $"container {container.Name} image {container.Image} cannot be pulled ({detail}); check spec.version or spec.image");
            }

            if (reason == "CrashLoopBackOff" && container.LastState?.Terminated?.ExitCode == RaftKvExitCodes.DataInconsistent)
            {
                // Not cleared by the operator on its own: deleting a volume is left to a person who read the member's log.
                var name = pod.Metadata?.Name;
                return new PodProblem(ConditionReasons.DataInconsistent,
                    $"{name} refused to start: its store differs from its peers' (raftkv exit code {RaftKvExitCodes.DataInconsistent}, " +
                    $"'found data inconsistency with peers'; see kubectl logs {name} -c {container.Name}). Clear its volume and the member is " +
                    $"replaced: kubectl delete pvc {Builders.ClusterObjectBuilder.DataVolume}-{name} --wait=false && kubectl delete pod {name}");
            }

            if (reason == "CrashLoopBackOff")
            {
                return new PodProblem(ConditionReasons.CrashLoopBackOff,
                    $"container {container.Name} keeps exiting (restarted {container.RestartCount} time(s); {detail}); see kubectl logs {pod.Metadata?.Name} -c {container.Name}");
            }

            if (CannotRunReasons.Contains(reason))
            {
                return new PodProblem(ConditionReasons.ContainerCannotRun, $"container {container.Name} cannot run ({detail})");
            }
        }

        return null;
    }
}
