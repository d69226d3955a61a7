using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LocalKube.Validation;

/// <summary>A CEL expression could not be parsed or evaluated (no such field, wrong types, unknown function).</summary>
internal sealed class CelException(string message) : Exception(message);

/// <summary>The subset of the Common Expression Language that CRD <c>x-kubernetes-validations</c> rules use:
/// literals (int, double, string, bool, null, lists), <c>self</c>/<c>oldSelf</c> and field selection, indexing,
/// arithmetic (<c>+ - * / %</c>), comparisons, <c>&amp;&amp; || !</c>, <c>?:</c>, <c>in</c>, <c>has()</c>,
/// <c>size()</c>, string functions (<c>startsWith endsWith contains matches</c>), conversions (<c>int string
/// double duration</c>) and the macros <c>all exists exists_one filter map</c>. Values are JSON nodes (objects
/// and arrays) or CLR values (long, double, string, bool, null, TimeSpan, lists).</summary>
internal static class Cel
{
    /// <summary>Parses <paramref name="expression"/>; throws <see cref="CelException"/> on a syntax error.</summary>
    public static CelNode Parse(string expression) => new Parser(expression).ParseAll();

    /// <summary>Parses and evaluates an expression with the given variables.</summary>
    public static object? Evaluate(string expression, IReadOnlyDictionary<string, object?> variables) =>
        Parse(expression).Evaluate(new Scope(variables, null));

    /// <summary>Converts a JSON node to the evaluator's value form (numbers become long or double).</summary>
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v => v.GetValueKind() switch
        {
            System.Text.Json.JsonValueKind.String => v.ToString(),
            System.Text.Json.JsonValueKind.True => true,
            System.Text.Json.JsonValueKind.False => false,
            System.Text.Json.JsonValueKind.Number => long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? (object)l : double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
            _ => null,
        },
        _ => node,
    };

    internal sealed class Scope(IReadOnlyDictionary<string, object?> variables, Scope? parent)
    {
        public bool TryGet(string name, out object? value)
        {
            if (variables.TryGetValue(name, out value))
            {
                return true;
            }

            if (parent is not null)
            {
                return parent.TryGet(name, out value);
            }

            value = null;
            return false;
        }

        public Scope With(string name, object? value) => new(new Dictionary<string, object?> { [name] = value }, this);
    }

    /// <summary>A parsed expression.</summary>
    internal abstract record CelNode
    {
        public abstract object? Evaluate(Scope scope);
    }

    private sealed record Literal(object? Value) : CelNode
    {
        public override object? Evaluate(Scope scope) => Value;
    }

    private sealed record Identifier(string Name) : CelNode
    {
        public override object? Evaluate(Scope scope) =>
            scope.TryGet(Name, out var v) ? v : throw new CelException($"undeclared reference to '{Name}'");
    }

    private sealed record ListLiteral(IReadOnlyList<CelNode> Items) : CelNode
    {
        public override object? Evaluate(Scope scope) => Items.Select(i => i.Evaluate(scope)).ToList();
    }

    private sealed record Select(CelNode Target, string Field) : CelNode
    {
        public override object? Evaluate(Scope scope) => Target.Evaluate(scope) switch
        {
            JsonObject o when o.TryGetPropertyValue(Field, out var v) => FromJson(v),
            JsonObject => throw new CelException($"no such key: {Field}"),
            IReadOnlyDictionary<string, object?> d when d.TryGetValue(Field, out var v) => v,
            var other => throw new CelException($"cannot select field '{Field}' from {TypeName(other)}"),
        };
    }

    private sealed record Index(CelNode Target, CelNode Key) : CelNode
    {
        public override object? Evaluate(Scope scope)
        {
            var target = Target.Evaluate(scope);
            var key = Key.Evaluate(scope);
            return (target, key) switch
            {
                (JsonArray a, long i) when i >= 0 && i < a.Count => FromJson(a[(int)i]),
                (List<object?> l, long i) when i >= 0 && i < l.Count => l[(int)i],
                (JsonArray or List<object?>, long i) => throw new CelException($"index out of range: {i}"),
                (JsonObject o, string k) when o.TryGetPropertyValue(k, out var v) => FromJson(v),
                (JsonObject, string k) => throw new CelException($"no such key: {k}"),
                _ => throw new CelException($"cannot index {TypeName(target)} with {TypeName(key)}"),
            };
        }
    }

    private sealed record Has(CelNode Target, string Field) : CelNode
    {
        public override object? Evaluate(Scope scope) => Target.Evaluate(scope) switch
        {
            JsonObject o => o.TryGetPropertyValue(Field, out var v) && v is not null,
            IReadOnlyDictionary<string, object?> d => d.ContainsKey(Field),
            var other => throw new CelException($"has() on {TypeName(other)}"),
        };
    }

    private sealed record Unary(string Op, CelNode Operand) : CelNode
    {
        public override object? Evaluate(Scope scope) => (Op, Operand.Evaluate(scope)) switch
        {
            ("!", bool b) => !b,
            ("-", long l) => -l,
            ("-", double d) => -d,
            ("-", TimeSpan t) => -t,
            var (op, v) => throw new CelException($"no such overload: {op}{TypeName(v)}"),
        };
    }

    private sealed record Conditional(CelNode Condition, CelNode Then, CelNode Else) : CelNode
    {
        public override object? Evaluate(Scope scope) => Condition.Evaluate(scope) switch
        {
            true => Then.Evaluate(scope),
            false => Else.Evaluate(scope),
            var other => throw new CelException($"condition of ?: is {TypeName(other)}, not bool"),
        };
    }

    private sealed record Binary(string Op, CelNode Left, CelNode Right) : CelNode
    {
        public override object? Evaluate(Scope scope)
        {
            if (Op is "&&" or "||")
            {
                // CEL's commutative logic: an error on one side is absorbed when the other side decides.
                object? l;
                CelException? leftError = null;
                try
                {
                    l = Left.Evaluate(scope);
                }
                catch (CelException e)
                {
                    l = null;
                    leftError = e;
                }

                var decisive = Op == "||";
                if (l is bool lb && lb == decisive)
                {
                    return decisive;
                }

                var r = Right.Evaluate(scope);
                if (r is bool rb && rb == decisive)
                {
                    return decisive;
                }

                if (leftError is not null)
                {
                    throw leftError;
                }

                return (l, r) is (bool, bool) ? !decisive : throw new CelException($"no such overload: {TypeName(l)} {Op} {TypeName(r)}");
            }

            var left = Left.Evaluate(scope);
            var right = Right.Evaluate(scope);
            return Op switch
            {
                "==" => ValueEquals(left, right),
                "!=" => !ValueEquals(left, right),
                "<" => Compare(left, right) < 0,
                "<=" => Compare(left, right) <= 0,
                ">" => Compare(left, right) > 0,
                ">=" => Compare(left, right) >= 0,
                "in" => right switch
                {
                    JsonArray a => a.Any(x => ValueEquals(FromJson(x), left)),
                    List<object?> list => list.Any(x => ValueEquals(x, left)),
                    JsonObject o when left is string k => o.ContainsKey(k),
                    _ => throw new CelException($"no such overload: in {TypeName(right)}"),
                },
                _ => Arithmetic(Op, left, right),
            };
        }
    }

    private sealed record Call(CelNode? Target, string Function, IReadOnlyList<CelNode> Args) : CelNode
    {
        public override object? Evaluate(Scope scope)
        {
            if (Target is not null && Function is "all" or "exists" or "exists_one" or "filter" or "map" && Args.Count == 2 && Args[0] is Identifier variable)
            {
                return Macro(scope, variable.Name);
            }

            var args = Args.Select(a => a.Evaluate(scope)).ToList();
            if (Target is not null)
            {
                args.Insert(0, Target.Evaluate(scope));
            }

            return (Function, args) switch
            {
                ("size", [string s]) => (long)new StringInfo(s).LengthInTextElements,
                ("size", [JsonArray a]) => (long)a.Count,
                ("size", [JsonObject o]) => (long)o.Count,
                ("size", [List<object?> l]) => (long)l.Count,
                ("startsWith", [string s, string p]) => s.StartsWith(p, StringComparison.Ordinal),
                ("endsWith", [string s, string p]) => s.EndsWith(p, StringComparison.Ordinal),
                ("contains", [string s, string p]) => s.Contains(p, StringComparison.Ordinal),
                ("matches", [string s, string p]) => Regex.IsMatch(s, p, RegexOptions.None, TimeSpan.FromSeconds(1)),
                ("lowerAscii", [string s]) => s.ToLowerInvariant(),
                ("upperAscii", [string s]) => s.ToUpperInvariant(),
                ("int", [long l]) => l,
                ("int", [double d]) => (long)d,
                ("int", [string s]) => long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) ? l : throw new CelException($"cannot convert \"{s}\" to int"),
                ("int", [TimeSpan t]) => (long)t.TotalSeconds,
                ("double", [long l]) => (double)l,
                ("double", [double d]) => d,
                ("double", [string s]) => double.Parse(s, CultureInfo.InvariantCulture),
                ("string", [var v]) => Format(v),
                ("duration", [string s]) => ParseDuration(s),
                ("milliseconds", [TimeSpan t]) => (long)t.TotalMilliseconds,
                ("getMilliseconds", [TimeSpan t]) => (long)t.TotalMilliseconds,
                ("seconds", [TimeSpan t]) => (long)t.TotalSeconds,
                ("getSeconds", [TimeSpan t]) => (long)t.TotalSeconds,
                _ => throw new CelException($"found no matching overload for '{Function}' applied to ({string.Join(", ", args.Select(TypeName))})"),
            };
        }

        private object? Macro(Scope scope, string variable)
        {
            var items = Target!.Evaluate(scope) switch
            {
                JsonArray a => a.Select(FromJson).ToList(),
                List<object?> l => l,
                JsonObject o => o.Select(kv => (object?)kv.Key).ToList(),
                var other => throw new CelException($"{Function}() on {TypeName(other)}"),
            };
            var body = Args[1];
            bool Test(object? item) => body.Evaluate(scope.With(variable, item)) as bool? ?? throw new CelException($"{Function}() predicate is not a bool");
            return Function switch
            {
                "all" => items.All(Test),
                "exists" => items.Any(Test),
                "exists_one" => items.Count(Test) == 1,
                "filter" => items.Where(Test).ToList(),
                _ => items.Select(i => body.Evaluate(scope.With(variable, i))).ToList(),
            };
        }
    }

    /// <summary>Go-style durations as CEL's duration() takes them: "1h30m", "250ms", "1.5s".</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var match = Regex.Match(text, @"^(-?)((?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+)$", RegexOptions.None, TimeSpan.FromSeconds(1));
        if (!match.Success)
        {
            throw new CelException($"invalid duration \"{text}\"");
        }

        var total = 0.0;
        foreach (Match part in Regex.Matches(match.Groups[2].Value, @"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)", RegexOptions.None, TimeSpan.FromSeconds(1)))
        {
            var n = double.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "h" => n * 3_600_000,
                "m" => n * 60_000,
                "s" => n * 1000,
                "ms" => n,
                "us" or "µs" => n / 1000,
                _ => n / 1_000_000,
            };
        }

        return TimeSpan.FromMilliseconds(match.Groups[1].Value == "-" ? -total : total);
    }

    internal static string TypeName(object? v) => v switch
    {
        null => "null",
        long => "int",
        double => "double",
        string => "string",
        bool => "bool",
        TimeSpan => "duration",
        JsonArray or List<object?> => "list",
        JsonObject => "map",
        _ => v.GetType().Name,
    };

    private static string Format(object? v) => v switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString(CultureInfo.InvariantCulture),
        TimeSpan t => t.TotalSeconds.ToString(CultureInfo.InvariantCulture) + "s",
        JsonNode n => n.ToJsonString(),
        _ => v.ToString() ?? "",
    };

    private static bool ValueEquals(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (long x, double y) => x == y,
        (double x, long y) => x == y,
        (JsonNode x, JsonNode y) => JsonNode.DeepEquals(x, y),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => ValueEquals(p.First, p.Second)),
        (JsonArray x, List<object?> y) => x.Count == y.Count && x.Select(FromJson).Zip(y).All(p => ValueEquals(p.First, p.Second)),
        (List<object?>, JsonArray) => ValueEquals(b, a),
        _ => Equals(a, b),
    };

    private static int Compare(object? a, object? b) => (a, b) switch
    {
        (long x, long y) => x.CompareTo(y),
        (double x, double y) => x.CompareTo(y),
        (long x, double y) => ((double)x).CompareTo(y),
        (double x, long y) => x.CompareTo(y),
        (string x, string y) => string.CompareOrdinal(x, y),
        (TimeSpan x, TimeSpan y) => x.CompareTo(y),
        (bool x, bool y) => x.CompareTo(y),
        _ => throw new CelException($"no such overload: comparing {TypeName(a)} with {TypeName(b)}"),
    };

    private static object Arithmetic(string op, object? a, object? b)
    {
        return (op, a, b) switch
        {
            ("+", long x, long y) => checked(x + y),
            ("-", long x, long y) => checked(x - y),
            ("*", long x, long y) => checked(x * y),
            ("/", long _, 0L) => throw new CelException("division by zero"),
            ("/", long x, long y) => x / y,
            ("%", long _, 0L) => throw new CelException("modulus by zero"),
            ("%", long x, long y) => x % y,
            ("+", double x, double y) => x + y,
            ("-", double x, double y) => x - y,
            ("*", double x, double y) => x * y,
            ("/", double x, double y) => x / y,
            ("+", string x, string y) => x + y,
            ("+", TimeSpan x, TimeSpan y) => x + y,
            ("-", TimeSpan x, TimeSpan y) => x - y,
            ("+", List<object?> x, List<object?> y) => x.Concat(y).ToList(),
            _ => throw new CelException($"no such overload: {TypeName(a)} {op} {TypeName(b)}"),
        };
    }

    /// <summary>Recursive-descent parser; precedence from lowest: ?:, ||, &amp;&amp;, relations and in, + -, * / %, unary, member.</summary>
    private sealed class Parser(string text)
    {
        private readonly List<(string Kind, string Text, int At)> _tokens = Lex(text);
        private int _pos;

        private (string Kind, string Text, int At) Peek => _tokens[_pos];

        public CelNode ParseAll()
        {
            var node = Ternary();
            if (Peek.Kind != "eof")
            {
                throw Error($"unexpected '{Peek.Text}'");
            }

            return node;
        }

        private CelException Error(string what) => new($"syntax error in '{text}' at {Peek.At}: {what}");

        private bool Accept(string t)
        {
            if (Peek.Text == t && Peek.Kind is "op" or "ident")
            {
                _pos++;
                return true;
            }

            return false;
        }

        private void Expect(string t)
        {
            if (!Accept(t))
            {
                throw Error($"expected '{t}'");
            }
        }

        private CelNode Ternary()
        {
            var c = Or();
            if (Accept("?"))
            {
                var a = Ternary();
                Expect(":");
                return new Conditional(c, a, Ternary());
            }

            return c;
        }

        private CelNode Or()
        {
            var l = And();
            while (Accept("||"))
            {
                l = new Binary("||", l, And());
            }

            return l;
        }

        private CelNode And()
        {
            var l = Relation();
            while (Accept("&&"))
            {
                l = new Binary("&&", l, Relation());
            }

            return l;
        }

        private CelNode Relation()
        {
            var l = Additive();
            while (Peek.Text is "==" or "!=" or "<" or "<=" or ">" or ">=" or "in")
            {
                var op = _tokens[_pos++].Text;
                l = new Binary(op, l, Additive());
            }

            return l;
        }

        private CelNode Additive()
        {
            var l = Multiplicative();
            while (Peek is { Kind: "op", Text: "+" or "-" })
            {
                var op = _tokens[_pos++].Text;
                l = new Binary(op, l, Multiplicative());
            }

            return l;
        }

        private CelNode Multiplicative()
        {
            var l = UnaryExpr();
            while (Peek is { Kind: "op", Text: "*" or "/" or "%" })
            {
                var op = _tokens[_pos++].Text;
                l = new Binary(op, l, UnaryExpr());
            }

            return l;
        }

        private CelNode UnaryExpr()
        {
            if (Peek is { Kind: "op", Text: "!" or "-" })
            {
                var op = _tokens[_pos++].Text;
                return new Unary(op, UnaryExpr());
            }

            return Member();
        }

        private CelNode Member()
        {
            var node = Primary();
            while (true)
            {
                if (Accept("."))
                {
                    var name = Peek.Kind == "ident" ? _tokens[_pos++].Text : throw Error("expected a field name after '.'");
                    if (Accept("("))
                    {
                        node = new Call(node, name, Arguments());
                    }
                    else
                    {
                        node = new Select(node, name);
                    }
                }
                else if (Accept("["))
                {
                    var key = Ternary();
                    Expect("]");
                    node = new Index(node, key);
                }
                else
                {
                    return node;
                }
            }
        }

        private List<CelNode> Arguments()
        {
            var args = new List<CelNode>();
            if (Accept(")"))
            {
                return args;
            }

            do
            {
                args.Add(Ternary());
            }
            while (Accept(","));
            Expect(")");
            return args;
        }

        private CelNode Primary()
        {
            var t = _tokens[_pos++];
            switch (t.Kind)
            {
                case "int":
                    return new Literal(long.Parse(t.Text, CultureInfo.InvariantCulture));
                case "double":
                    return new Literal(double.Parse(t.Text, CultureInfo.InvariantCulture));
                case "string":
                    return new Literal(t.Text);
                case "ident" when t.Text is "true" or "false":
                    return new Literal(t.Text == "true");
                case "ident" when t.Text == "null":
                    return new Literal(null);
                case "ident" when t.Text == "has":
                    {
                        Expect("(");
                        var arg = Member();
                        Expect(")");
                        return arg is Select s ? new Has(s.Target, s.Field) : throw Error("has() needs a field selection such as has(self.x)");
                    }

                case "ident" when Peek.Text == "(" && Peek.Kind == "op":
                    _pos++;
                    return new Call(null, t.Text, Arguments());
                case "ident":
                    return new Identifier(t.Text);
                case "op" when t.Text == "(":
                    {
                        var inner = Ternary();
                        Expect(")");
                        return inner;
                    }

                case "op" when t.Text == "[":
                    {
                        var items = new List<CelNode>();
                        if (!Accept("]"))
                        {
                            do
                            {
                                items.Add(Ternary());
                            }
                            while (Accept(","));
                            Expect("]");
                        }

                        return new ListLiteral(items);
                    }

                default:
                    _pos--;
                    throw Error($"unexpected '{t.Text}'");
            }
        }

        private static List<(string, string, int)> Lex(string s)
        {
            var tokens = new List<(string, string, int)>();
            var i = 0;
            while (i < s.Length)
            {
                var c = s[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                    continue;
                }

                var start = i;
                if (char.IsLetter(c) || c == '_')
                {
                    while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_'))
                    {
                        i++;
                    }

                    tokens.Add(("ident", s[start..i], start));
                }
                else if (char.IsDigit(c))
                {
                    while (i < s.Length && char.IsDigit(s[i]))
                    {
                        i++;
                    }

                    var kind = "int";
                    if (i + 1 < s.Length && s[i] == '.' && char.IsDigit(s[i + 1]))
                    {
                        i++;
                        while (i < s.Length && char.IsDigit(s[i]))
                        {
                            i++;
                        }

                        kind = "double";
                    }

                    tokens.Add((kind, s[start..i], start));
                    if (i < s.Length && s[i] == 'u')
                    {
                        i++;
                    }
                }
                else if (c is '"' or '\'')
                {
                    var sb = new StringBuilder();
                    i++;
                    while (i < s.Length && s[i] != c)
                    {
                        if (s[i] == '\\' && i + 1 < s.Length)
                        {
                            i++;
                            sb.Append(s[i] switch { 'n' => '\n', 't' => '\t', var x => x });
                        }
                        else
                        {
                            sb.Append(s[i]);
                        }

                        i++;
                    }

                    if (i >= s.Length)
                    {
                        throw new CelException($"syntax error in '{s}': unterminated string starting at {start}");
                    }

                    i++;
                    tokens.Add(("string", sb.ToString(), start));
                }
                else
                {
                    var two = i + 1 < s.Length ? s.Substring(i, 2) : "";
                    if (two is "==" or "!=" or "<=" or ">=" or "&&" or "||")
                    {
                        tokens.Add(("op", two, start));
                        i += 2;
                    }
                    else if ("+-*/%<>!?:.,()[]".Contains(c, StringComparison.Ordinal))
                    {
                        tokens.Add(("op", c.ToString(), start));
                        i++;
                    }
                    else
                    {
                        throw new CelException($"syntax error in '{s}' at {start}: unexpected character '{c}'");
                    }
                }
            }

            tokens.Add(("eof", "<end>", s.Length));
            return tokens;
        }
    }
}
