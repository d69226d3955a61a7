using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Controllers;

/// <summary>CustomResourceDefinitions: checks a CRD's names and versions, marks it NamesAccepted and Established
/// at once, serves its resources from the moment it is stored, and on deletion removes its objects before it goes
/// (finalizer <c>customresourcecleanup.apiextensions.k8s.io</c>).</summary>
internal sealed class CustomResourceDefinitions : IAdmission
{
    public const string CleanupFinalizer = "customresourcecleanup.apiextensions.k8s.io";

    private readonly ResourceService _service;

    public CustomResourceDefinitions(ResourceService service)
    {
        _service = service;
        service.Committed += OnCommitted;
    }

    private static bool IsCrd(ResourceType t) => t is { Group: "apiextensions.k8s.io", Plural: "customresourcedefinitions" };

    public void Admit(AdmissionRequest request)
    {
        if (!IsCrd(request.Type))
        {
            return;
        }

        var crd = request.Object;
        var name = Meta.Name(crd) ?? "";
        var errors = new List<FieldError>();
        var spec = crd["spec"] as JsonObject ?? [];
        var group = Meta.Str(spec["group"]);
        var names = spec["names"] as JsonObject ?? [];
        var plural = Meta.Str(names["plural"]);
        var kind = Meta.Str(names["kind"]);
        if (string.IsNullOrEmpty(group))
        {
            errors.Add(new FieldError("spec.group", "Required value", "FieldValueRequired"));
        }

        if (string.IsNullOrEmpty(plural))
        {
            errors.Add(new FieldError("spec.names.plural", "Required value", "FieldValueRequired"));
        }

        if (string.IsNullOrEmpty(kind))
        {
            errors.Add(new FieldError("spec.names.kind", "Required value", "FieldValueRequired"));
        }

        if (group is not null && plural is not null && name != $"{plural}.{group}")
        {
            errors.Add(new FieldError("metadata.name", $"Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"));
        }

        if (Meta.Str(spec["scope"]) is not ("Namespaced" or "Cluster"))
        {
            errors.Add(new FieldError("spec.scope", "Unsupported value: must be Namespaced or Cluster", "FieldValueNotSupported"));
        }

        var versions = (spec["versions"] as JsonArray ?? []).OfType<JsonObject>().ToList();
        if (versions.Count == 0)
        {
            errors.Add(new FieldError("spec.versions", "Invalid value: must have exactly one version marked as storage version"));
        }
        else if (versions.Count(v => Meta.Bool(v["storage"]) == true) != 1)
        {
            errors.Add(new FieldError("spec.versions", "Invalid value: must have exactly one version marked as storage version"));
        }

        for (var i = 0; i < versions.Count; i++)
        {
            if (versions[i]["schema"]?["openAPIV3Schema"] is not JsonObject)
            {
                errors.Add(new FieldError($"spec.versions[{i}].schema.openAPIV3Schema", "Required value: schemas are required", "FieldValueRequired"));
            }
        }

        if (errors.Count > 0)
        {
            throw ApiException.Invalid(request.Type, name, errors);
        }

        if (request.Operation == "CREATE" && !Meta.Finalizers(crd).Contains(CleanupFinalizer))
        {
            Meta.SetFinalizers(crd, [.. Meta.Finalizers(crd), CleanupFinalizer]);
        }

        var storage = Meta.Str(versions.First(v => Meta.Bool(v["storage"]) == true)["name"])!;
        var stored = (request.OldObject?["status"]?["storedVersions"] as JsonArray ?? []).Select(v => Meta.Str(v)).OfType<string>().ToList();
        if (!stored.Contains(storage))
        {
            stored.Add(storage);
        }

        var now = Meta.Timestamp(_service.Time.GetUtcNow());
        var accepted = (JsonObject)names.DeepClone();
        accepted["singular"] ??= plural!.ToLowerInvariant();
        accepted["listKind"] ??= kind + "List";
        crd["status"] = new JsonObject
        {
            ["acceptedNames"] = accepted,
            ["conditions"] = new JsonArray(
                new JsonObject { ["type"] = "NamesAccepted", ["status"] = "True", ["reason"] = "NoConflicts", ["message"] = "no conflicts found", ["lastTransitionTime"] = now },
                new JsonObject { ["type"] = "Established", ["status"] = "True", ["reason"] = "InitialNamesAccepted", ["message"] = "the initial names have been accepted", ["lastTransitionTime"] = now }),
            ["storedVersions"] = new JsonArray(stored.Select(v => (JsonNode?)v).ToArray()),
        };
    }

    private void OnCommitted(ResourceType type, JsonObject obj, bool deleted)
    {
        if (!IsCrd(type))
        {
            return;
        }

        var name = Meta.Name(obj)!;
        _service.Registry.SetCustom(name, deleted ? [] : TypesOf(obj));
    }

    /// <summary>The resource types (one per served version) a CRD defines.</summary>
    public static IReadOnlyList<ResourceType> TypesOf(JsonObject crd)
    {
        var name = Meta.Name(crd)!;
        var spec = crd["spec"]!;
        var names = spec["names"]!;
        var group = Meta.Str(spec["group"])!;
        var plural = Meta.Str(names["plural"])!;
        var kind = Meta.Str(names["kind"])!;
        var result = new List<ResourceType>();
        foreach (var v in (spec["versions"] as JsonArray ?? []).OfType<JsonObject>())
        {
            if (Meta.Bool(v["served"]) == false)
            {
                continue;
            }

            var scale = v["subresources"]?["scale"] is JsonObject s
                ? new ScaleSubresource(Meta.Str(s["specReplicasPath"]) ?? ".spec.replicas", Meta.Str(s["statusReplicasPath"]) ?? ".status.replicas", Meta.Str(s["labelSelectorPath"]))
                : null;
            var columns = (v["additionalPrinterColumns"] as JsonArray ?? []).OfType<JsonObject>().Select(c => new PrinterColumn(
                Meta.Str(c["name"]) ?? "",
                Meta.Str(c["type"]) ?? "string",
                Meta.Str(c["jsonPath"]) ?? "",
                Meta.Int(c["priority"]) ?? 0,
                Meta.Str(c["description"]) ?? "",
                Meta.Str(c["format"]) ?? "")).ToList();
            result.Add(new ResourceType(group, Meta.Str(v["name"])!, kind, plural, Meta.Str(names["singular"]) ?? plural.ToLowerInvariant(), Meta.Str(spec["scope"]) != "Cluster")
            {
                ShortNames = (names["shortNames"] as JsonArray ?? []).Select(x => Meta.Str(x)).OfType<string>().ToList(),
                Categories = (names["categories"] as JsonArray ?? []).Select(x => Meta.Str(x)).OfType<string>().ToList(),
                HasStatus = v["subresources"]?["status"] is JsonObject,
                Scale = scale,
                Columns = columns,
                DefinedBy = name,
                Schema = v["schema"]?["openAPIV3Schema"]?.DeepClone() as JsonObject,
                TracksGeneration = true,
            });
        }

        return result;
    }

    /// <summary>Removes the objects of CRDs being deleted, then their cleanup finalizer.</summary>
    internal sealed class Cleanup(ResourceService service, ILogger logger) : ControllerLoop(service.Store, logger, TimeSpan.FromSeconds(1))
    {
        protected override string Name => "crd-cleanup";

        protected override void Reconcile()
        {
            var crdType = service.Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
            foreach (var crd in service.Store.List(crdType.StorageKey, null))
            {
                if (!Meta.IsDeleting(crd.Object) || !Meta.Finalizers(crd.Object).Contains(CleanupFinalizer))
                {
                    continue;
                }

                var types = TypesOf(crd.Object);
                var remaining = 0;
                if (types.Count > 0)
                {
                    foreach (var o in service.Store.List(types[0].StorageKey, null))
                    {
                        remaining++;
                        if (!Meta.IsDeleting(o.Object))
                        {
                            try
                            {
                                service.Delete(types[0], o.Namespace, o.Name, new DeleteOptions());
                            }
                            catch (ApiException e) when (e.Code is 404 or 409)
                            {
                                // Gone or changed meanwhile; the next pass looks again.
                            }
                        }
                    }
                }

                if (remaining == 0)
                {
                    var obj = (JsonObject)crd.Object.DeepClone();
                    Meta.SetFinalizers(obj, Meta.Finalizers(obj).Where(f => f != CleanupFinalizer));
                    try
                    {
                        service.Update(crdType, null, crd.Name, obj, new WriteOptions());
                    }
                    catch (ApiException e) when (e.Code is 404 or 409)
                    {
                        // Retried on the next pass.
                    }
                }
            }
        }
    }
}
