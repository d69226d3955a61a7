using System.Text.Json;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>Server-side apply, simplified: each Apply manager owns the set of fields its last applied
/// configuration named (kept in <c>metadata.managedFields</c> in the FieldsV1 format). Applying merges the new
/// configuration into the object (lists with a merge key element by element), removes the fields the manager
/// named before but no longer names (unless another manager applied them too), and reports a conflict when it
/// would change a field another Apply manager owns, unless forced. Fields written by Update operations are
/// not tracked field by field (see README).</summary>
internal static class ServerSideApply
{
    private static readonly HashSet<string> OwnedMetadata = ["labels", "annotations", "finalizers", "ownerReferences"];

    /// <summary>The field set of an applied configuration, in FieldsV1 form.</summary>
    public static JsonObject FieldsOf(JsonObject applied)
    {
        var set = new JsonObject();
        foreach (var (key, value) in applied)
        {
            if (key is "apiVersion" or "kind")
            {
                continue;
            }

            if (key == "metadata" && value is JsonObject meta)
            {
                var m = new JsonObject();
                foreach (var (mk, mv) in meta)
                {
                    if (OwnedMetadata.Contains(mk))
                    {
                        m["f:" + mk] = FieldsOfValue(mv, "/metadata/" + mk);
                    }
                }

                if (m.Count > 0)
                {
                    set["f:metadata"] = m;
                }

                continue;
            }

            set["f:" + key] = FieldsOfValue(value, "/" + key);
        }

        return set;
    }

    private static JsonObject FieldsOfValue(JsonNode? value, string path)
    {
        switch (value)
        {
            case JsonObject obj:
                {
                    var set = new JsonObject();
                    foreach (var (k, v) in obj)
                    {
                        set["f:" + k] = FieldsOfValue(v, path + "/" + k);
                    }

                    return set;
                }

            case JsonArray list when Patches.MergeKeys(path) is { } key:
                {
                    var set = new JsonObject();
                    foreach (var item in list)
                    {
                        if (key.Length == 0)
                        {
                            set["v:" + item?.ToJsonString()] = new JsonObject();
                        }
                        else if (item is JsonObject element)
                        {
                            var child = FieldsOfValue(element, path);
                            child["."] = new JsonObject();
                            set["k:" + new JsonObject { [key] = element[key]?.DeepClone() }.ToJsonString()] = child;
                        }
                    }

                    return set;
                }

            default:
                return [];
        }
    }

    /// <summary>Leaf paths of a field set: each a list of FieldsV1 tokens; "." marks a keyed element itself.</summary>
    public static List<List<string>> Leaves(JsonObject? set)
    {
        var result = new List<List<string>>();
        Walk(set, [], result);
        return result;
    }

    private static void Walk(JsonObject? set, List<string> prefix, List<List<string>> result)
    {
        if (set is null)
        {
            return;
        }

        if (set.Count == 0 && prefix.Count > 0)
        {
            result.Add([.. prefix]);
            return;
        }

        foreach (var (k, v) in set)
        {
            Walk(v as JsonObject, [.. prefix, k], result);
        }
    }

    private static string Key(List<string> path) => string.Join("\u0001", path);

    /// <summary>Applies <paramref name="applied"/> for <paramref name="manager"/> to <paramref name="current"/>
    /// (null when the object does not exist yet). Returns the new object with managedFields updated, or throws an
    /// <see cref="ApplyConflictException"/> naming the conflicting fields and their owners.</summary>
    public static JsonObject Apply(JsonObject? current, JsonObject applied, string manager, bool force, string apiVersion, string now)
    {
        var result = current is null ? [] : (JsonObject)current.DeepClone();
        var managed = result["metadata"]?["managedFields"] as JsonArray ?? [];
        var entries = managed.OfType<JsonObject>().Select(e => (JsonObject)e.DeepClone()).ToList();
        var mine = entries.FirstOrDefault(e => e["manager"]?.GetValue<string>() == manager && e["operation"]?.GetValue<string>() == "Apply");
        var newSet = FieldsOf(applied);
        var newLeaves = Leaves(newSet);
        var newKeys = newLeaves.Select(Key).ToHashSet();
        var others = entries.Where(e => e != mine && e["operation"]?.GetValue<string>() == "Apply").ToList();

        // Conflicts: a field another applier owns, to which this configuration gives a different value.
        var conflicts = new List<string>();
        foreach (var other in others)
        {
            var otherLeaves = Leaves(other["fieldsV1"] as JsonObject);
            var kept = new List<List<string>>();
            foreach (var leaf in otherLeaves)
            {
                if (newKeys.Contains(Key(leaf)) && leaf[^1] != "." && !JsonNode.DeepEquals(Navigate(applied, leaf), Navigate(current, leaf)))
                {
                    if (!force)
                    {
                        conflicts.Add($"conflict with \"{other["manager"]}\": {Describe(leaf)}");
                    }

                    continue;
                }

                kept.Add(leaf);
            }

            other["fieldsV1"] = Build(kept);
        }

        if (conflicts.Count > 0)
        {
            throw new ApplyConflictException(conflicts);
        }

        // Fields this manager applied before and no longer names, and nobody else applied, go away.
        if (mine?["fieldsV1"] is JsonObject previous && current is not null)
        {
            var othersKeys = others.SelectMany(o => Leaves(o["fieldsV1"] as JsonObject)).Select(Key).ToHashSet();
            // Whole list elements first, while their merge key is still there to find them by; then single fields (those
            // inside an element already removed find nothing and are skipped).
            foreach (var leaf in Leaves(previous).OrderBy(l => l[^1] == "." ? 0 : 1).ThenByDescending(l => l.Count))
            {
                if (!newKeys.Contains(Key(leaf)) && !othersKeys.Contains(Key(leaf)))
                {
                    RemovePath(result, leaf);
                }
            }
        }

        var body = (JsonObject)applied.DeepClone();
        body.Remove("status");
        if (body["metadata"] is JsonObject bodyMeta)
        {
            bodyMeta.Remove("managedFields");
            bodyMeta.Remove("resourceVersion");
        }

        result = (JsonObject)Patches.StrategicMerge(result, body)!;
        entries.Remove(mine!);
        entries = [.. entries.Where(e => e["operation"]?.GetValue<string>() != "Apply" || Leaves(e["fieldsV1"] as JsonObject).Count > 0)];
        entries.Add(new JsonObject
        {
            ["manager"] = manager,
            ["operation"] = "Apply",
            ["apiVersion"] = apiVersion,
            ["time"] = now,
            ["fieldsType"] = "FieldsV1",
            ["fieldsV1"] = newSet,
        });
        var meta = result["metadata"] as JsonObject ?? [];
        result["metadata"] = meta;
        meta["managedFields"] = new JsonArray([.. entries]);
        return result;
    }

    private static JsonObject Build(List<List<string>> leaves)
    {
        var root = new JsonObject();
        foreach (var leaf in leaves)
        {
            var node = root;
            foreach (var token in leaf)
            {
                if (node[token] is not JsonObject child)
                {
                    child = [];
                    node[token] = child;
                }

                node = child;
            }
        }

        return root;
    }

    private static string Describe(List<string> leaf) =>
        "." + string.Join(".", leaf.Where(t => t != ".").Select(t => t.StartsWith("f:", StringComparison.Ordinal) ? t[2..] : $"[{t[2..]}]"));

    private static JsonNode? Navigate(JsonNode? node, List<string> path)
    {
        foreach (var token in path)
        {
            if (token == ".")
            {
                break;
            }

            node = Step(node, token, out _);
            if (node is null)
            {
                return null;
            }
        }

        return node;
    }

    private static JsonNode? Step(JsonNode? node, string token, out int index)
    {
        index = -1;
        if (token.StartsWith("f:", StringComparison.Ordinal))
        {
            return (node as JsonObject)?[token[2..]];
        }

        if (node is not JsonArray list)
        {
            return null;
        }

        if (token.StartsWith("k:", StringComparison.Ordinal))
        {
            var keys = JsonNode.Parse(token[2..]) as JsonObject ?? [];
            for (var i = 0; i < list.Count; i++)
            {
                if (keys.All(kv => JsonNode.DeepEquals(list[i]?[kv.Key], kv.Value)))
                {
                    index = i;
                    return list[i];
                }
            }

            return null;
        }

        if (token.StartsWith("v:", StringComparison.Ordinal))
        {
            JsonNode? wanted;
            try
            {
                wanted = JsonNode.Parse(token[2..]);
            }
            catch (JsonException)
            {
                return null;
            }

            for (var i = 0; i < list.Count; i++)
            {
                if (JsonNode.DeepEquals(list[i], wanted))
                {
                    index = i;
                    return list[i];
                }
            }
        }

        return null;
    }

    private static void RemovePath(JsonObject root, List<string> path)
    {
        var tokens = path[^1] == "." ? path.Take(path.Count - 1).ToList() : path;
        JsonNode? parent = root;
        for (var i = 0; i < tokens.Count - 1; i++)
        {
            parent = Step(parent, tokens[i], out _);
            if (parent is null)
            {
                return;
            }
        }

        var last = tokens[^1];
        if (last.StartsWith("f:", StringComparison.Ordinal))
        {
            (parent as JsonObject)?.Remove(last[2..]);
        }
        else if (parent is JsonArray list && Step(list, last, out var index) is not null && index >= 0)
        {
            list.RemoveAt(index);
        }
    }
}

internal sealed class ApplyConflictException(IReadOnlyList<string> conflicts) : Exception(
    $"Apply failed with {conflicts.Count} conflict{(conflicts.Count == 1 ? "" : "s")}: {string.Join("; ", conflicts)}")
{
    public IReadOnlyList<string> Conflicts { get; } = conflicts;
}
