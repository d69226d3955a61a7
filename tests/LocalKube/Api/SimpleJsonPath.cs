using System.Globalization;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>The JSONPath subset printer columns use: <c>.a.b</c>, <c>.a[0].b</c>, <c>.a[*].b</c> and
/// <c>.a[?(@.type=="Ready")].status</c>. Returns every match (empty when nothing matches).</summary>
internal static class SimpleJsonPath
{
    /// <summary>The first match, or null.</summary>
    public static JsonNode? First(JsonNode? root, string path) => Evaluate(root, path) is { Count: > 0 } all ? all[0] : null;

    public static IReadOnlyList<JsonNode?> Evaluate(JsonNode? root, string path)
    {
        var current = new List<JsonNode?> { root };
        var i = 0;
        path = path.Trim();
        if (path.StartsWith('{') && path.EndsWith('}'))
        {
            path = path[1..^1];
        }

        if (path.StartsWith('$'))
        {
            i = 1;
        }

        while (i < path.Length)
        {
            if (path[i] == '.')
            {
                i++;
                var start = i;
                while (i < path.Length && path[i] != '.' && path[i] != '[')
                {
                    i++;
                }

                var name = path[start..i];
                current = current.Select(n => (n as JsonObject)?[name]).Where(n => n is not null).ToList();
            }
            else if (path[i] == '[')
            {
                var end = FindClose(path, i);
                var inner = path[(i + 1)..end];
                i = end + 1;
                if (inner == "*")
                {
                    current = current.SelectMany(n => n as JsonArray ?? []).ToList();
                }
                else if (int.TryParse(inner, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var index))
                {
                    current = current.Select(n => n is JsonArray a && a.Count > 0 ? a[index < 0 ? a.Count + index : index] : null).Where(n => n is not null).ToList();
                }
                else if (inner.StartsWith("?(@.", StringComparison.Ordinal) && inner.EndsWith(')'))
                {
                    var condition = inner[4..^1];
                    var eq = condition.IndexOf("==", StringComparison.Ordinal);
                    if (eq < 0)
                    {
                        throw new FormatException($"unsupported JSONPath filter '{inner}': only @.field==\"value\" is supported");
                    }

                    var field = condition[..eq].Trim();
                    var literal = condition[(eq + 2)..].Trim().Trim('"', '\'');
                    current = current.SelectMany(n => n as JsonArray ?? [])
                        .Where(e => Evaluate(e, "." + field) is { Count: > 0 } found && found[0]?.ToString() == literal).ToList();
                }
                else
                {
                    var key = inner.Trim('\'', '"');
                    current = current.Select(n => (n as JsonObject)?[key]).Where(n => n is not null).ToList();
                }
            }
            else
            {
                throw new FormatException($"unsupported JSONPath '{path}' at position {i}");
            }
        }

        return current;
    }

    private static int FindClose(string path, int open)
    {
        var depth = 0;
        for (var j = open; j < path.Length; j++)
        {
            if (path[j] == '[')
            {
                depth++;
            }
            else if (path[j] == ']' && --depth == 0)
            {
                return j;
            }
        }

        throw new FormatException($"unbalanced '[' in JSONPath '{path}'");
    }
}
