using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>OpenAPI v3 as far as kubectl uses it: the index at <c>/openapi/v3</c>, and per group version a document
/// whose PATCH operations carry <c>x-kubernetes-group-version-kind</c> and the <c>fieldValidation</c> query
/// parameter (so kubectl leaves validation to the server), plus the schemas of custom resources (for
/// <c>kubectl explain</c>). PATCH operations list no request body, so kubectl computes strategic merge patches
/// for built-in kinds from its own compiled-in types and JSON merge patches for custom resources, as with a real
/// server. Built-in kinds have no schemas here. OpenAPI v2 is not served.</summary>
internal static class OpenApi
{
    public static JsonObject? Document(ResourceRegistry registry, string[] segments, string host)
    {
        _ = host;
        var groupVersions = registry.All.GroupBy(t => t.Group.Length == 0 ? $"api/{t.Version}" : $"apis/{t.Group}/{t.Version}").ToDictionary(g => g.Key, g => g.ToList());
        if (segments is ["openapi", "v3"])
        {
            var paths = new JsonObject();
            foreach (var (gv, types) in groupVersions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(GroupVersionDocument(types).ToJsonString())))[..32];
                paths[gv] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{gv}?hash={hash}" };
            }

            return new JsonObject { ["paths"] = paths };
        }

        if (segments.Length >= 3 && segments[0] == "openapi" && segments[1] == "v3")
        {
            var gv = string.Join('/', segments[2..]);
            return groupVersions.TryGetValue(gv, out var types) ? GroupVersionDocument(types) : null;
        }

        return null;
    }

    private static JsonObject GroupVersionDocument(List<ResourceType> types)
    {
        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (var t in types)
        {
            var prefix = t.Group.Length == 0 ? $"/api/{t.Version}" : $"/apis/{t.Group}/{t.Version}";
            var item = t.Namespaced ? $"{prefix}/namespaces/{{namespace}}/{t.Plural}/{{name}}" : $"{prefix}/{t.Plural}/{{name}}";
            var gvk = new JsonObject { ["group"] = t.Group, ["version"] = t.Version, ["kind"] = t.Kind };
            var parameters = new JsonArray(
                Param("dryRun"), Param("fieldManager"), Param("fieldValidation"), Param("force"));
            paths[item] = new JsonObject
            {
                ["get"] = new JsonObject { ["operationId"] = $"read{t.Kind}", ["x-kubernetes-action"] = "get", ["x-kubernetes-group-version-kind"] = gvk.DeepClone(), ["responses"] = Ok(t) },
                ["patch"] = new JsonObject
                {
                    ["operationId"] = $"patch{t.Kind}",
                    ["x-kubernetes-action"] = "patch",
                    ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
                    ["parameters"] = parameters,
                    ["responses"] = Ok(t),
                },
            };
            if (t.Schema is not null)
            {
                var schema = (JsonObject)t.Schema.DeepClone();
                schema["x-kubernetes-group-version-kind"] = new JsonArray(gvk.DeepClone());
                schemas[SchemaName(t)] = schema;
            }
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.33.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    private static JsonObject Param(string name) => new()
    {
        ["name"] = name,
        ["in"] = "query",
        ["schema"] = new JsonObject { ["type"] = "string", ["uniqueItems"] = true },
    };

    private static JsonObject Ok(ResourceType t) => new()
    {
        ["200"] = new JsonObject
        {
            ["description"] = "OK",
            ["content"] = t.Schema is null ? new JsonObject() : new JsonObject
            {
                ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["$ref"] = "#/components/schemas/" + SchemaName(t) } },
            },
        },
    };

    private static string SchemaName(ResourceType t) =>
        string.Join('.', t.Group.Split('.').Reverse()) + $".{t.Version}.{t.Kind}";
}
