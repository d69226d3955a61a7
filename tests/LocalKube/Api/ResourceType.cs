using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>One column of <c>kubectl get</c> output: a JSONPath into the object, or a computed cell.</summary>
internal sealed record PrinterColumn(string Name, string Type, string JsonPath, int Priority = 0, string Description = "", string Format = "")
{
    /// <summary>Computes the cell for built-in columns that no JSONPath expresses (pod READY, service PORT(S)).</summary>
    public Func<JsonObject, JsonNode?>? Compute { get; init; }
}

/// <summary>Where a resource keeps its replica count, for the scale subresource.</summary>
internal sealed record ScaleSubresource(string SpecReplicasPath, string StatusReplicasPath, string? LabelSelectorPath);

/// <summary>A served resource in one group version: its names, scope, subresources and printer columns.
/// Objects of all versions of a resource share one storage key, <c>group/plural</c>.</summary>
internal sealed record ResourceType(string Group, string Version, string Kind, string Plural, string Singular, bool Namespaced)
{
    public IReadOnlyList<string> ShortNames { get; init; } = [];

    public IReadOnlyList<string> Categories { get; init; } = [];

    /// <summary>True when status is a subresource: the main resource ignores status changes and
    /// <c>/status</c> changes only status; generation counts spec changes.</summary>
    public bool HasStatus { get; init; }

    public ScaleSubresource? Scale { get; init; }

    /// <summary>Extra columns after NAME (AGE is added for every resource unless listed).</summary>
    public IReadOnlyList<PrinterColumn> Columns { get; init; } = [];

    /// <summary>Set for resources defined by a CustomResourceDefinition: the CRD's name.</summary>
    public string? DefinedBy { get; init; }

    /// <summary>The version's OpenAPI v3 schema (for custom resources).</summary>
    public JsonObject? Schema { get; init; }

    /// <summary>Whether objects carry metadata.generation (true for anything with a spec).</summary>
    public bool TracksGeneration { get; init; }

    /// <summary>The verbs advertised in discovery.</summary>
    public IReadOnlyList<string> Verbs { get; init; } = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    public string StorageKey => $"{Group}/{Plural}";

    /// <summary>The name used in error messages, as the real server prints it: <c>statefulsets.apps</c>.</summary>
    public string QualifiedPlural => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    public string ListKind => Kind + "List";

    public bool IsCustom => DefinedBy is not null;
}
