using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Controllers;

/// <summary>Namespaces: a terminating namespace has every object in it deleted (finalizers honoured), then its
/// <c>kubernetes</c> finalizer removed, and goes. Active namespaces get their <c>default</c> ServiceAccount.</summary>
internal sealed class NamespaceController(ResourceService service, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(1))
{
    protected override string Name => "namespace";

    protected override void Reconcile()
    {
        var nsType = service.Registry.Find("", "v1", "namespaces")!;
        var saType = service.Registry.Find("", "v1", "serviceaccounts")!;
        var namespaces = service.Store.List(nsType.StorageKey, null);
        var all = service.Store.ListAll();
        foreach (var ns in namespaces)
        {
            try
            {
                if (!Meta.IsDeleting(ns.Object))
                {
                    if (service.Store.Get(saType.StorageKey, ns.Name, "default") is null)
                    {
                        service.Create(saType, ns.Name, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "default" } }, new WriteOptions());
                    }

                    continue;
                }

                var remaining = all.Where(o => o.Namespace == ns.Name).ToList();
                foreach (var o in remaining.Where(o => !Meta.IsDeleting(o.Object)))
                {
                    var type = service.Registry.FindByStorageKey(o.Resource);
                    if (type is not null)
                    {
                        service.Delete(type, o.Namespace, o.Name, new DeleteOptions("Background"));
                    }
                }

                if (remaining.Count == 0)
                {
                    var obj = (JsonObject)ns.Object.DeepClone();
                    obj["spec"] = new JsonObject { ["finalizers"] = new JsonArray() };
                    service.Update(nsType, null, ns.Name, obj, new WriteOptions());
                }
            }
            catch (ApiException e) when (e.Code is 404 or 409 or 403)
            {
                // Changed meanwhile (or created into a namespace going away); the next pass looks again.
            }
        }
    }
}
