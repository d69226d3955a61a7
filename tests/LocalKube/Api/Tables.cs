using System.Globalization;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>Server-side printing: the <c>meta.k8s.io/v1 Table</c> that <c>kubectl get</c> asks for with
/// <c>Accept: application/json;as=Table</c>.</summary>
internal static class Tables
{
    /// <summary>True when the Accept header asks for a Table.</summary>
    public static bool Wanted(string? accept) =>
        accept is not null && accept.Contains("as=Table", StringComparison.Ordinal);

    private static List<PrinterColumn> ColumnsOf(ResourceType type)
    {
        var columns = new List<PrinterColumn> { new("Name", "string", ".metadata.name") { Description = "Name must be unique within a namespace." } };
        columns.AddRange(type.Columns);
        if (!type.Columns.Any(c => c.JsonPath == ".metadata.creationTimestamp" || c.Name == "Age"))
        {
            columns.Add(new PrinterColumn("Age", "date", ".metadata.creationTimestamp"));
        }

        return columns;
    }

    public static JsonObject Build(ResourceType type, IEnumerable<JsonObject> objects, string resourceVersion, string? includeObject, DateTimeOffset now, bool withColumns = true, string? continueToken = null)
    {
        var columns = ColumnsOf(type);
        var definitions = new JsonArray();
        if (withColumns)
        {
            foreach (var c in columns)
            {
                definitions.Add(new JsonObject
                {
                    ["name"] = c.Name,
                    ["type"] = c.Type == "date" ? "string" : c.Type,
                    ["format"] = c.Name == "Name" ? "name" : c.Format,
                    ["description"] = c.Description,
                    ["priority"] = c.Priority,
                });
            }
        }

        var rows = new JsonArray();
        foreach (var o in objects)
        {
            var cells = new JsonArray();
            foreach (var c in columns)
            {
                cells.Add(Cell(c, o, now));
            }

            var row = new JsonObject { ["cells"] = cells };
            switch (includeObject)
            {
                case "None":
                    break;
                case "Object":
                    row["object"] = o.DeepClone();
                    break;
                default:
                    row["object"] = new JsonObject
                    {
                        ["kind"] = "PartialObjectMetadata",
                        ["apiVersion"] = "meta.k8s.io/v1",
                        ["metadata"] = o["metadata"]?.DeepClone(),
                    };
                    break;
            }

            rows.Add(row);
        }

        var meta = new JsonObject { ["resourceVersion"] = resourceVersion };
        if (continueToken is not null)
        {
            meta["continue"] = continueToken;
        }

        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = meta,
            ["columnDefinitions"] = definitions,
            ["rows"] = rows,
        };
    }

    private static JsonNode? Cell(PrinterColumn c, JsonObject o, DateTimeOffset now)
    {
        JsonNode? value;
        if (c.Compute is not null)
        {
            value = c.Compute(o);
        }
        else
        {
            var matches = SimpleJsonPath.Evaluate(o, c.JsonPath);
            value = matches.Count switch
            {
                0 => null,
                1 => matches[0]?.DeepClone(),
                _ => string.Join(",", matches.Select(m => m?.ToString())),
            };
        }

        if (c.Type == "date" && value is JsonValue v && DateTimeOffset.TryParse(v.ToString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
        {
            return HumanDuration(now - t);
        }

        return value switch
        {
            null => c.Type is "integer" or "number" ? null : "<none>",
            JsonValue => value,
            _ => value.ToJsonString(),
        };
    }

    /// <summary>Ages as kubectl prints them: 45s, 5m10s, 3h, 2d.</summary>
    public static string HumanDuration(TimeSpan d)
    {
        if (d < TimeSpan.Zero)
        {
            d = TimeSpan.Zero;
        }

        var s = (long)d.TotalSeconds;
        return s switch
        {
            < 120 => $"{s}s",
            < 600 => $"{s / 60}m{(s % 60 == 0 ? "" : s % 60 + "s")}",
            < 3 * 3600 => $"{s / 60}m",
            < 8 * 3600 => $"{s / 3600}h{(s / 60 % 60 == 0 ? "" : s / 60 % 60 + "m")}",
            < 48 * 3600 => $"{s / 3600}h",
            < 8L * 24 * 3600 => $"{s / 86400}d{(s / 3600 % 24 == 0 ? "" : s / 3600 % 24 + "h")}",
            _ => $"{s / 86400}d",
        };
    }
}
