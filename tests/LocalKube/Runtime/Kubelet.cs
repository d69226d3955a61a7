using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Controllers;

namespace LocalKube.Runtime;

/// <summary>The kubelet of all simulated nodes: runs each scheduled pod's containers as local processes (one
/// <see cref="PodWorker"/> per pod), and publishes pod and service names in the hosts file. A pod deleted with a
/// grace period is stopped by its worker (SIGTERM, then SIGKILL after the grace period) and then removed.</summary>
internal sealed partial class Kubelet(ResourceService service, RuntimeOptions options, PodNetwork network, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(1))
{
    private readonly ConcurrentDictionary<string, PodWorker> _workers = new(StringComparer.Ordinal);

    protected override string Name => "kubelet";

    public RuntimeOptions Options => options;

    public PodNetwork Network => network;

    public ResourceService Service => service;

    /// <summary>True when a pod deletion must wait for the kubelet to stop the pod's processes.</summary>
    public bool NeedsGracefulDeletion(ResourceType type, JsonObject pod, DeleteOptions deleteOptions)
    {
        if (type is not { Group: "", Plural: "pods" } || Meta.Str(pod["spec"]?["nodeName"]) is not { Length: > 0 })
        {
            return false;
        }

        var grace = deleteOptions.GracePeriodSeconds ?? Meta.Long(pod["spec"]?["terminationGracePeriodSeconds"]) ?? 30;
        return grace > 0 && _workers.ContainsKey(Meta.Uid(pod) ?? "");
    }

    protected override void Reconcile()
    {
        var podType = service.Registry.Find("", "v1", "pods")!;
        var pods = service.Store.List(podType.StorageKey, null).Select(p => p.Object).ToList();
        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var pod in pods)
        {
            var uid = Meta.Uid(pod)!;
            live.Add(uid);
            if (Meta.Str(pod["spec"]?["nodeName"]) is not { Length: > 0 })
            {
                continue;
            }

            var worker = _workers.GetOrAdd(uid, _ => PodWorker.Start(this, Meta.Namespace(pod)!, Meta.Name(pod)!, uid));
            worker.Wake();
        }

        foreach (var (uid, worker) in _workers)
        {
            if (!live.Contains(uid))
            {
                // Deleted without grace (or by force): stop at once.
                worker.Stop();
            }

            if (worker.Finished && _workers.TryRemove(uid, out _))
            {
                worker.Dispose();
            }
        }

        PublishNames(pods);
        ReclaimVolumes(pods);
    }

    /// <summary>
    /// A claim's volume is the directory volumes/NAMESPACE/CLAIM; once the claim is deleted and no pod names it, the
    /// directory goes (a dynamically provisioned volume's reclaim policy is Delete), so a new claim of the same name
    /// starts empty, as on a real cluster.
    /// </summary>
    private void ReclaimVolumes(List<JsonObject> pods)
    {
        var root = Path.Combine(options.Root, "volumes");
        if (!Directory.Exists(root))
        {
            return;
        }

        var pvcType = service.Registry.Find("", "v1", "persistentvolumeclaims")!;
        var claims = service.Store.List(pvcType.StorageKey, null).Select(c => (c.Namespace, c.Name)).ToHashSet();
        var used = pods
            .SelectMany(p => (p["spec"]?["volumes"] as JsonArray ?? []).OfType<JsonObject>()
                .Select(v => (Meta.Namespace(p), Meta.Str(v["persistentVolumeClaim"]?["claimName"]))))
            .Where(x => x.Item2 is not null)
            .ToHashSet();
        foreach (var nsDir in Directory.EnumerateDirectories(root))
        {
            var ns = Path.GetFileName(nsDir);
            foreach (var claimDir in Directory.EnumerateDirectories(nsDir))
            {
                var claim = Path.GetFileName(claimDir);
                if (claims.Contains((ns, claim)) || used.Contains((ns, claim)))
                {
                    continue;
                }

                try
                {
                    Directory.Delete(claimDir, recursive: true);
                    LogVolumeReclaimed(Logger, ns, claim);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Retried on the next pass.
                }
            }
        }
    }

    private void PublishNames(List<JsonObject> pods)
    {
        var entries = new List<(string, string)>();
        foreach (var pod in pods.Where(p => Meta.Str(p["spec"]?["nodeName"]) is { Length: > 0 }))
        {
            var ns = Meta.Namespace(pod)!;
            var ip = network.AddressOf(ns, Meta.Name(pod)!);
            var host = Meta.Str(pod["spec"]?["hostname"]) ?? Meta.Name(pod)!;
            if (Meta.Str(pod["spec"]?["subdomain"]) is { Length: > 0 } sub)
            {
                entries.Add((ip, $"{host}.{sub}.{ns}.svc.cluster.local"));
                entries.Add((ip, $"{host}.{sub}.{ns}.svc"));
                entries.Add((ip, $"{host}.{sub}.{ns}"));
            }

            entries.Add((ip, $"{ip.Replace('.', '-')}.{ns}.pod.cluster.local"));
        }

        var svcType = service.Registry.Find("", "v1", "services")!;
        foreach (var svc in service.Store.List(svcType.StorageKey, null))
        {
            if (Meta.Str(svc.Object["spec"]?["clusterIP"]) is { Length: > 0 } ip && ip != "None")
            {
                entries.Add((ip, $"{svc.Name}.{svc.Namespace}.svc.cluster.local"));
                entries.Add((ip, $"{svc.Name}.{svc.Namespace}.svc"));
            }
        }

        network.Publish(entries);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "volume of deleted claim {Namespace}/{Claim} removed")]
    private static partial void LogVolumeReclaimed(ILogger logger, string @namespace, string claim);

    /// <summary>Stops every pod's processes (when the control plane shuts down).</summary>
    public async Task StopAllAsync()
    {
        foreach (var worker in _workers.Values)
        {
            worker.Stop();
        }

        foreach (var worker in _workers.Values)
        {
            await worker.Completion;
            worker.Dispose();
        }

        _workers.Clear();
    }
}
