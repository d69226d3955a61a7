using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>A label selector: the query-string form (<c>a=b,c!=d,e in (f,g),h notin (i),j,!k</c>) or the
/// structured form (<c>matchLabels</c>, <c>matchExpressions</c>). Every requirement must hold.</summary>
internal sealed class LabelSelector
{
    private readonly List<Requirement> _requirements;

    private LabelSelector(List<Requirement> requirements) => _requirements = requirements;

    public static LabelSelector Everything { get; } = new([]);

    public bool IsEmpty => _requirements.Count == 0;

    private enum Op
    {
        Equals,
        NotEquals,
        In,
        NotIn,
        Exists,
        DoesNotExist,
    }

    private sealed record Requirement(string Key, Op Op, IReadOnlyList<string> Values);

    public bool Matches(JsonObject? labels)
    {
        foreach (var r in _requirements)
        {
            var has = labels is not null && labels.TryGetPropertyValue(r.Key, out var node) && node is not null;
            var value = has ? labels![r.Key]!.GetValue<string>() : null;
            var ok = r.Op switch
            {
                Op.Equals => has && value == r.Values[0],
                Op.NotEquals => !has || value != r.Values[0],
                Op.In => has && r.Values.Contains(value!),
                Op.NotIn => !has || !r.Values.Contains(value!),
                Op.Exists => has,
                Op.DoesNotExist => !has,
                _ => false,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Parses the query-string form; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static LabelSelector Parse(string? text)
    {
        var list = new List<Requirement>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return new LabelSelector(list);
        }

        var i = 0;
        while (i < text.Length)
        {
            SkipSpaces(text, ref i);
            if (text[i] == '!')
            {
                i++;
                SkipSpaces(text, ref i);
                list.Add(new Requirement(ReadKey(text, ref i), Op.DoesNotExist, []));
            }
            else
            {
                var key = ReadKey(text, ref i);
                SkipSpaces(text, ref i);
                if (i >= text.Length || text[i] == ',')
                {
                    list.Add(new Requirement(key, Op.Exists, []));
                }
                else if (text[i] == '=' || text[i] == '!')
                {
                    var op = Op.Equals;
                    if (text[i] == '!')
                    {
                        op = Op.NotEquals;
                        i++;
                        Expect(text, ref i, '=');
                    }
                    else
                    {
                        i++;
                        if (i < text.Length && text[i] == '=')
                        {
                            i++;
                        }
                    }

                    SkipSpaces(text, ref i);
                    list.Add(new Requirement(key, op, [ReadKey(text, ref i, allowEmpty: true)]));
                }
                else
                {
                    var word = ReadKey(text, ref i);
                    var op = word switch
                    {
                        "in" => Op.In,
                        "notin" => Op.NotIn,
                        _ => throw new FormatException($"unable to parse requirement: found '{word}', expected: in, notin, =, ==, !=, or end of selector"),
                    };
                    SkipSpaces(text, ref i);
                    Expect(text, ref i, '(');
                    var values = new List<string>();
                    while (true)
                    {
                        SkipSpaces(text, ref i);
                        if (i < text.Length && text[i] == ')')
                        {
                            i++;
                            break;
                        }

                        values.Add(ReadKey(text, ref i, allowEmpty: true));
                        SkipSpaces(text, ref i);
                        if (i < text.Length && text[i] == ',')
                        {
                            i++;
                        }
                        else if (i >= text.Length || text[i] != ')')
                        {
                            throw new FormatException($"unable to parse selector '{text}': expected ',' or ')' in the value set");
                        }
                    }

                    list.Add(new Requirement(key, op, values));
                }
            }

            SkipSpaces(text, ref i);
            if (i < text.Length)
            {
                Expect(text, ref i, ',');
            }
        }

        return new LabelSelector(list);
    }

    /// <summary>Builds a selector from a <c>metav1.LabelSelector</c> object; null selects nothing
    /// (as in controllers), an empty object selects everything.</summary>
    public static LabelSelector? FromObject(JsonObject? selector)
    {
        if (selector is null)
        {
            return null;
        }

        var list = new List<Requirement>();
        foreach (var (k, v) in selector["matchLabels"] as JsonObject ?? [])
        {
            list.Add(new Requirement(k, Op.Equals, [v?.GetValue<string>() ?? ""]));
        }

        foreach (var e in selector["matchExpressions"] as JsonArray ?? [])
        {
            var key = e?["key"]?.GetValue<string>() ?? "";
            var values = (e?["values"] as JsonArray ?? []).Select(v => v?.GetValue<string>() ?? "").ToList();
            var op = e?["operator"]?.GetValue<string>() switch
            {
                "In" => Op.In,
                "NotIn" => Op.NotIn,
                "Exists" => Op.Exists,
                "DoesNotExist" => Op.DoesNotExist,
                var other => throw new FormatException($"\"{other}\" is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)"),
            };
            list.Add(new Requirement(key, op, values));
        }

        return new LabelSelector(list);
    }

    /// <summary>Builds a selector that matches a plain map of labels (a Service's or ReplicaSet's selector).</summary>
    public static LabelSelector FromMap(JsonObject? map) =>
        new((map ?? []).Select(kv => new Requirement(kv.Key, Op.Equals, [kv.Value?.GetValue<string>() ?? ""])).ToList());

    private static void SkipSpaces(string s, ref int i)
    {
        while (i < s.Length && s[i] == ' ')
        {
            i++;
        }
    }

    private static void Expect(string s, ref int i, char c)
    {
        if (i >= s.Length || s[i] != c)
        {
            throw new FormatException($"unable to parse selector '{s}': expected '{c}' at position {i}");
        }

        i++;
    }

    private static string ReadKey(string s, ref int i, bool allowEmpty = false)
    {
        var start = i;
        while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] is '-' or '_' or '.' or '/'))
        {
            i++;
        }

        if (i == start && !allowEmpty)
        {
            throw new FormatException($"unable to parse selector '{s}': expected a label key at position {start}");
        }

        return s[start..i];
    }
}

/// <summary>A field selector: <c>metadata.name=x,metadata.namespace!=y</c> (plus a few per-kind fields
/// such as <c>spec.nodeName</c> and <c>status.phase</c> that the runtime uses).</summary>
internal sealed class FieldSelector
{
    private readonly List<(string Path, bool Equal, string Value)> _terms;

    private FieldSelector(List<(string, bool, string)> terms) => _terms = terms;

    private static readonly HashSet<string> Supported =
    [
        "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.schedulerName",
        "involvedObject.name", "involvedObject.kind", "involvedObject.namespace", "involvedObject.uid", "type", "reason",
    ];

    public static FieldSelector Parse(string? text)
    {
        var terms = new List<(string, bool, string)>();
        if (string.IsNullOrWhiteSpace(text))
        {
            return new FieldSelector(terms);
        }

        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ne = part.IndexOf("!=", StringComparison.Ordinal);
            var eq = part.IndexOf('=');
            if (eq < 0)
            {
                throw new FormatException($"invalid field selector term '{part}': expected field=value or field!=value");
            }

            var (path, equal, value) = ne >= 0
                ? (part[..ne], false, part[(ne + 2)..])
                : (part[..eq], true, part[(eq + 1)..].TrimStart('='));
            if (!Supported.Contains(path))
            {
                throw new FormatException($"field label not supported: {path}");
            }

            terms.Add((path, equal, value));
        }

        return new FieldSelector(terms);
    }

    public bool Matches(JsonObject obj)
    {
        foreach (var (path, equal, value) in _terms)
        {
            JsonNode? node = obj;
            foreach (var seg in path.Split('.'))
            {
                node = (node as JsonObject)?[seg];
            }

            var actual = node?.ToString() ?? "";
            if ((actual == value) != equal)
            {
                return false;
            }
        }

        return true;
    }
}
