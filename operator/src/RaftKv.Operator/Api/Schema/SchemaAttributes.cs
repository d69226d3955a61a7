namespace RaftKv.Operator.Api.Schema;

// Attributes read by the CRD generator (Manifests/CrdGenerator). They keep the OpenAPI schema, its
// defaults and its CEL rules next to the C# property they describe, so the types stay the one source
// of truth. The same limits are enforced again in code by RaftClusterValidator.

/// <summary>The description shown by <c>kubectl explain</c>.</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property | AttributeTargets.Enum)]
internal sealed class DescriptionAttribute(string text) : Attribute
{
    public string Text { get; } = text;
}

/// <summary>The value the API server fills in when the field is absent, as a JSON literal (<c>3</c>, <c>"10Gi"</c>, <c>{}</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class DefaultAttribute(string json) : Attribute
{
    public string Json { get; } = json;
}

/// <summary>The field must be present.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class RequiredAttribute : Attribute;

/// <summary>Inclusive lower bound of an integer field.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class MinimumAttribute(long value) : Attribute
{
    public long Value { get; } = value;
}

/// <summary>Inclusive upper bound of an integer field.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class MaximumAttribute(long value) : Attribute
{
    public long Value { get; } = value;
}

/// <summary>
/// The longest a string may be. Bounded strings also keep the API server's CEL cost estimate low: a
/// CRD whose rules may cost too much on unbounded input is rejected by kube-apiserver.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class MaxLengthAttribute(long value) : Attribute
{
    public long Value { get; } = value;
}

/// <summary>A regular expression (ECMA 262 subset, as Kubernetes evaluates it) a string field must match.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class PatternAttribute(string regex) : Attribute
{
    public string Regex { get; } = regex;
}

/// <summary>
/// A CEL rule (<c>x-kubernetes-validations</c>). On a property, <c>self</c> is the property's value; on a
/// class, <c>self</c> is the object wherever the class is used. Rules naming <c>oldSelf</c> are transition
/// rules: the API server checks them on updates only.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Property, AllowMultiple = true)]
internal sealed class ValidationRuleAttribute(string rule, string message) : Attribute
{
    public string Rule { get; } = rule;
    public string Message { get; } = message;

    /// <summary>The machine-readable reason: FieldValueInvalid, FieldValueForbidden, FieldValueRequired or FieldValueDuplicate.</summary>
    public string? Reason { get; init; }

    /// <summary>A JSON path relative to <c>self</c> naming the field the error is reported on, e.g. <c>.electionTimeout</c>.</summary>
    public string? FieldPath { get; init; }
}

/// <summary>A list whose items are identified by the given keys (server-side apply merges them by key).</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class ListMapAttribute(params string[] keys) : Attribute
{
    public IReadOnlyList<string> Keys { get; } = keys;
}

/// <summary>A column of <c>kubectl get</c>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
internal sealed class PrinterColumnAttribute(string name, string type, string jsonPath) : Attribute
{
    public string Name { get; } = name;
    public string Type { get; } = type;
    public string JsonPath { get; } = jsonPath;
    public string? Description { get; init; }

    /// <summary>Columns are listed in ascending order of this number (attribute order is not preserved by reflection).</summary>
    public int Order { get; init; }

    /// <summary>0 shows the column always; higher values only with <c>-o wide</c>.</summary>
    public int Priority { get; init; }
}

/// <summary>The scale subresource, so <c>kubectl scale</c> and autoscalers can set the replica count.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class ScaleSubresourceAttribute(string specReplicasPath, string statusReplicasPath, string labelSelectorPath) : Attribute
{
    public string SpecReplicasPath { get; } = specReplicasPath;
    public string StatusReplicasPath { get; } = statusReplicasPath;
    public string LabelSelectorPath { get; } = labelSelectorPath;
}

/// <summary>Short names and categories accepted by kubectl.</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class ResourceNamesAttribute : Attribute
{
    public string[] ShortNames { get; init; } = [];
    public string[] Categories { get; init; } = [];
}
