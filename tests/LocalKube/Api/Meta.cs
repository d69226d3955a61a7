using System.Globalization;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>Accessors for the <c>metadata</c> of JSON objects.</summary>
internal static class Meta
{
    public static JsonObject Of(JsonObject obj)
    {
        if (obj["metadata"] is not JsonObject meta)
        {
            meta = [];
            obj["metadata"] = meta;
        }

        return meta;
    }

    public static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>A JSON number as long, whatever CLR type the node was built from; null when absent or not a number.</summary>
    public static long? Long(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        && long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : null;

    public static double? Double(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
        && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    public static int? Int(JsonNode? node) => Long(node) is { } l ? (int)l : null;

    public static bool? Bool(JsonNode? node) => node is JsonValue v && v.GetValueKind() is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False ? v.GetValueKind() == System.Text.Json.JsonValueKind.True : null;

    public static string? Name(JsonObject obj) => Str(obj["metadata"]?["name"]);

    public static string? Namespace(JsonObject obj) => Str(obj["metadata"]?["namespace"]);

    public static string? Uid(JsonObject obj) => Str(obj["metadata"]?["uid"]);

    public static long ResourceVersion(JsonObject obj) =>
        long.TryParse(Str(obj["metadata"]?["resourceVersion"]), NumberStyles.None, CultureInfo.InvariantCulture, out var rv) ? rv : 0;

    public static bool IsDeleting(JsonObject obj) => obj["metadata"]?["deletionTimestamp"] is not null;

    public static List<string> Finalizers(JsonObject obj) =>
        (obj["metadata"]?["finalizers"] as JsonArray ?? []).Select(f => f?.GetValue<string>() ?? "").ToList();

    public static void SetFinalizers(JsonObject obj, IEnumerable<string> finalizers)
    {
        var list = finalizers.ToList();
        if (list.Count == 0)
        {
            Of(obj).Remove("finalizers");
        }
        else
        {
            Of(obj)["finalizers"] = new JsonArray(list.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray());
        }
    }

    public static JsonObject? Labels(JsonObject obj) => obj["metadata"]?["labels"] as JsonObject;

    public static IEnumerable<JsonObject> OwnerReferences(JsonObject obj) => (obj["metadata"]?["ownerReferences"] as JsonArray ?? []).OfType<JsonObject>();

    /// <summary>RFC 3339 in seconds, as Kubernetes writes timestamps.</summary>
    public static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
