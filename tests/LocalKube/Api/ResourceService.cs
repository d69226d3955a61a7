using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube.Storage;

namespace LocalKube.Api;

/// <summary>Options of create, update and patch requests.</summary>
internal sealed record WriteOptions(bool DryRun = false, string? FieldManager = null, string? FieldValidation = null, bool Force = false);

/// <summary>Options of delete requests (query parameters and the DeleteOptions body together).</summary>
internal sealed record DeleteOptions(string? PropagationPolicy = null, long? GracePeriodSeconds = null, string? PreconditionUid = null, string? PreconditionResourceVersion = null, bool DryRun = false);

/// <summary>What admission plugins see: the object about to be stored and, on updates, the stored one.</summary>
internal sealed record AdmissionRequest(ResourceType Type, string Operation, JsonObject Object, JsonObject? OldObject, string? Subresource, string? FieldValidation = null);

/// <summary>Defaulting and validation that run before every create and update (built-in defaults, CRD schemas).</summary>
internal interface IAdmission
{
    /// <summary>May change <see cref="AdmissionRequest.Object"/>; throws <see cref="ApiException"/> to reject.</summary>
    void Admit(AdmissionRequest request);
}

/// <summary>One page of a list.</summary>
internal sealed record ListResult(IReadOnlyList<JsonObject> Items, long Revision, string? Continue);

/// <summary>The API semantics over the store: names, uids, timestamps, generation, optimistic concurrency,
/// subresources, patches, server-side apply, dry-run, finalizers and graceful deletion. Writes are serialized by
/// one lock, so a read-modify-write (patch, apply, scale) never loses a concurrent write.</summary>
internal sealed class ResourceService(IObjectStore store, ResourceRegistry registry, TimeProvider time, Random random)
{
    private readonly Lock _writeLock = new();
    private readonly List<IAdmission> _admissions = [];

    public const string NamespaceFinalizer = "kubernetes";
    public const string OrphanFinalizer = "orphan";
    public const string ForegroundFinalizer = "foregroundDeletion";

    public IObjectStore Store => store;

    public ResourceRegistry Registry => registry;

    public TimeProvider Time => time;

    public void AddAdmission(IAdmission admission) => _admissions.Add(admission);

    /// <summary>Called under the write lock after each stored change, with the object as stored (for a completed
    /// deletion: its last state and <c>deleted</c> true). Used to register the resources of CRDs at once.</summary>
    public event Action<ResourceType, JsonObject, bool>? Committed;

    private JsonObject Commit(ResourceType type, StoredObject stored, bool deleted)
    {
        var presented = Present(type, stored.Object);
        Committed?.Invoke(type, presented, deleted);
        return presented;
    }

    private string Now() => Meta.Timestamp(time.GetUtcNow());

    private static JsonObject Present(ResourceType type, JsonObject obj)
    {
        // Objects of every version share storage (conversion "None"); the reader's version is what it sees.
        var result = new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind };
        foreach (var (k, v) in obj)
        {
            if (k is not "apiVersion" and not "kind")
            {
                result[k] = v?.DeepClone();
            }
        }

        return result;
    }

    private static string? Scope(ResourceType type, string? ns) => type.Namespaced ? ns : null;

    public JsonObject Get(ResourceType type, string? ns, string name)
    {
        var stored = store.Get(type.StorageKey, Scope(type, ns), name) ?? throw ApiException.NotFound(type, name);
        return Present(type, stored.Object);
    }

    public ListResult List(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields, int? limit, string? continueToken)
    {
        var revision = store.Revision;
        var all = store.List(type.StorageKey, Scope(type, ns));
        string? after = null;
        if (!string.IsNullOrEmpty(continueToken))
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(continueToken));
                after = decoded;
            }
            catch (FormatException)
            {
                throw ApiException.BadRequest("continue key is not valid: it must be the value of metadata.continue from the previous list");
            }
        }

        var items = new List<JsonObject>();
        string? next = null;
        foreach (var o in all)
        {
            var key = $"{o.Namespace}/{o.Name}";
            if (after is not null && string.CompareOrdinal(key, after) <= 0)
            {
                continue;
            }

            if (!labels.Matches(Meta.Labels(o.Object)) || !fields.Matches(o.Object))
            {
                continue;
            }

            if (limit is > 0 && items.Count == limit)
            {
                next = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{items[^1]["metadata"]?["namespace"]}/{items[^1]["metadata"]?["name"]}"));
                break;
            }

            items.Add(Present(type, o.Object));
        }

        return new ListResult(items, revision, next);
    }

    public JsonObject Create(ResourceType type, string? ns, JsonObject obj, WriteOptions options)
    {
        lock (_writeLock)
        {
            return CreateLocked(type, ns, obj, options);
        }
    }

    private JsonObject CreateLocked(ResourceType type, string? ns, JsonObject obj, WriteOptions options)
    {
        obj = (JsonObject)obj.DeepClone();
        CheckKind(type, obj);
        var meta = Meta.Of(obj);
        var name = Meta.Name(obj);
        if (string.IsNullOrEmpty(name))
        {
            var prefix = Meta.Str(meta["generateName"]);
            if (string.IsNullOrEmpty(prefix))
            {
                throw ApiException.Invalid(type, "", [new FieldError("metadata.name", "Required value: name or generateName is required", "FieldValueRequired")]);
            }

            name = prefix + RandomSuffix();
            meta["name"] = name;
        }

        ValidateName(type, name);
        if (type.Namespaced)
        {
            var bodyNs = Meta.Namespace(obj) is { Length: > 0 } given ? given : null;
            ns ??= bodyNs ?? "default";
            if (bodyNs is not null && bodyNs != ns)
            {
                throw ApiException.BadRequest($"the namespace of the provided object ({bodyNs}) does not match the namespace sent on the request ({ns})");
            }

            meta["namespace"] = ns;
            CheckNamespaceOpen(type, ns, name);
        }
        else
        {
            meta.Remove("namespace");
            ns = null;
        }

        if (store.Get(type.StorageKey, ns, name) is not null)
        {
            throw ApiException.AlreadyExists(type, name);
        }

        meta["uid"] = NewUid();
        meta["creationTimestamp"] = Now();
        meta.Remove("resourceVersion");
        meta.Remove("deletionTimestamp");
        meta.Remove("deletionGracePeriodSeconds");
        meta.Remove("selfLink");
        if (type.TracksGeneration || type.IsCustom)
        {
            meta["generation"] = 1;
        }
        else
        {
            meta.Remove("generation");
        }

        if (type.HasStatus && type.IsCustom)
        {
            obj.Remove("status");
        }

        if (options.FieldManager is not null && meta["managedFields"] is null)
        {
            RecordManager(obj, options.FieldManager, "Update", type.ApiVersion);
        }

        Admit(new AdmissionRequest(type, "CREATE", obj, null, null, options.FieldValidation));
        if (options.DryRun)
        {
            return Present(type, obj);
        }

        try
        {
            return Commit(type, store.Create(type.StorageKey, ns, name, obj), false);
        }
        catch (StoreException e) when (e.Error == StoreError.AlreadyExists)
        {
            throw ApiException.AlreadyExists(type, name);
        }
    }

    public JsonObject Update(ResourceType type, string? ns, string name, JsonObject obj, WriteOptions options, string? subresource = null)
    {
        lock (_writeLock)
        {
            var current = store.Get(type.StorageKey, Scope(type, ns), name) ?? throw ApiException.NotFound(type, name);
            var requested = Meta.ResourceVersion(obj);
            if (requested != 0 && requested != current.Revision)
            {
                throw ApiException.StaleResourceVersion(type, name);
            }

            return UpdateLocked(type, current, (JsonObject)obj.DeepClone(), options, subresource, "Update");
        }
    }

    /// <summary>Applies a patch of the given content type and stores the result.</summary>
    public (JsonObject Object, bool Created) Patch(ResourceType type, string? ns, string name, string contentType, string body, WriteOptions options, string? subresource = null)
    {
        lock (_writeLock)
        {
            var current = store.Get(type.StorageKey, Scope(type, ns), name);
            if (contentType.StartsWith("application/apply-patch", StringComparison.Ordinal))
            {
                return ApplyLocked(type, ns, name, current, body, options, subresource);
            }

            if (current is null)
            {
                throw ApiException.NotFound(type, name);
            }

            var basis = subresource == "scale" ? ScaleOf(type, current.Object) : Present(type, current.Object);
            JsonNode? patched;
            try
            {
                if (contentType.StartsWith("application/json-patch+json", StringComparison.Ordinal))
                {
                    patched = Patches.JsonPatch(basis, ParseJson(body) as JsonArray ?? throw ApiException.BadRequest("a JSON patch must be an array of operations"));
                }
                else if (contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal))
                {
                    patched = Patches.MergePatch(basis, ParseJson(body));
                }
                else if (contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.Ordinal))
                {
                    if (type.IsCustom)
                    {
                        throw ApiException.UnsupportedMediaType($"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (strategic merge patch is not supported for custom resources such as {type.QualifiedPlural})");
                    }

                    patched = Patches.StrategicMerge(basis, ParseJson(body));
                }
                else
                {
                    throw ApiException.UnsupportedMediaType($"the body of the request was in an unknown format ({contentType}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml");
                }
            }
            catch (PatchException e)
            {
                throw new ApiException(422, "Invalid", $"the patch could not be applied: {e.Message}");
            }

            if (patched is not JsonObject result)
            {
                throw ApiException.BadRequest("the patched document is not an object");
            }

            var requested = Meta.ResourceVersion(result);
            if (requested != 0 && requested != current.Revision)
            {
                throw ApiException.StaleResourceVersion(type, name);
            }

            if (subresource == "scale")
            {
                return (SetScaleLocked(type, current, result, options), false);
            }

            return (UpdateLocked(type, current, result, options, subresource, "Update"), false);
        }
    }

    private (JsonObject, bool) ApplyLocked(ResourceType type, string? ns, string name, StoredObject? current, string body, WriteOptions options, string? subresource)
    {
        JsonObject applied;
        try
        {
            applied = Yaml.Parse(body) as JsonObject ?? throw ApiException.BadRequest("the apply configuration must be an object");
        }
        catch (FormatException e)
        {
            throw ApiException.BadRequest($"error decoding YAML: {e.Message}");
        }

        if (string.IsNullOrEmpty(options.FieldManager))
        {
            throw ApiException.BadRequest("PATCH requests with apply content type require fieldManager: add ?fieldManager=NAME");
        }

        if (Meta.Name(applied) is { } bodyName && bodyName != name)
        {
            throw ApiException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
        }

        CheckKind(type, applied);
        var requested = Meta.ResourceVersion(applied);
        if (current is not null && requested != 0 && requested != current.Revision)
        {
            throw ApiException.StaleResourceVersion(type, name);
        }

        JsonObject merged;
        try
        {
            var basis = current is null ? null : Present(type, current.Object);
            if (subresource == "status" && basis is not null)
            {
                applied = new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind, ["metadata"] = new JsonObject { ["name"] = name }, ["status"] = applied["status"]?.DeepClone() };
                merged = (JsonObject)Patches.StrategicMerge(basis, new JsonObject { ["status"] = applied["status"]?.DeepClone() })!;
                RecordManager(merged, options.FieldManager, "Apply", type.ApiVersion);
                return (UpdateLocked(type, current!, merged, options, subresource, "Apply"), false);
            }

            merged = ServerSideApply.Apply(basis, applied, options.FieldManager, options.Force, type.ApiVersion, Now());
        }
        catch (ApplyConflictException e)
        {
            var causes = new JsonArray(e.Conflicts.Select(c => (JsonNode?)new JsonObject { ["reason"] = "FieldManagerConflict", ["message"] = c }).ToArray());
            throw new ApiException(409, "Conflict", e.Message, new JsonObject { ["name"] = name, ["group"] = type.Group, ["kind"] = type.Plural, ["causes"] = causes });
        }

        if (current is null)
        {
            Meta.Of(merged)["name"] = name;
            if (type.Namespaced)
            {
                Meta.Of(merged)["namespace"] = ns;
            }

            return (CreateLocked(type, ns, merged, options with { FieldManager = null }), true);
        }

        return (UpdateLocked(type, current, merged, options with { FieldManager = null }, subresource, "Apply"), false);
    }

    private JsonObject UpdateLocked(ResourceType type, StoredObject current, JsonObject obj, WriteOptions options, string? subresource, string operation)
    {
        var old = current.Object;
        CheckKind(type, obj);
        if (Meta.Name(obj) is { } bodyName && bodyName != current.Name)
        {
            throw ApiException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({current.Name})");
        }

        JsonObject next;
        if (subresource == "status")
        {
            // The status subresource changes status only (and, as in Kubernetes, nothing in metadata but its own).
            next = (JsonObject)old.DeepClone();
            next["status"] = obj["status"]?.DeepClone();
            if (obj["metadata"]?["managedFields"] is JsonArray mf)
            {
                Meta.Of(next)["managedFields"] = mf.DeepClone();
            }
        }
        else
        {
            next = obj;
            var meta = Meta.Of(next);
            var oldMeta = Meta.Of(old);
            foreach (var keep in new[] { "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name", "generateName" })
            {
                if (oldMeta[keep] is { } v)
                {
                    meta[keep] = v.DeepClone();
                }
                else
                {
                    meta.Remove(keep);
                }
            }

            if (type.HasStatus)
            {
                if (old["status"] is { } status)
                {
                    next["status"] = status.DeepClone();
                }
                else
                {
                    next.Remove("status");
                }
            }

            if (Meta.IsDeleting(old))
            {
                // Once deletion started, finalizers may only be removed.
                var allowed = Meta.Finalizers(old).ToHashSet();
                if (Meta.Finalizers(next).Any(f => !allowed.Contains(f)))
                {
                    throw ApiException.Forbidden(type, current.Name, "no new finalizers can be added if the object is being deleted");
                }
            }
        }

        if ((type.TracksGeneration || type.IsCustom) && !JsonNode.DeepEquals(WithoutMetaAndStatus(old), WithoutMetaAndStatus(next)))
        {
            Meta.Of(next)["generation"] = (Meta.Long(old["metadata"]?["generation"]) ?? 0) + 1;
        }

        Meta.Of(next).Remove("resourceVersion");
        if (options.FieldManager is not null)
        {
            RecordManager(next, options.FieldManager, operation, type.ApiVersion);
        }

        Admit(new AdmissionRequest(type, "UPDATE", next, Present(type, old), subresource, options.FieldValidation));

        if (SameContent(old, next))
        {
            // A no-op write changes nothing, not even resourceVersion, and wakes no watcher.
            return Present(type, old);
        }

        if (options.DryRun)
        {
            Meta.Of(next)["resourceVersion"] = current.Revision.ToString(CultureInfo.InvariantCulture);
            return Present(type, next);
        }

        if (Meta.IsDeleting(next) && Meta.Finalizers(next).Count == 0 && (next["spec"]?["finalizers"] as JsonArray ?? []).Count == 0)
        {
            // The last finalizer went: the deletion that was waiting for it completes now.
            return Commit(type, store.Delete(type.StorageKey, current.Namespace, current.Name, current.Revision), true);
        }

        try
        {
            return Commit(type, store.Update(type.StorageKey, current.Namespace, current.Name, next, current.Revision), false);
        }
        catch (StoreException e) when (e.Error == StoreError.Conflict)
        {
            throw ApiException.StaleResourceVersion(type, current.Name);
        }
    }

    private static JsonObject WithoutMetaAndStatus(JsonObject o)
    {
        var c = (JsonObject)o.DeepClone();
        c.Remove("metadata");
        c.Remove("status");
        c.Remove("apiVersion");
        c.Remove("kind");
        return c;
    }

    private static bool SameContent(JsonObject a, JsonObject b)
    {
        static JsonObject Normal(JsonObject o)
        {
            var c = (JsonObject)o.DeepClone();
            c.Remove("apiVersion");
            c.Remove("kind");
            var m = Meta.Of(c);
            m.Remove("resourceVersion");
            m.Remove("managedFields");
            return c;
        }

        static string Managers(JsonObject o) => string.Join(",", (o["metadata"]?["managedFields"] as JsonArray ?? [])
            .Select(e => $"{e?["manager"]}/{e?["operation"]}/{e?["fieldsV1"]?.ToJsonString()}"));

        return JsonNode.DeepEquals(Normal(a), Normal(b)) && Managers(a) == Managers(b);
    }

    public JsonObject Delete(ResourceType type, string? ns, string name, DeleteOptions options)
    {
        lock (_writeLock)
        {
            return DeleteLocked(type, ns, name, options);
        }
    }

    private JsonObject DeleteLocked(ResourceType type, string? ns, string name, DeleteOptions options)
    {
        var current = store.Get(type.StorageKey, Scope(type, ns), name) ?? throw ApiException.NotFound(type, name);
        var obj = current.Object;
        if (options.PreconditionUid is { } uid && uid != Meta.Uid(obj))
        {
            throw ApiException.Conflict(type, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {Meta.Uid(obj)}");
        }

        if (options.PreconditionResourceVersion is { } rv && rv != current.Revision.ToString(CultureInfo.InvariantCulture))
        {
            throw ApiException.Conflict(type, name, $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {current.Revision}");
        }

        if (options.DryRun)
        {
            return Present(type, obj);
        }

        var finalizers = Meta.Finalizers(obj);
        var policy = options.PropagationPolicy ?? (type.Group == "" && type.Plural == "namespaces" ? "Background" : "Background");
        var changed = false;
        if (policy == "Orphan" && !finalizers.Contains(OrphanFinalizer))
        {
            finalizers.Add(OrphanFinalizer);
            changed = true;
        }
        else if (policy == "Foreground" && !finalizers.Contains(ForegroundFinalizer))
        {
            finalizers.Add(ForegroundFinalizer);
            changed = true;
        }
        else if (policy is not ("Orphan" or "Foreground" or "Background"))
        {
            throw ApiException.BadRequest($"propagationPolicy \"{policy}\" is not one of Orphan, Foreground, Background");
        }

        if (type.Group == "" && type.Plural == "namespaces")
        {
            if (Meta.IsDeleting(obj))
            {
                return Present(type, obj);
            }

            // Namespaces always go through the namespace controller, which empties them first.
            Meta.Of(obj)["deletionTimestamp"] = Now();
            Meta.Of(obj)["deletionGracePeriodSeconds"] = 0;
            Meta.SetFinalizers(obj, finalizers);
            obj["status"] = new JsonObject { ["phase"] = "Terminating" };
            return Commit(type, store.Update(type.StorageKey, null, name, obj, current.Revision), false);
        }

        if (finalizers.Count > 0 || (GracefulDeletion?.Invoke(type, obj, options) ?? false))
        {
            if (Meta.IsDeleting(obj) && !changed)
            {
                return Present(type, obj);
            }

            Meta.SetFinalizers(obj, finalizers);
            if (!Meta.IsDeleting(obj))
            {
                Meta.Of(obj)["deletionTimestamp"] = Now();
                // A pod's grace period defaults to its terminationGracePeriodSeconds; the kubelet honours it.
                Meta.Of(obj)["deletionGracePeriodSeconds"] = finalizers.Count > 0 ? options.GracePeriodSeconds ?? 0
                    : options.GracePeriodSeconds ?? Meta.Long(obj["spec"]?["terminationGracePeriodSeconds"]) ?? 30;
            }

            return Commit(type, store.Update(type.StorageKey, current.Namespace, name, obj, current.Revision), false);
        }

        return Commit(type, store.Delete(type.StorageKey, current.Namespace, name, current.Revision), true);
    }

    /// <summary>Set by the runtime: the log file of a pod's container (namespace, pod, uid, container).</summary>
    public Func<string, string, string, string, string>? PodLogPath { get; set; }

    /// <summary>Set by the runtime: returns true when a pod must terminate gracefully (its kubelet deletes it).</summary>
    public Func<ResourceType, JsonObject, DeleteOptions, bool>? GracefulDeletion { get; set; }

    public IReadOnlyList<JsonObject> DeleteCollection(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields, DeleteOptions options)
    {
        var result = new List<JsonObject>();
        foreach (var o in List(type, ns, labels, fields, null, null).Items)
        {
            try
            {
                result.Add(Delete(type, Meta.Namespace(o), Meta.Name(o)!, options));
            }
            catch (ApiException e) when (e.Code == 404)
            {
                // Deleted meanwhile: that is what was asked.
            }
        }

        return result;
    }

    /// <summary>The autoscaling/v1 Scale view of an object with a scale subresource.</summary>
    public JsonObject GetScale(ResourceType type, string? ns, string name)
    {
        var current = store.Get(type.StorageKey, Scope(type, ns), name) ?? throw ApiException.NotFound(type, name);
        return ScaleOf(type, current.Object);
    }

    private static JsonObject ScaleOf(ResourceType type, JsonObject obj)
    {
        var scale = type.Scale ?? throw new ApiException(404, "NotFound", $"the server could not find the requested resource: {type.QualifiedPlural} has no scale subresource");
        var meta = obj["metadata"]!;
        string? selector = null;
        if (scale.LabelSelectorPath is { } lsp)
        {
            selector = SimpleJsonPath.First(obj, lsp)?.ToString();
        }
        else if (obj["spec"]?["selector"] is JsonObject sel)
        {
            selector = string.Join(",", (sel["matchLabels"] as JsonObject ?? []).Select(kv => $"{kv.Key}={kv.Value}"));
        }

        var status = new JsonObject { ["replicas"] = SimpleJsonPath.First(obj, scale.StatusReplicasPath)?.DeepClone() ?? 0 };
        if (selector is not null)
        {
            status["selector"] = selector;
        }

        return new JsonObject
        {
            ["kind"] = "Scale",
            ["apiVersion"] = "autoscaling/v1",
            ["metadata"] = new JsonObject
            {
                ["name"] = meta["name"]?.DeepClone(),
                ["namespace"] = meta["namespace"]?.DeepClone(),
                ["uid"] = meta["uid"]?.DeepClone(),
                ["resourceVersion"] = meta["resourceVersion"]?.DeepClone(),
                ["creationTimestamp"] = meta["creationTimestamp"]?.DeepClone(),
            },
            ["spec"] = new JsonObject { ["replicas"] = SimpleJsonPath.First(obj, scale.SpecReplicasPath)?.DeepClone() ?? 0 },
            ["status"] = status,
        };
    }

    public JsonObject UpdateScale(ResourceType type, string? ns, string name, JsonObject scale, WriteOptions options)
    {
        lock (_writeLock)
        {
            var current = store.Get(type.StorageKey, Scope(type, ns), name) ?? throw ApiException.NotFound(type, name);
            var requested = Meta.ResourceVersion(scale);
            if (requested != 0 && requested != current.Revision)
            {
                throw ApiException.StaleResourceVersion(type, name);
            }

            return SetScaleLocked(type, current, scale, options);
        }
    }

    private JsonObject SetScaleLocked(ResourceType type, StoredObject current, JsonObject scale, WriteOptions options)
    {
        var spec = type.Scale ?? throw ApiException.NotFound(type, current.Name);
        var replicas = scale["spec"]?["replicas"]?.DeepClone() ?? throw ApiException.BadRequest("spec.replicas is required in a Scale");
        var next = (JsonObject)current.Object.DeepClone();
        var path = spec.SpecReplicasPath.TrimStart('.').Split('.');
        var node = next;
        foreach (var seg in path[..^1])
        {
            if (node[seg] is not JsonObject child)
            {
                child = [];
                node[seg] = child;
            }

            node = child;
        }

        node[path[^1]] = replicas;
        var updated = UpdateLocked(type, current, next, options, null, "Update");
        return ScaleOf(type, updated);
    }

    private void Admit(AdmissionRequest request)
    {
        foreach (var a in _admissions)
        {
            a.Admit(request);
        }
    }

    private static void CheckKind(ResourceType type, JsonObject obj)
    {
        var kind = Meta.Str(obj["kind"]);
        var apiVersion = Meta.Str(obj["apiVersion"]);
        if (kind is not null && kind != type.Kind)
        {
            throw ApiException.BadRequest($"the kind of the object ({kind}) does not match the resource {type.QualifiedPlural} (kind {type.Kind})");
        }

        if (apiVersion is not null && apiVersion.Split('/')[0] != (type.Group.Length == 0 ? apiVersion.Split('/')[0] : type.Group))
        {
            throw ApiException.BadRequest($"the apiVersion of the object ({apiVersion}) does not match the group of {type.QualifiedPlural}");
        }

        obj["apiVersion"] = type.ApiVersion;
        obj["kind"] = type.Kind;
    }

    private void CheckNamespaceOpen(ResourceType type, string ns, string name)
    {
        var nsType = registry.Find("", "v1", "namespaces")!;
        var found = store.Get(nsType.StorageKey, null, ns) ?? throw ApiException.NotFound(nsType, ns);
        if (Meta.IsDeleting(found.Object))
        {
            throw ApiException.Forbidden(type, name, $"unable to create new content in namespace {ns} because it is being terminated");
        }
    }

    private static void ValidateName(ResourceType type, string name)
    {
        var ok = name.Length is > 0 and <= 253 && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.' or ':' || (type.IsCustom && c == '_'))
            && char.IsLetterOrDigit(name[0]) && char.IsLetterOrDigit(name[^1]);
        if (!ok)
        {
            throw ApiException.Invalid(type, name, [new FieldError("metadata.name", $"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]);
        }
    }

    private void RecordManager(JsonObject obj, string manager, string operation, string apiVersion)
    {
        var meta = Meta.Of(obj);
        var list = meta["managedFields"] as JsonArray ?? [];
        var existing = list.OfType<JsonObject>().FirstOrDefault(e => e["manager"]?.GetValue<string>() == manager && e["operation"]?.GetValue<string>() == operation);
        if (existing is null)
        {
            existing = new JsonObject { ["manager"] = manager, ["operation"] = operation, ["apiVersion"] = apiVersion, ["fieldsType"] = "FieldsV1", ["fieldsV1"] = new JsonObject() };
            list.Add(existing);
        }

        existing["time"] = Now();
        meta["managedFields"] = list;
    }

    private string NewUid()
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x40);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true).ToString();
    }

    private string RandomSuffix()
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        return new string(Enumerable.Range(0, 5).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
    }

    private static JsonNode? ParseJson(string body)
    {
        try
        {
            return JsonNode.Parse(body);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}");
        }
    }
}
