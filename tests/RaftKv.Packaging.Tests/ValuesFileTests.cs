using System.Text.RegularExpressions;

namespace RaftKv.Packaging.Tests;

/// <summary>values.yaml is the chart's documentation: every key has a comment, and the schema knows every key.</summary>
public sealed partial class ValuesFileTests
{
    /// <summary>Values that are Kubernetes objects passed through as they are: their fields are Kubernetes' own.</summary>
    private static readonly string[] KubernetesObjects =
        ["resources", "podSecurityContext", "securityContext", "livenessProbe", "readinessProbe", "grafanaDashboard.labels"];

    private static List<(int Line, string Path, bool Commented)> Keys()
    {
        var lines = Repo.Read("charts/raftkv-operator/values.yaml").Split('\n');
        var keys = new List<(int, string, bool)>();
        var stack = new List<(int Indent, string Key)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var m = KeyLine().Match(lines[i]);
            if (!m.Success)
            {
                continue;
            }

            var indent = m.Groups["indent"].Length;
            stack.RemoveAll(s => s.Indent >= indent);
            stack.Add((indent, m.Groups["key"].Value));
            var path = string.Join('.', stack.Select(s => s.Key));
            var previous = i - 1;
            while (previous >= 0 && lines[previous].TrimStart().StartsWith("#  ", StringComparison.Ordinal))
            {
                previous--;
            }

            keys.Add((i + 1, path, previous >= 0 && lines[previous].TrimStart().StartsWith("# -- ", StringComparison.Ordinal)));
        }

        return keys;
    }

    [Fact]
    public void Every_key_has_a_comment_above_it()
    {
        var keys = Keys();
        Assert.True(keys.Count > 40, $"only {keys.Count} keys found in values.yaml");
        var missing = keys
            .Where(k => !k.Commented && !KubernetesObjects.Any(o => k.Path.StartsWith(o + ".", StringComparison.Ordinal)))
            .Where(k => !keys.Any(child => child.Path.StartsWith(k.Path + ".", StringComparison.Ordinal)))
            .Select(k => $"line {k.Line}: {k.Path}")
            .ToList();
        Assert.True(missing.Count == 0, "values.yaml keys without a '# -- ' comment above them:\n" + string.Join('\n', missing));
    }

    [Fact]
    public void The_schema_describes_every_key_and_allows_no_other()
    {
        using var schema = System.Text.Json.JsonDocument.Parse(Repo.Read("charts/raftkv-operator/values.schema.json"));
        foreach (var (line, path, _) in Keys().Where(k => !KubernetesObjects.Any(o => k.Path.StartsWith(o + ".", StringComparison.Ordinal))))
        {
            var node = schema.RootElement;
            foreach (var part in path.Split('.'))
            {
                Assert.True(node.TryGetProperty("properties", out var properties) && properties.TryGetProperty(part, out node),
                    $"values.yaml line {line}: {path} is not in values.schema.json");
            }

            Assert.True(node.TryGetProperty("description", out _) || node.TryGetProperty("type", out _), $"{path} has no type in the schema");
        }

        Assert.False(schema.RootElement.GetProperty("additionalProperties").GetBoolean());
    }

    [GeneratedRegex(@"^(?<indent> *)(?<key>[A-Za-z][A-Za-z0-9_.]*):( |$)")]
    private static partial Regex KeyLine();
}
