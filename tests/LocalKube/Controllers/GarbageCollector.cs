using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Storage;

namespace LocalKube.Controllers;

/// <summary>Owner-reference garbage collection. A dependent whose owners are all gone is deleted (background
/// propagation); dangling references beside a live owner are dropped. An owner deleted in the foreground
/// (<c>foregroundDeletion</c> finalizer) has its dependents deleted first and goes when none remain; an owner
/// deleted with <c>orphan</c> has its references removed from its dependents, then goes.</summary>
internal sealed class GarbageCollector(ResourceService service, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(2))
{
    protected override string Name => "garbage-collector";

    protected override void Reconcile()
    {
        var all = service.Store.ListAll();
        var byUid = new Dictionary<string, StoredObject>(StringComparer.Ordinal);
        foreach (var o in all)
        {
            if (Meta.Uid(o.Object) is { } uid)
            {
                byUid[uid] = o;
            }
        }

        var dependentsOf = new Dictionary<string, List<StoredObject>>(StringComparer.Ordinal);
        foreach (var o in all)
        {
            var refs = Meta.OwnerReferences(o.Object).ToList();
            if (refs.Count == 0)
            {
                continue;
            }

            foreach (var r in refs)
            {
                var uid = Meta.Str(r["uid"]) ?? "";
                if (!dependentsOf.TryGetValue(uid, out var list))
                {
                    dependentsOf[uid] = list = [];
                }

                list.Add(o);
            }

            HandleDependent(o, refs, byUid);
        }

        foreach (var o in all)
        {
            if (!Meta.IsDeleting(o.Object))
            {
                continue;
            }

            var finalizers = Meta.Finalizers(o.Object);
            var dependents = dependentsOf.GetValueOrDefault(Meta.Uid(o.Object) ?? "", []);
            if (finalizers.Contains(ResourceService.OrphanFinalizer) && dependents.Count == 0)
            {
                RemoveFinalizer(o, ResourceService.OrphanFinalizer);
            }
            else if (finalizers.Contains(ResourceService.ForegroundFinalizer) && dependents.Count == 0)
            {
                RemoveFinalizer(o, ResourceService.ForegroundFinalizer);
            }
        }
    }

    private void HandleDependent(StoredObject o, List<JsonObject> refs, Dictionary<string, StoredObject> byUid)
    {
        var live = new List<JsonObject>();
        var orphaning = new List<JsonObject>();
        var foreground = false;
        foreach (var r in refs)
        {
            if (byUid.TryGetValue(Meta.Str(r["uid"]) ?? "", out var owner) && Meta.Str(owner.Object["kind"]) == Meta.Str(r["kind"])
                && (owner.Namespace is null || owner.Namespace == o.Namespace))
            {
                var ownerFinalizers = Meta.Finalizers(owner.Object);
                if (Meta.IsDeleting(owner.Object) && ownerFinalizers.Contains(ResourceService.OrphanFinalizer))
                {
                    orphaning.Add(r);
                    continue;
                }

                if (Meta.IsDeleting(owner.Object) && ownerFinalizers.Contains(ResourceService.ForegroundFinalizer))
                {
                    foreground = true;
                }

                live.Add(r);
            }
        }

        var type = service.Registry.FindByStorageKey(o.Resource);
        if (type is null)
        {
            return;
        }

        try
        {
            if (live.Count == 0 && orphaning.Count == 0)
            {
                if (!Meta.IsDeleting(o.Object))
                {
                    service.Delete(type, o.Namespace, o.Name, new DeleteOptions("Background"));
                }
            }
            else if (foreground && live.Count > 0 && live.All(r => IsForegroundDeleting(r, byUid)))
            {
                if (!Meta.IsDeleting(o.Object))
                {
                    service.Delete(type, o.Namespace, o.Name, new DeleteOptions("Foreground"));
                }
            }
            else if (live.Count + orphaning.Count < refs.Count || orphaning.Count > 0)
            {
                var obj = (JsonObject)o.Object.DeepClone();
                Meta.Of(obj)["ownerReferences"] = new JsonArray(live.Select(r => (JsonNode?)r.DeepClone()).ToArray());
                if (live.Count == 0)
                {
                    Meta.Of(obj).Remove("ownerReferences");
                }

                service.Update(type, o.Namespace, o.Name, obj, new WriteOptions(FieldManager: "garbage-collector"));
            }
        }
        catch (ApiException e) when (e.Code is 404 or 409)
        {
            // Changed meanwhile; the next pass sees the new state.
        }
    }

    private static bool IsForegroundDeleting(JsonObject r, Dictionary<string, StoredObject> byUid) =>
        byUid.TryGetValue(Meta.Str(r["uid"]) ?? "", out var owner) && Meta.IsDeleting(owner.Object)
        && Meta.Finalizers(owner.Object).Contains(ResourceService.ForegroundFinalizer);

    private void RemoveFinalizer(StoredObject o, string finalizer)
    {
        var type = service.Registry.FindByStorageKey(o.Resource);
        if (type is null)
        {
            return;
        }

        var obj = (JsonObject)o.Object.DeepClone();
        Meta.SetFinalizers(obj, Meta.Finalizers(obj).Where(f => f != finalizer));
        try
        {
            service.Update(type, o.Namespace, o.Name, obj, new WriteOptions());
        }
        catch (ApiException e) when (e.Code is 404 or 409)
        {
            // Retried on the next pass.
        }
    }
}
