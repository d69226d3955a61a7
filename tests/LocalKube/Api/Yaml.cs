using System.Globalization;
using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LocalKube.Api;

/// <summary>Reads YAML (server-side apply bodies, manifests) into JSON nodes with YAML 1.2 core-schema typing:
/// plain <c>true</c>/<c>false</c>/<c>null</c>/<c>~</c>/numbers become JSON values, quoted scalars stay strings.</summary>
internal static class Yaml
{
    /// <summary>Parses every document of a stream (empty documents are skipped).</summary>
    public static IReadOnlyList<JsonNode> ParseAll(string text)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new FormatException($"invalid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }

        return stream.Documents.Select(d => Convert(d.RootNode)).OfType<JsonNode>().ToList();
    }

    /// <summary>Parses a single document; JSON is YAML, so JSON text works too.</summary>
    public static JsonNode? Parse(string text) => ParseAll(text) is { Count: > 0 } all ? all[0] : null;

    private static JsonNode? Convert(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", Convert(kv.Value)))),
        YamlSequenceNode seq => new JsonArray(seq.Children.Select(Convert).ToArray()),
        YamlScalarNode scalar => Scalar(scalar),
        _ => null,
    };

    private static JsonValue? Scalar(YamlScalarNode s)
    {
        var v = s.Value ?? "";
        if (s.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted or ScalarStyle.Literal or ScalarStyle.Folded)
        {
            return JsonValue.Create(v);
        }

        switch (v)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                return null;
            case "true" or "True" or "TRUE":
                return JsonValue.Create(true);
            case "false" or "False" or "FALSE":
                return JsonValue.Create(false);
        }

        if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return JsonValue.Create(l);
        }

        if (v.Length > 0 && (char.IsDigit(v[0]) || v[0] is '-' or '+' or '.') &&
            double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && !double.IsInfinity(d))
        {
            return JsonValue.Create(d);
        }

        return JsonValue.Create(v);
    }
}
