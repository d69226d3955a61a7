using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>Legacy discovery documents: <c>/api</c>, <c>/apis</c>, <c>/apis/GROUP</c> and the resource lists
/// of each group version. (Clients that ask for aggregated discovery fall back to these.)</summary>
internal static class Discovery
{
    public static JsonObject CoreVersions(string serverAddress) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = serverAddress }),
    };

    private static IEnumerable<IGrouping<string, ResourceType>> Groups(ResourceRegistry registry) =>
        registry.All.Where(t => t.Group.Length > 0).GroupBy(t => t.Group).OrderBy(g => g.Key, StringComparer.Ordinal);

    private static JsonObject Group(IGrouping<string, ResourceType> g)
    {
        var versions = g.Select(t => t.Version).Distinct().OrderByDescending(VersionPriority).ToList();
        var list = new JsonArray(versions.Select(v => (JsonNode?)new JsonObject { ["groupVersion"] = $"{g.Key}/{v}", ["version"] = v }).ToArray());
        return new JsonObject
        {
            ["name"] = g.Key,
            ["versions"] = list,
            ["preferredVersion"] = new JsonObject { ["groupVersion"] = $"{g.Key}/{versions[0]}", ["version"] = versions[0] },
        };
    }

    /// <summary>Kubernetes version priority: GA before beta before alpha, higher numbers first.</summary>
    public static int VersionPriority(string version)
    {
        var m = System.Text.RegularExpressions.Regex.Match(version, "^v(\\d+)(?:(alpha|beta)(\\d+))?$");
        if (!m.Success)
        {
            return 0;
        }

        var major = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var stage = m.Groups[2].Value switch { "" => 3, "beta" => 2, _ => 1 };
        var minor = m.Groups[3].Success ? int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return (stage * 1000 + major) * 1000 + minor;
    }

    public static JsonObject GroupList(ResourceRegistry registry) => new()
    {
        ["kind"] = "APIGroupList",
        ["apiVersion"] = "v1",
        ["groups"] = new JsonArray(Groups(registry).Select(g => (JsonNode?)Group(g)).ToArray()),
    };

    public static JsonObject? GroupDocument(ResourceRegistry registry, string group)
    {
        var g = Groups(registry).FirstOrDefault(x => x.Key == group);
        if (g is null)
        {
            return null;
        }

        var doc = Group(g);
        doc["kind"] = "APIGroup";
        doc["apiVersion"] = "v1";
        return doc;
    }

    public static JsonObject? ResourceList(ResourceRegistry registry, string group, string version)
    {
        var types = registry.All.Where(t => t.Group == group && t.Version == version).ToList();
        if (types.Count == 0)
        {
            return null;
        }

        var resources = new JsonArray();
        foreach (var t in types)
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = new JsonArray(t.Verbs.Select(v => (JsonNode?)v).ToArray()),
            };
            if (t.ShortNames.Count > 0)
            {
                r["shortNames"] = new JsonArray(t.ShortNames.Select(v => (JsonNode?)v).ToArray());
            }

            if (t.Categories.Count > 0)
            {
                r["categories"] = new JsonArray(t.Categories.Select(v => (JsonNode?)v).ToArray());
            }

            resources.Add(r);
            if (t.HasStatus)
            {
                resources.Add(new JsonObject { ["name"] = t.Plural + "/status", ["singularName"] = "", ["namespaced"] = t.Namespaced, ["kind"] = t.Kind, ["verbs"] = new JsonArray("get", "patch", "update") });
            }

            if (t.Scale is not null)
            {
                resources.Add(new JsonObject { ["name"] = t.Plural + "/scale", ["singularName"] = "", ["namespaced"] = t.Namespaced, ["group"] = "autoscaling", ["version"] = "v1", ["kind"] = "Scale", ["verbs"] = new JsonArray("get", "patch", "update") });
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };
    }
}
