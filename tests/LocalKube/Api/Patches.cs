using System.Globalization;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>The three patch formats of PATCH requests: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
/// Kubernetes strategic merge patch. Each returns a new document and leaves its inputs unchanged.</summary>
internal static class Patches
{
    /// <summary>RFC 7386: objects merge key by key, null removes a key, anything else replaces.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : [];
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = MergePatch(result[key], value);
            }
        }

        return result;
    }

    /// <summary>RFC 6902 JSON patch: add, remove, replace, move, copy, test.</summary>
    public static JsonNode JsonPatch(JsonNode target, JsonArray operations)
    {
        var doc = target.DeepClone();
        foreach (var opNode in operations)
        {
            if (opNode is not JsonObject op)
            {
                throw new PatchException("each JSON patch operation must be an object");
            }

            var kind = op["op"]?.GetValue<string>() ?? throw new PatchException("JSON patch operation without \"op\"");
            var path = op["path"]?.GetValue<string>() ?? throw new PatchException($"JSON patch \"{kind}\" without \"path\"");
            switch (kind)
            {
                case "add":
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "remove":
                    Remove(doc, path);
                    break;
                case "replace":
                    Remove(doc, path);
                    doc = Add(doc, path, op["value"]?.DeepClone());
                    break;
                case "move":
                    {
                        var from = op["from"]?.GetValue<string>() ?? throw new PatchException("JSON patch \"move\" without \"from\"");
                        var value = Resolve(doc, from)?.DeepClone();
                        Remove(doc, from);
                        doc = Add(doc, path, value);
                        break;
                    }

                case "copy":
                    {
                        var from = op["from"]?.GetValue<string>() ?? throw new PatchException("JSON patch \"copy\" without \"from\"");
                        doc = Add(doc, path, Resolve(doc, from)?.DeepClone());
                        break;
                    }

                case "test":
                    if (!JsonNode.DeepEquals(Resolve(doc, path), op["value"]))
                    {
                        throw new PatchException($"testing value {path} failed");
                    }

                    break;
                default:
                    throw new PatchException($"unknown JSON patch operation \"{kind}\"");
            }
        }

        return doc;
    }

    private static List<string> Pointer(string path)
    {
        if (path.Length == 0)
        {
            return [];
        }

        if (path[0] != '/')
        {
            throw new PatchException($"JSON pointer \"{path}\" must start with '/'");
        }

        return path[1..].Split('/').Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToList();
    }

    private static JsonNode? Resolve(JsonNode doc, string path)
    {
        JsonNode? node = doc;
        foreach (var seg in Pointer(path))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(seg, out var child) => child,
                JsonArray a when int.TryParse(seg, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count => a[i],
                _ => throw new PatchException($"path \"{path}\" does not exist"),
            };
        }

        return node;
    }

    private static JsonNode Add(JsonNode doc, string path, JsonNode? value)
    {
        var segs = Pointer(path);
        if (segs.Count == 0)
        {
            return value ?? throw new PatchException("cannot replace the whole document with null");
        }

        var parent = segs.Count == 1 ? doc : Resolve(doc, "/" + string.Join('/', segs.Take(segs.Count - 1).Select(s => s.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));

        var last = segs[^1];
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw new PatchException($"cannot add at \"{path}\": parent is missing or not a container");
        }

        return doc;
    }

    private static void Remove(JsonNode doc, string path)
    {
        var segs = Pointer(path);
        if (segs.Count == 0)
        {
            throw new PatchException("cannot remove the whole document");
        }

        var parent = segs.Count == 1 ? doc : Resolve(doc, "/" + string.Join('/', segs.Take(segs.Count - 1).Select(s => s.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal))));
        var last = segs[^1];
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < a.Count:
                a.RemoveAt(i);
                break;
            default:
                throw new PatchException($"cannot remove \"{path}\": it does not exist");
        }
    }

    /// <summary>Strategic merge patch as kubectl produces it for built-in types: maps merge; lists whose field has a
    /// merge key (<see cref="MergeKeys"/>) merge element by element, honouring <c>$patch: delete|replace</c>,
    /// <c>$setElementOrder/FIELD</c>, <c>$deleteFromPrimitiveList/FIELD</c> and <c>$retainKeys</c>; other lists replace.</summary>
    public static JsonNode? StrategicMerge(JsonNode? target, JsonNode? patch, string path = "")
    {
        if (patch is not JsonObject p)
        {
            return patch?.DeepClone();
        }

        if (p["$patch"]?.GetValue<string>() == "replace")
        {
            var replaced = (JsonObject)p.DeepClone();
            replaced.Remove("$patch");
            return replaced;
        }

        var result = target is JsonObject t ? (JsonObject)t.DeepClone() : [];
        if (p["$retainKeys"] is JsonArray retain)
        {
            var keep = retain.Select(k => k?.GetValue<string>()).ToHashSet();
            foreach (var key in result.Select(kv => kv.Key).ToList())
            {
                if (!keep.Contains(key))
                {
                    result.Remove(key);
                }
            }
        }

        foreach (var (key, value) in p)
        {
            if (key is "$retainKeys" or "$patch")
            {
                continue;
            }

            if (key.StartsWith("$setElementOrder/", StringComparison.Ordinal))
            {
                continue;
            }

            if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                var field = key["$deleteFromPrimitiveList/".Length..];
                if (result[field] is JsonArray list && value is JsonArray remove)
                {
                    var drop = remove.Select(v => v?.ToJsonString()).ToHashSet();
                    result[field] = new JsonArray(list.Where(v => !drop.Contains(v?.ToJsonString())).Select(v => v?.DeepClone()).ToArray());
                }

                continue;
            }

            var childPath = path + "/" + key;
            if (value is null)
            {
                result.Remove(key);
            }
            else if (value is JsonArray patchList)
            {
                result[key] = MergeList(result[key] as JsonArray, patchList, childPath, p[$"$setElementOrder/{key}"] as JsonArray);
            }
            else
            {
                result[key] = StrategicMerge(result[key], value, childPath);
            }
        }

        return result;
    }

    /// <summary>The merge key of a list field at a path, or null when the list is replaced whole.
    /// Primitive lists merged as sets (finalizers) return an empty string.</summary>
    internal static string? MergeKeys(string path)
    {
        var field = path[(path.LastIndexOf('/') + 1)..];
        return field switch
        {
            "containers" or "initContainers" or "ephemeralContainers" or "env" or "volumes" or "imagePullSecrets"
                or "resourceClaims" => "name",
            "hostAliases" => "ip",
            "ports" when path.Contains("ontainers/", StringComparison.Ordinal) => "containerPort",
            "ports" when path.StartsWith("/spec", StringComparison.Ordinal) => "port",
            "volumeMounts" => "mountPath",
            "volumeDevices" => "devicePath",
            "ownerReferences" => "uid",
            "conditions" => "type",
            "topologySpreadConstraints" => "topologyKey",
            "finalizers" when path == "/metadata/finalizers" => "",
            _ => null,
        };
    }

    private static JsonArray MergeList(JsonArray? current, JsonArray patch, string path, JsonArray? order)
    {
        var key = MergeKeys(path);
        if (key is null)
        {
            return new JsonArray(patch.Select(v => v?.DeepClone()).ToArray());
        }

        var result = current is null ? [] : new JsonArray(current.Select(v => v?.DeepClone()).ToArray());
        if (key.Length == 0)
        {
            // A set of primitives: add the patch's values that are not there yet.
            var have = result.Select(v => v?.ToJsonString()).ToHashSet();
            foreach (var v in patch)
            {
                if (have.Add(v?.ToJsonString()))
                {
                    result.Add(v?.DeepClone());
                }
            }

            return result;
        }

        foreach (var item in patch)
        {
            if (item is not JsonObject element)
            {
                throw new PatchException($"list {path} is merged by \"{key}\", but the patch holds a non-object element");
            }

            var id = element[key]?.ToJsonString();
            var index = -1;
            for (var i = 0; i < result.Count; i++)
            {
                if (result[i]?[key]?.ToJsonString() == id)
                {
                    index = i;
                    break;
                }
            }

            var directive = element["$patch"]?.GetValue<string>();
            if (directive == "delete")
            {
                if (index >= 0)
                {
                    result.RemoveAt(index);
                }
            }
            else if (index >= 0)
            {
                result[index] = StrategicMerge(result[index], element, path);
            }
            else
            {
                result.Add(StrategicMerge(null, element, path));
            }
        }

        if (order is not null)
        {
            // Put elements in the order the patch's author wants; elements it does not name keep their place after.
            var ids = order.Select(o => o?[key]?.ToJsonString()).ToList();
            var sorted = result.OrderBy(e => ids.IndexOf(e?[key]?.ToJsonString()) is var i && i < 0 ? int.MaxValue : i).Select(e => e?.DeepClone()).ToArray();
            result = new JsonArray(sorted);
        }

        return result;
    }
}

internal sealed class PatchException(string message) : Exception(message);
