using System.Collections;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s.Models;
using RaftKv.Operator.Api.Schema;

namespace RaftKv.Operator.Manifests;

/// <summary>
/// Builds a structural OpenAPI v3 schema (what a CRD's <c>openAPIV3Schema</c> must be) from C# types by
/// reflection: JSON names from <see cref="JsonPropertyNameAttribute"/>, everything else from the
/// attributes in <see cref="Api.Schema"/>. Kubernetes model types (tolerations, resource requirements,
/// conditions) are walked the same way, without descriptions. Properties are emitted in name order so
/// the output is stable.
/// </summary>
internal static class SchemaGenerator
{
    /// <summary>A Kubernetes quantity (sign, number, then a binary or decimal suffix or an exponent), as kube-apiserver parses it.</summary>
    public const string QuantityPattern = @"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

    public static V1JSONSchemaProps ForType(Type type) => ForType(type, []);

    private static V1JSONSchemaProps ForType(Type type, HashSet<Type> visiting)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;

        if (type == typeof(string))
        {
            return new V1JSONSchemaProps { Type = "string" };
        }

        if (type == typeof(bool))
        {
            return new V1JSONSchemaProps { Type = "boolean" };
        }

        if (type == typeof(int))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int32" };
        }

        if (type == typeof(long))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int64" };
        }

        if (type == typeof(double) || type == typeof(float))
        {
            return new V1JSONSchemaProps { Type = "number", Format = type == typeof(double) ? "double" : "float" };
        }

        if (type == typeof(DateTime) || type == typeof(DateTimeOffset))
        {
            return new V1JSONSchemaProps { Type = "string", Format = "date-time" };
        }

        if (type == typeof(ResourceQuantity))
        {
            // As Kubernetes' own CRD generator writes quantities: a string must look like one (the pattern applies to strings only).
            return new V1JSONSchemaProps { XKubernetesIntOrString = true, Pattern = QuantityPattern };
        }

        if (type == typeof(IntOrString))
        {
            // Structural schemas express "integer or string" with this extension and no type.
            return new V1JSONSchemaProps { XKubernetesIntOrString = true };
        }

        if (type.IsEnum)
        {
            return new V1JSONSchemaProps
            {
                Type = "string",
                EnumProperty = [.. Enum.GetNames(type).Cast<object>()],
                Description = type.GetCustomAttribute<DescriptionAttribute>()?.Text,
            };
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            return new V1JSONSchemaProps { Type = "object", AdditionalProperties = ForType(valueType, visiting) };
        }

        if (ListItemType(type) is { } itemType)
        {
            return new V1JSONSchemaProps { Type = "array", Items = ForType(itemType, visiting) };
        }

        if (type == typeof(V1ObjectMeta))
        {
            // The API server owns metadata's schema; a CRD may only say it is an object.
            return new V1JSONSchemaProps { Type = "object" };
        }

        if (!type.IsClass || type == typeof(object))
        {
            throw new NotSupportedException($"the CRD generator cannot map {type} to an OpenAPI schema");
        }

        if (!visiting.Add(type))
        {
            throw new NotSupportedException($"{type} refers to itself; CRD schemas cannot be recursive");
        }

        var schema = new V1JSONSchemaProps
        {
            Type = "object",
            Description = type.GetCustomAttribute<DescriptionAttribute>()?.Text,
            Properties = new SortedDictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal),
        };
        var required = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is { Condition: JsonIgnoreCondition.Always }
                || property.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
                ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            schema.Properties[name] = ForProperty(property, visiting);
            if (property.GetCustomAttribute<RequiredAttribute>() is not null)
            {
                required.Add(name);
            }
        }

        schema.Required = required.Count > 0 ? [.. required] : null;
        schema.XKubernetesValidations = Rules(type.GetCustomAttributes<ValidationRuleAttribute>());
        visiting.Remove(type);
        return schema;
    }

    private static V1JSONSchemaProps ForProperty(PropertyInfo property, HashSet<Type> visiting)
    {
        var schema = ForType(property.PropertyType, visiting);
        if (property.GetCustomAttribute<DescriptionAttribute>() is { } description)
        {
            schema.Description = description.Text;
        }

        if (property.GetCustomAttribute<DefaultAttribute>() is { } defaultValue)
        {
            schema.DefaultProperty = FromJson(JsonDocument.Parse(defaultValue.Json).RootElement);
        }

        schema.Minimum = property.GetCustomAttribute<MinimumAttribute>()?.Value;
        schema.Maximum = property.GetCustomAttribute<MaximumAttribute>()?.Value;
        schema.Pattern = property.GetCustomAttribute<PatternAttribute>()?.Regex;
        schema.MaxLength = property.GetCustomAttribute<MaxLengthAttribute>()?.Value;
        if (property.GetCustomAttribute<ListMapAttribute>() is { } listMap)
        {
            schema.XKubernetesListType = "map";
            schema.XKubernetesListMapKeys = [.. listMap.Keys];

            // The API server accepts a list-map only if every key field is required (or defaulted).
            var item = (V1JSONSchemaProps)schema.Items;
            item.Required = [.. (item.Required ?? []).Union(listMap.Keys).Order(StringComparer.Ordinal)];
        }

        // Rules on the property come after the rules of its type (a type's rules hold wherever it is used).
        var rules = (schema.XKubernetesValidations ?? []).Concat(Rules(property.GetCustomAttributes<ValidationRuleAttribute>()) ?? []).ToList();
        schema.XKubernetesValidations = rules.Count > 0 ? rules : null;
        return schema;
    }

    private static List<V1ValidationRule>? Rules(IEnumerable<ValidationRuleAttribute> attributes)
    {
        var rules = attributes
            .Select(a => new V1ValidationRule { Rule = a.Rule, Message = a.Message, Reason = a.Reason, FieldPath = a.FieldPath })
            .OrderBy(r => r.Rule, StringComparer.Ordinal)
            .ToList();
        return rules.Count > 0 ? rules : null;
    }

    /// <summary>JSON literal → plain values (long, double, string, bool, dictionaries, lists) the YAML writer emits as they are.</summary>
    private static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.TryGetInt64(out var integer) ? integer : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static Type? DictionaryValueType(Type type)
    {
        var dictionary = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IDictionary<,>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>));
        if (dictionary is null)
        {
            return null;
        }

        var arguments = dictionary.GetGenericArguments();
        return arguments[0] == typeof(string)
            ? arguments[1]
            : throw new NotSupportedException($"{type}: only maps with string keys can be expressed in a CRD schema");
    }

    private static Type? ListItemType(Type type)
    {
        if (type == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(type))
        {
            return null;
        }

        if (type.IsArray)
        {
            return type.GetElementType();
        }

        var enumerable = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IEnumerable<>)
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>));
        return enumerable?.GetGenericArguments()[0];
    }
}
