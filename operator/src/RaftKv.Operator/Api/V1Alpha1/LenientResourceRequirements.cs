using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace RaftKv.Operator.Api.V1Alpha1;

/// <summary>
/// Resource requirements of a RaftCluster whose quantities did not all parse: the ones that did are kept, the others
/// listed (field path and text) for <see cref="RaftClusterValidator"/>, which refuses the spec naming them.
/// </summary>
internal sealed record UnparsedResourceRequirements : V1ResourceRequirements
{
    public required IReadOnlyList<(string Field, string Text)> Unparsed { get; init; }
}

/// <summary>
/// Reads <c>spec.resources</c> without failing on a quantity the Kubernetes client cannot parse ("banana", "1.5.5").
/// Such a value throws while the whole RaftCluster list or watch event is decoded, so one bad object would hide every
/// RaftCluster from the operator (the informer relists and fails forever). An API server with the CRD's quantity pattern
/// refuses these at admission; this covers an older CRD and objects stored before it. Writing is the client's format.
/// </summary>
internal sealed class LenientResourceRequirementsConverter : JsonConverter<V1ResourceRequirements>
{
    private static readonly string[] Sections = ["requests", "limits"];

    public override V1ResourceRequirements? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var node = JsonNode.Parse(ref reader);
        if (node is not JsonObject obj)
        {
            return node is null ? null : KubernetesJson.Deserialize<V1ResourceRequirements>(node.ToJsonString());
        }

        var unparsed = new List<(string, string)>();
        foreach (var section in Sections)
        {
            if (obj[section] is not JsonObject quantities)
            {
                continue;
            }

            foreach (var (name, value) in quantities.ToList())
            {
                var text = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : value?.ToJsonString() ?? "null";
                if (!Parses(text))
                {
                    unparsed.Add(($"spec.resources.{section}.{name}", text));
                    quantities.Remove(name);
                }
            }
        }

        var parsed = KubernetesJson.Deserialize<V1ResourceRequirements>(obj.ToJsonString());
        return unparsed.Count == 0 ? parsed : new UnparsedResourceRequirements
        {
            Claims = parsed.Claims,
            Limits = parsed.Limits,
            Requests = parsed.Requests,
            Unparsed = unparsed,
        };
    }

    public override void Write(Utf8JsonWriter writer, V1ResourceRequirements value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        using var document = JsonDocument.Parse(KubernetesJson.Serialize(new V1ResourceRequirements { Claims = value.Claims, Limits = value.Limits, Requests = value.Requests }));
        document.WriteTo(writer);
    }

    private static bool Parses(string text)
    {
        try
        {
            _ = new ResourceQuantity(text).ToDecimal();
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return false;
        }
    }
}
