using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube.Storage;

namespace LocalKube.Api;

/// <summary>Options of the API server's HTTP surface.</summary>
internal sealed record ApiServerOptions
{
    /// <summary>How often watches that asked for bookmarks get one.</summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(5);

    public string GitVersion { get; init; } = "v1.33.0-localkube";
}

/// <summary>The HTTP surface of the API server: parses Kubernetes REST paths and query parameters, calls
/// <see cref="ResourceService"/>, and writes objects, lists, tables, watch streams and Status errors.</summary>
internal sealed class ApiEndpoints(ResourceService service, ApiServerOptions options)
{
    private ResourceRegistry Registry => service.Registry;

    public async Task HandleAsync(HttpContext context)
    {
        try
        {
            await RouteAsync(context);
        }
        catch (ApiException e)
        {
            await WriteAsync(context, e.Code, e.ToStatus());
        }
        catch (FormatException e)
        {
            await WriteAsync(context, 400, ApiException.BadRequest(e.Message).ToStatus());
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away (ended a watch): nothing to answer.
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or ArgumentException or KeyNotFoundException or IndexOutOfRangeException or System.Text.Json.JsonException)
        {
            // A bug here must not look like a cluster problem: say what failed, as kube-apiserver's InternalError does.
            await WriteAsync(context, 500, ApiException.StatusObject(500, "InternalError", $"localkube internal error on {context.Request.Method} {context.Request.Path}: {e}", null));
        }
    }

    private static async Task WriteAsync(HttpContext context, int code, JsonNode body)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    private async Task RouteAsync(HttpContext context)
    {
        var path = context.Request.Path.Value?.TrimEnd('/') ?? "";
        var segs = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var method = context.Request.Method;
        switch (segs)
        {
            case []:
                await WriteAsync(context, 200, new JsonObject { ["paths"] = new JsonArray("/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version") });
                return;
            case ["healthz" or "livez" or "readyz", ..]:
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("ok", context.RequestAborted);
                return;
            case ["version"]:
                await WriteAsync(context, 200, VersionDocument());
                return;
            case ["api"]:
                await WriteAsync(context, 200, Discovery.CoreVersions($"{context.Request.Host}"));
                return;
            case ["apis"]:
                await WriteAsync(context, 200, Discovery.GroupList(Registry));
                return;
            case ["api", var v] when method == "GET":
                await WriteAsync(context, 200, Discovery.ResourceList(Registry, "", v) ?? throw NotFoundPath(path));
                return;
            case ["apis", var g] when method == "GET":
                await WriteAsync(context, 200, Discovery.GroupDocument(Registry, g) ?? throw NotFoundPath(path));
                return;
            case ["apis", var g, var v] when method == "GET":
                await WriteAsync(context, 200, Discovery.ResourceList(Registry, g, v) ?? throw NotFoundPath(path));
                return;
            case ["openapi", ..]:
                await WriteOpenApiAsync(context, segs);
                return;
            case ["api", var v, .. var rest]:
                await ResourceAsync(context, "", v, rest, path);
                return;
            case ["apis", var g, var v, .. var rest]:
                await ResourceAsync(context, g, v, rest, path);
                return;
            default:
                throw NotFoundPath(path);
        }
    }

    private Task WriteOpenApiAsync(HttpContext context, string[] segs)
    {
        var doc = OpenApi.Document(Registry, segs, context.Request.Host.ToString()) ?? throw NotFoundPath(context.Request.Path);
        return WriteAsync(context, 200, doc);
    }

    private JsonObject VersionDocument() => new()
    {
        ["major"] = "1",
        ["minor"] = "33",
        ["gitVersion"] = options.GitVersion,
        ["gitCommit"] = "0000000000000000000000000000000000000000",
        ["gitTreeState"] = "clean",
        ["buildDate"] = "2026-01-01T00:00:00Z",
        ["goVersion"] = "go1.24",
        ["compiler"] = "gc",
        ["platform"] = "linux/amd64",
    };

    private static ApiException NotFoundPath(string path) =>
        new(404, "NotFound", $"the server could not find the requested resource ({path})", new JsonObject());

    private async Task ResourceAsync(HttpContext context, string group, string version, string[] rest, string path)
    {
        string? ns = null;
        if (rest.Length >= 3 && rest[0] == "namespaces" && rest[2] is not ("status" or "finalize"))
        {
            ns = rest[1];
            rest = rest[2..];
        }

        if (rest.Length is 0 or > 3)
        {
            throw NotFoundPath(path);
        }

        var type = Registry.Find(group, version, rest[0]) ?? throw NotFoundPath(path);
        if (!type.Namespaced && ns is not null)
        {
            throw NotFoundPath(path);
        }

        var name = rest.Length > 1 ? rest[1] : null;
        var sub = rest.Length > 2 ? rest[2] : null;
        if (sub == "log" && type is { Group: "", Plural: "pods" } && context.Request.Method == "GET" && name is not null)
        {
            await PodLogAsync(context, ns, name);
            return;
        }

        if (sub is not null && sub is not ("status" or "scale" or "finalize"))
        {
            throw NotFoundPath(path);
        }

        if (sub == "scale" && type.Scale is null)
        {
            throw NotFoundPath(path);
        }

        if (sub == "status" && !type.HasStatus)
        {
            throw NotFoundPath(path);
        }

        var q = context.Request.Query;
        var writeOptions = new WriteOptions(
            DryRun: q["dryRun"].Count > 0 && q["dryRun"].ToString().Length > 0,
            FieldManager: q["fieldManager"].Count > 0 ? q["fieldManager"].ToString() : null,
            FieldValidation: q["fieldValidation"].Count > 0 ? q["fieldValidation"].ToString() : null,
            Force: q["force"].ToString() == "true");

        switch (context.Request.Method, name)
        {
            case ("GET", null) when IsTrue(q["watch"]):
                await WatchAsync(context, type, ns);
                return;
            case ("GET", null):
                await ListAsync(context, type, ns);
                return;
            case ("GET", _):
                {
                    var obj = sub == "scale" ? service.GetScale(type, ns, name) : service.Get(type, ns, name);
                    await WriteObjectAsync(context, 200, type, obj);
                    return;
                }

            case ("POST", null):
                {
                    var body = await ReadObjectAsync(context);
                    var created = service.Create(type, ns, body, writeOptions with { FieldManager = writeOptions.FieldManager ?? DefaultManager(context) });
                    await WriteObjectAsync(context, 201, type, created);
                    return;
                }

            case ("PUT", not null):
                {
                    var body = await ReadObjectAsync(context);
                    var manager = writeOptions.FieldManager ?? DefaultManager(context);
                    var updated = sub == "scale"
                        ? service.UpdateScale(type, ns, name, body, writeOptions with { FieldManager = manager })
                        : service.Update(type, ns, name, body, writeOptions with { FieldManager = manager }, sub);
                    await WriteObjectAsync(context, 200, type, updated);
                    return;
                }

            case ("PATCH", not null):
                {
                    var text = await ReadBodyAsync(context);
                    var contentType = context.Request.ContentType ?? "";
                    var manager = writeOptions.FieldManager ?? (contentType.StartsWith("application/apply-patch", StringComparison.Ordinal) ? null : DefaultManager(context));
                    var (obj, created) = service.Patch(type, ns, name, contentType, text, writeOptions with { FieldManager = manager }, sub);
                    await WriteObjectAsync(context, created ? 201 : 200, type, obj);
                    return;
                }

            case ("DELETE", not null):
                {
                    var deleted = service.Delete(type, ns, name, await ReadDeleteOptionsAsync(context));
                    await WriteObjectAsync(context, 200, type, deleted);
                    return;
                }

            case ("DELETE", null):
                {
                    var deleteOptions = await ReadDeleteOptionsAsync(context);
                    var items = service.DeleteCollection(type, ns, LabelSelector.Parse(q["labelSelector"]), FieldSelector.Parse(q["fieldSelector"]), deleteOptions);
                    await WriteAsync(context, 200, ListDocument(type, items, service.Store.Revision, null));
                    return;
                }

            default:
                throw ApiException.MethodNotAllowed($"the server does not allow this method on the requested resource ({context.Request.Method} {path})");
        }
    }

    /// <summary><c>kubectl logs</c>: the container's log file, optionally its last lines, optionally followed.</summary>
    private async Task PodLogAsync(HttpContext context, string? ns, string name)
    {
        var podType = Registry.Find("", "v1", "pods")!;
        var pod = service.Get(podType, ns, name);
        var containers = (pod["spec"]?["containers"] as JsonArray ?? []).Select(c => Meta.Str(c?["name"])).OfType<string>().ToList();
        var q = context.Request.Query;
        var container = q["container"].Count > 0 ? q["container"].ToString() : containers.Count == 1 ? containers[0] : null;
        if (container is null)
        {
            throw ApiException.BadRequest($"a container name must be specified for pod {name}, choose one of: [{string.Join(" ", containers)}]");
        }

        var path = service.PodLogPath?.Invoke(ns ?? "", name, Meta.Uid(pod) ?? "", container)
            ?? throw ApiException.BadRequest("this localkube runs no pods (started without the runtime), so there are no logs");
        context.Response.ContentType = "text/plain";
        var text = File.Exists(path) ? await File.ReadAllTextAsync(path, context.RequestAborted) : "";
        if (q["tailLines"].Count > 0 && int.TryParse(q["tailLines"], NumberStyles.None, CultureInfo.InvariantCulture, out var tail))
        {
            var lines = text.Split('\n');
            var keep = lines.Length > 0 && lines[^1].Length == 0 ? lines[..^1] : lines;
            text = string.Concat(keep.Skip(Math.Max(0, keep.Length - tail)).Select(l => l + "\n"));
        }

        await context.Response.WriteAsync(text, context.RequestAborted);
        if (!IsTrue(q["follow"]))
        {
            return;
        }

        await context.Response.Body.FlushAsync(context.RequestAborted);
        long offset = File.Exists(path) ? new FileInfo(path).Length : 0;
        while (!context.RequestAborted.IsCancellationRequested && service.Store.Get(podType.StorageKey, ns, name) is { } current && Meta.Uid(current.Object) == Meta.Uid(pod))
        {
            if (File.Exists(path) && new FileInfo(path).Length > offset)
            {
                await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                stream.Seek(offset, SeekOrigin.Begin);
                await stream.CopyToAsync(context.Response.Body, context.RequestAborted);
                offset = stream.Position;
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }

            await Task.Delay(200, context.RequestAborted);
        }
    }

    private static bool IsTrue(Microsoft.Extensions.Primitives.StringValues v) => v.ToString() is "true" or "1";

    private static string DefaultManager(HttpContext context)
    {
        // As the real server does: the client's program name from its User-Agent ("kubectl/v1.33 ..." -> "kubectl").
        var agent = context.Request.Headers.UserAgent.ToString();
        var first = agent.Split(' ', 2)[0].Split('/')[0];
        return first.Length == 0 ? "unknown" : first;
    }

    private static async Task<string> ReadBodyAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync(context.RequestAborted);
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext context)
    {
        var contentType = context.Request.ContentType ?? "application/json";
        if (contentType.Contains("protobuf", StringComparison.Ordinal))
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            return Protobuf.Decode(buffer.ToArray());
        }

        if (contentType.Contains("cbor", StringComparison.Ordinal))
        {
            throw ApiException.UnsupportedMediaType($"this server reads JSON, YAML and (for a few kinds) protobuf, not {contentType}");
        }

        var text = await ReadBodyAsync(context);

        try
        {
            var node = contentType.Contains("yaml", StringComparison.Ordinal) ? Yaml.Parse(text) : JsonNode.Parse(text);
            return node as JsonObject ?? throw ApiException.BadRequest("the request body must be a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}");
        }
    }

    private static async Task<DeleteOptions> ReadDeleteOptionsAsync(HttpContext context)
    {
        var q = context.Request.Query;
        JsonObject body = [];
        var text = "";
        if (context.Request.ContentType?.Contains("protobuf", StringComparison.Ordinal) == true)
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            body = buffer.Length == 0 ? [] : Protobuf.Decode(buffer.ToArray());
        }
        else
        {
            text = await ReadBodyAsync(context);
        }

        if (!string.IsNullOrWhiteSpace(text))
        {
            try
            {
                body = JsonNode.Parse(text) as JsonObject ?? [];
            }
            catch (System.Text.Json.JsonException e)
            {
                throw ApiException.BadRequest($"the DeleteOptions body is not valid JSON: {e.Message}");
            }
        }

        long? grace = q["gracePeriodSeconds"].Count > 0 ? long.Parse(q["gracePeriodSeconds"].ToString(), CultureInfo.InvariantCulture) : Meta.Long(body["gracePeriodSeconds"]);
        var policy = q["propagationPolicy"].Count > 0 ? q["propagationPolicy"].ToString() : Meta.Str(body["propagationPolicy"]);
        if (policy is null && Meta.Bool(body["orphanDependents"]) == true)
        {
            policy = "Orphan";
        }

        var dryRun = (q["dryRun"].Count > 0 && q["dryRun"].ToString().Length > 0) || (body["dryRun"] as JsonArray)?.Count > 0;
        return new DeleteOptions(policy, grace, Meta.Str(body["preconditions"]?["uid"]), Meta.Str(body["preconditions"]?["resourceVersion"]), dryRun);
    }

    private static JsonObject ListDocument(ResourceType type, IReadOnlyList<JsonObject> items, long revision, string? continueToken)
    {
        var meta = new JsonObject { ["resourceVersion"] = revision.ToString(CultureInfo.InvariantCulture) };
        if (continueToken is not null)
        {
            meta["continue"] = continueToken;
        }

        return new JsonObject
        {
            ["kind"] = type.ListKind,
            ["apiVersion"] = type.ApiVersion,
            ["metadata"] = meta,
            ["items"] = new JsonArray(items.Select(i => (JsonNode?)i).ToArray()),
        };
    }

    private async Task WriteObjectAsync(HttpContext context, int code, ResourceType type, JsonObject obj)
    {
        if (Tables.Wanted(context.Request.Headers.Accept) && obj["kind"]?.GetValue<string>() == type.Kind)
        {
            var table = Tables.Build(type, [obj], Meta.Str(obj["metadata"]?["resourceVersion"]) ?? "", context.Request.Query["includeObject"], service.Time.GetUtcNow());
            await WriteAsync(context, code, table);
            return;
        }

        await WriteAsync(context, code, obj);
    }

    private async Task ListAsync(HttpContext context, ResourceType type, string? ns)
    {
        var q = context.Request.Query;
        int? limit = q["limit"].Count > 0 && int.TryParse(q["limit"], NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : null;
        var result = service.List(type, ns, LabelSelector.Parse(q["labelSelector"]), FieldSelector.Parse(q["fieldSelector"]), limit, q["continue"]);
        if (Tables.Wanted(context.Request.Headers.Accept))
        {
            await WriteAsync(context, 200, Tables.Build(type, result.Items, result.Revision.ToString(CultureInfo.InvariantCulture), q["includeObject"], service.Time.GetUtcNow(), continueToken: result.Continue));
            return;
        }

        await WriteAsync(context, 200, ListDocument(type, result.Items, result.Revision, result.Continue));
    }

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns)
    {
        var q = context.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"]);
        var bookmarks = IsTrue(q["allowWatchBookmarks"]);
        var table = Tables.Wanted(context.Request.Headers.Accept);
        var includeObject = q["includeObject"].ToString();
        var rvText = q["resourceVersion"].ToString();
        var sendInitial = IsTrue(q["sendInitialEvents"]);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (q["timeoutSeconds"].Count > 0 && int.TryParse(q["timeoutSeconds"], NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        }

        var scope = type.Namespaced ? ns : null;
        var initial = new List<JsonObject>();
        StoreWatch watch;
        long lastRevision;
        if (string.IsNullOrEmpty(rvText) || rvText == "0" || sendInitial)
        {
            // No resourceVersion (or "0"): start with the current state as ADDED events, then every change.
            watch = service.Store.WatchFromNow(type.StorageKey, scope, out var snapshot, out lastRevision);
            initial.AddRange(snapshot.Select(s => s.Object));
        }
        else
        {
            if (!long.TryParse(rvText, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
            {
                throw ApiException.BadRequest($"resourceVersion \"{rvText}\" is not a number");
            }

            try
            {
                watch = service.Store.Watch(type.StorageKey, scope, from);
                lastRevision = from;
            }
            catch (StoreException e) when (e.Error == StoreError.Expired)
            {
                // As kube-apiserver does: the watch opens, then reports 410 Gone as an ERROR event.
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/json";
                var status = ApiException.Gone(e.Message).ToStatus();
                await context.Response.WriteAsync(new JsonObject { ["type"] = "ERROR", ["object"] = status }.ToJsonString() + "\n", context.RequestAborted);
                return;
            }
        }

        using (watch)
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            context.Response.Headers.CacheControl = "no-cache, private";
            await context.Response.Body.FlushAsync(context.RequestAborted);
            var columnsSent = false;
            var matching = new HashSet<string>(StringComparer.Ordinal);
            async Task Send(string eventType, JsonObject obj)
            {
                JsonNode payload = obj;
                if (table && eventType != "BOOKMARK")
                {
                    payload = Tables.Build(type, [obj], Meta.Str(obj["metadata"]?["resourceVersion"]) ?? "", includeObject, service.Time.GetUtcNow(), withColumns: !columnsSent);
                    columnsSent = true;
                }

                var line = new JsonObject { ["type"] = eventType, ["object"] = payload }.ToJsonString() + "\n";
                await context.Response.WriteAsync(line, timeout.Token);
                await context.Response.Body.FlushAsync(timeout.Token);
            }

            JsonObject Presented(JsonObject o)
            {
                var result = new JsonObject { ["apiVersion"] = type.ApiVersion, ["kind"] = type.Kind };
                foreach (var (k, v) in o)
                {
                    if (k is not "apiVersion" and not "kind")
                    {
                        result[k] = v?.DeepClone();
                    }
                }

                return result;
            }

            foreach (var o in initial)
            {
                if (labels.Matches(Meta.Labels(o)) && fields.Matches(o))
                {
                    matching.Add($"{Meta.Namespace(o)}/{Meta.Name(o)}");
                    await Send("ADDED", Presented(o));
                }
            }

            if (sendInitial)
            {
                await Send("BOOKMARK", Bookmark(type, lastRevision, initialEventsEnd: true));
            }

            if (!string.IsNullOrEmpty(rvText) && rvText != "0" && !sendInitial)
            {
                foreach (var s in service.Store.List(type.StorageKey, scope))
                {
                    if (labels.Matches(Meta.Labels(s.Object)) && fields.Matches(s.Object))
                    {
                        matching.Add($"{s.Namespace}/{s.Name}");
                    }
                }
            }

            var nextBookmark = service.Time.GetUtcNow() + options.BookmarkInterval;
            try
            {
                while (!timeout.IsCancellationRequested)
                {
                    using var wait = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                    if (bookmarks)
                    {
                        var delay = nextBookmark - service.Time.GetUtcNow();
                        wait.CancelAfter(delay < TimeSpan.Zero ? TimeSpan.Zero : delay);
                    }

                    StoreEvent e;
                    try
                    {
                        if (!await watch.Events.WaitToReadAsync(wait.Token) || !watch.Events.TryRead(out e!))
                        {
                            return;
                        }
                    }
                    catch (OperationCanceledException) when (!timeout.IsCancellationRequested)
                    {
                        await Send("BOOKMARK", Bookmark(type, lastRevision, initialEventsEnd: false));
                        nextBookmark = service.Time.GetUtcNow() + options.BookmarkInterval;
                        continue;
                    }

                    lastRevision = e.Revision;
                    var key = $"{e.Namespace}/{e.Name}";
                    var matches = labels.Matches(Meta.Labels(e.Object)) && fields.Matches(e.Object);
                    var obj = Presented(e.Object);
                    if (e.Type == "DELETED")
                    {
                        if (matching.Remove(key) || matches)
                        {
                            await Send("DELETED", obj);
                        }
                    }
                    else if (matches)
                    {
                        var known = !matching.Add(key);
                        await Send(e.Type == "ADDED" || !known ? "ADDED" : "MODIFIED", obj);
                    }
                    else if (matching.Remove(key))
                    {
                        // The object no longer matches the selector: to this watcher it is gone.
                        await Send("DELETED", obj);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // Timeout or client gone: end the stream.
            }
        }
    }

    private static JsonObject Bookmark(ResourceType type, long revision, bool initialEventsEnd)
    {
        var meta = new JsonObject { ["resourceVersion"] = revision.ToString(CultureInfo.InvariantCulture) };
        if (initialEventsEnd)
        {
            meta["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" };
        }

        return new JsonObject { ["kind"] = type.Kind, ["apiVersion"] = type.ApiVersion, ["metadata"] = meta };
    }
}
