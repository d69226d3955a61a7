using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LocalKube.Api;

namespace LocalKube.Validation;

/// <summary>Structural-schema handling of custom resources, in the order kube-apiserver applies it: defaulting
/// (<c>default</c>), pruning of fields the schema does not declare (unless
/// <c>x-kubernetes-preserve-unknown-fields</c>), then validation (types, enum, bounds, lengths, pattern, required,
/// item counts) and the CEL rules in <c>x-kubernetes-validations</c>, including transition rules that use
/// <c>oldSelf</c> (checked on updates only, where an old value exists).</summary>
internal static class SchemaValidator
{
    /// <summary>Applies defaults in place.</summary>
    public static void Default(JsonNode? node, JsonObject schema)
    {
        if (node is JsonObject obj)
        {
            foreach (var (name, propSchema) in schema["properties"] as JsonObject ?? [])
            {
                if (propSchema is not JsonObject ps)
                {
                    continue;
                }

                if ((!obj.ContainsKey(name) || (obj[name] is null && ps["nullable"]?.GetValueKind() != JsonValueKind.True)) && ps["default"] is { } d)
                {
                    obj[name] = d.DeepClone();
                }

                if (obj[name] is { } child)
                {
                    Default(child, ps);
                }
            }

            if (schema["additionalProperties"] is JsonObject additional)
            {
                foreach (var (_, value) in obj.ToList())
                {
                    Default(value, additional);
                }
            }
        }
        else if (node is JsonArray arr && schema["items"] is JsonObject items)
        {
            foreach (var item in arr)
            {
                Default(item, items);
            }
        }
    }

    /// <summary>Removes undeclared fields in place; returns their paths (for strict field validation).</summary>
    public static List<string> Prune(JsonNode? node, JsonObject schema, string path)
    {
        var pruned = new List<string>();
        PruneInto(node, schema, path, pruned);
        return pruned;
    }

    private static bool Preserves(JsonObject schema) =>
        schema["x-kubernetes-preserve-unknown-fields"]?.GetValueKind() == JsonValueKind.True
        || schema["x-kubernetes-embedded-resource"]?.GetValueKind() == JsonValueKind.True
        || schema["x-kubernetes-int-or-string"]?.GetValueKind() == JsonValueKind.True;

    private static void PruneInto(JsonNode? node, JsonObject schema, string path, List<string> pruned)
    {
        if (node is JsonObject obj)
        {
            var properties = schema["properties"] as JsonObject;
            var additional = schema["additionalProperties"];
            foreach (var (name, value) in obj.ToList())
            {
                var childPath = path.Length == 0 ? name : $"{path}.{name}";
                if (properties?[name] is JsonObject ps)
                {
                    PruneInto(value, ps, childPath, pruned);
                }
                else if (additional is JsonObject additionalSchema)
                {
                    PruneInto(value, additionalSchema, childPath, pruned);
                }
                else if (additional?.GetValueKind() == JsonValueKind.True || Preserves(schema))
                {
                    continue;
                }
                else
                {
                    obj.Remove(name);
                    pruned.Add(childPath);
                }
            }
        }
        else if (node is JsonArray arr && schema["items"] is JsonObject items)
        {
            for (var i = 0; i < arr.Count; i++)
            {
                PruneInto(arr[i], items, $"{path}[{i}]", pruned);
            }
        }
    }

    /// <summary>Validates <paramref name="node"/> (and its old value, for transition rules) against a schema.</summary>
    public static List<FieldError> Validate(JsonNode? node, JsonNode? oldNode, bool hasOld, JsonObject schema, string path)
    {
        var errors = new List<FieldError>();
        ValidateInto(node, oldNode, hasOld, schema, path, errors);
        return errors;
    }

    private static string Show(JsonNode? v) => v is JsonValue jv && jv.GetValueKind() == JsonValueKind.String ? $"\"{jv}\"" : v?.ToJsonString() ?? "null";

    private static void ValidateInto(JsonNode? node, JsonNode? oldNode, bool hasOld, JsonObject schema, string path, List<FieldError> errors)
    {
        var label = path.Length == 0 ? "<root>" : path;
        if (node is null)
        {
            if (schema["nullable"]?.GetValueKind() != JsonValueKind.True && schema["type"] is not null)
            {
                errors.Add(new FieldError(label, $"Invalid value: \"null\": {label} in body must be of type {schema["type"]}: \"null\""));
            }

            return;
        }

        var type = Meta.Str(schema["type"]);
        var intOrString = schema["x-kubernetes-int-or-string"]?.GetValueKind() == JsonValueKind.True;
        var kind = node.GetValueKind();
        var typeOk = intOrString
            ? kind is JsonValueKind.String || (kind == JsonValueKind.Number && IsInteger(node))
            : type switch
            {
                null => true,
                "object" => kind == JsonValueKind.Object,
                "array" => kind == JsonValueKind.Array,
                "string" => kind == JsonValueKind.String,
                "integer" => kind == JsonValueKind.Number && IsInteger(node),
                "number" => kind == JsonValueKind.Number,
                "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
                _ => true,
            };
        if (!typeOk)
        {
            var actual = kind switch { JsonValueKind.Object => "object", JsonValueKind.Array => "array", JsonValueKind.String => "string", JsonValueKind.Number => IsInteger(node) ? "integer" : "number", _ => "boolean" };
            errors.Add(new FieldError(label, $"Invalid value: \"{actual}\": {label} in body must be of type {(intOrString ? "integer or string" : type)}: \"{actual}\"", "FieldValueTypeInvalid"));
            return;
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, node)))
        {
            errors.Add(new FieldError(label, $"Unsupported value: {Show(node)}: supported values: {string.Join(", ", allowed.Select(Show))}", "FieldValueNotSupported"));
        }

        if (kind == JsonValueKind.Number)
        {
            var value = Meta.Double(node) ?? 0;
            if (schema["minimum"] is { } min && (value < (Meta.Double(min) ?? 0) || (schema["exclusiveMinimum"]?.GetValueKind() == JsonValueKind.True && value == (Meta.Double(min) ?? 0))))
            {
                errors.Add(new FieldError(label, $"Invalid value: {node.ToJsonString()}: {label} in body should be greater than or equal to {min.ToJsonString()}"));
            }

            if (schema["maximum"] is { } max && (value > (Meta.Double(max) ?? 0) || (schema["exclusiveMaximum"]?.GetValueKind() == JsonValueKind.True && value == (Meta.Double(max) ?? 0))))
            {
                errors.Add(new FieldError(label, $"Invalid value: {node.ToJsonString()}: {label} in body should be less than or equal to {max.ToJsonString()}"));
            }

            if (schema["multipleOf"] is { } mult && Math.Abs(Math.IEEERemainder(value, (Meta.Double(mult) ?? 0))) > 1e-9)
            {
                errors.Add(new FieldError(label, $"Invalid value: {node.ToJsonString()}: {label} in body should be a multiple of {mult.ToJsonString()}"));
            }
        }

        if (kind == JsonValueKind.String)
        {
            var s = node.GetValue<string>();
            if (Meta.Long(schema["minLength"]) is { } minLength && s.Length < minLength)
            {
                errors.Add(new FieldError(label, $"Invalid value: {Show(node)}: {label} in body should be at least {minLength} chars long"));
            }

            if (Meta.Long(schema["maxLength"]) is { } maxLength && s.Length > maxLength)
            {
                errors.Add(new FieldError(label, $"Too long: may not be more than {maxLength} bytes", "FieldValueTooLong"));
            }

            if (Meta.Str(schema["pattern"]) is { } pattern && !Regex.IsMatch(s, pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))
            {
                errors.Add(new FieldError(label, $"Invalid value: {Show(node)}: {label} in body should match '{pattern}'"));
            }
        }

        if (node is JsonObject obj)
        {
            foreach (var required in schema["required"] as JsonArray ?? [])
            {
                var name = Meta.Str(required) ?? "";
                if (!obj.ContainsKey(name))
                {
                    errors.Add(new FieldError(path.Length == 0 ? name : $"{path}.{name}", "Required value", "FieldValueRequired"));
                }
            }

            if (Meta.Long(schema["maxProperties"]) is { } maxProps && obj.Count > maxProps)
            {
                errors.Add(new FieldError(label, $"Too many: {obj.Count}: must have at most {maxProps} items", "FieldValueTooMany"));
            }

            var properties = schema["properties"] as JsonObject;
            foreach (var (name, value) in obj)
            {
                var childSchema = properties?[name] as JsonObject ?? schema["additionalProperties"] as JsonObject;
                if (childSchema is not null)
                {
                    var oldObj = oldNode as JsonObject;
                    var childHasOld = hasOld && oldObj is not null && oldObj.ContainsKey(name);
                    ValidateInto(value, childHasOld ? oldObj![name] : null, childHasOld, childSchema, path.Length == 0 ? name : $"{path}.{name}", errors);
                }
            }
        }

        if (node is JsonArray arr)
        {
            if (Meta.Long(schema["minItems"]) is { } minItems && arr.Count < minItems)
            {
                errors.Add(new FieldError(label, $"Invalid value: {arr.Count}: {label} in body should have at least {minItems} items"));
            }

            if (Meta.Long(schema["maxItems"]) is { } maxItems && arr.Count > maxItems)
            {
                errors.Add(new FieldError(label, $"Too many: {arr.Count}: must have at most {maxItems} items", "FieldValueTooMany"));
            }

            if (schema["items"] is JsonObject items)
            {
                for (var i = 0; i < arr.Count; i++)
                {
                    // Items have no old value for transition rules (only map-keyed lists correlate; not modelled).
                    ValidateInto(arr[i], null, false, items, $"{path}[{i}]", errors);
                }
            }
        }

        foreach (var rule in schema["x-kubernetes-validations"] as JsonArray ?? [])
        {
            if (rule is JsonObject r)
            {
                CheckRule(r, node, oldNode, hasOld, label, errors);
            }
        }
    }

    private static bool IsInteger(JsonNode node)
    {
        var text = node.ToJsonString();
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)
            || (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && Math.Abs(d % 1) == 0 && !text.Contains('.', StringComparison.Ordinal));
    }

    private static void CheckRule(JsonObject rule, JsonNode node, JsonNode? oldNode, bool hasOld, string label, List<FieldError> errors)
    {
        var expression = Meta.Str(rule["rule"]) ?? "";
        var field = Meta.Str(rule["fieldPath"]) is { } fp ? label + fp : label;
        var reason = Meta.Str(rule["reason"]) ?? "FieldValueInvalid";
        Cel.CelNode parsed;
        try
        {
            parsed = Cel.Parse(expression);
        }
        catch (CelException e)
        {
            errors.Add(new FieldError(label, $"Invalid value: \"object\": rule compile error: {e.Message}", "FieldValueInvalid"));
            return;
        }

        var usesOld = expression.Contains("oldSelf", StringComparison.Ordinal);
        if (usesOld && !hasOld && rule["optionalOldSelf"]?.GetValueKind() != JsonValueKind.True)
        {
            // A transition rule applies to updates of an existing value only.
            return;
        }

        var variables = new Dictionary<string, object?> { ["self"] = Cel.FromJson(node), ["oldSelf"] = hasOld ? Cel.FromJson(oldNode) : null };
        object? result;
        try
        {
            result = parsed.Evaluate(new Cel.Scope(variables, null));
        }
        catch (CelException e)
        {
            errors.Add(new FieldError(field, $"Invalid value: \"object\": {e.Message} evaluating rule: {expression}", reason));
            return;
        }

        if (result is not true)
        {
            var message = Meta.Str(rule["message"]);
            if (Meta.Str(rule["messageExpression"]) is { } messageExpression)
            {
                try
                {
                    message = Cel.Parse(messageExpression).Evaluate(new Cel.Scope(variables, null)) as string ?? message;
                }
                catch (CelException)
                {
                    // Fall back to message or the rule text, as kube-apiserver does.
                }
            }

            var shown = node is JsonValue ? Show(node) : $"\"{(node is JsonArray ? "array" : "object")}\"";
            errors.Add(new FieldError(field, $"Invalid value: {shown}: {message ?? "failed rule: " + expression}", reason));
        }
    }
}
