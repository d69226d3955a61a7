using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using RaftKv.Operator.Manifests;

namespace RaftKv.Operator.Tests.Manifests;

public sealed partial class CrdGeneratorTests
{
    private static readonly V1CustomResourceDefinition Crd = CrdGenerator.Build();

    private static V1JSONSchemaProps Spec => Crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"];

    [Fact]
    public void The_committed_CRD_is_what_the_types_generate()
    {
        var path = RepositoryFiles.PathOf(Path.Combine("config", "crd", CrdGenerator.FileName));
        Assert.True(File.Exists(path), $"{path} is missing: run `make manifests`");
        var committed = File.ReadAllText(path);
        var generated = CrdGenerator.ToYaml(Crd);
        if (committed != generated)
        {
            var committedLines = committed.Split('\n');
            var generatedLines = generated.Split('\n');
            var first = Enumerable.Range(0, Math.Max(committedLines.Length, generatedLines.Length))
                .First(i => i >= committedLines.Length || i >= generatedLines.Length || committedLines[i] != generatedLines[i]);
            Assert.Fail($"{path} is stale: run `make manifests` and commit it. First difference at line {first + 1}:\n"
                + $"  committed: {(first < committedLines.Length ? committedLines[first] : "<end of file>")}\n"
                + $"  generated: {(first < generatedLines.Length ? generatedLines[first] : "<end of file>")}");
        }
    }

    [Fact]
    public void The_YAML_reads_back_as_the_same_definition()
    {
        var yaml = CrdGenerator.ToYaml(Crd);
        var back = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(yaml, strict: true);
        Assert.Equal(KubernetesJson.Serialize(Crd), KubernetesJson.Serialize(back));
        Assert.DoesNotContain("3.0", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_scope_and_version_are_those_of_raftclusters_raftkv_io()
    {
        Assert.Equal("apiextensions.k8s.io/v1", Crd.ApiVersion);
        Assert.Equal("raftclusters.raftkv.io", Crd.Metadata.Name);
        Assert.Equal("raftkv.io", Crd.Spec.Group);
        Assert.Equal("Namespaced", Crd.Spec.Scope);
        Assert.Equal("RaftCluster", Crd.Spec.Names.Kind);
        Assert.Equal("RaftClusterList", Crd.Spec.Names.ListKind);
        Assert.Equal("raftclusters", Crd.Spec.Names.Plural);
        Assert.Equal("raftcluster", Crd.Spec.Names.Singular);
        var version = Assert.Single(Crd.Spec.Versions);
        Assert.Equal("v1alpha1", version.Name);
        Assert.True(version.Served && version.Storage);
    }

    [Fact]
    public void Status_and_scale_subresources_point_at_existing_fields()
    {
        var subresources = Crd.Spec.Versions[0].Subresources;
        Assert.NotNull(subresources.Status);
        Assert.Equal(".spec.replicas", subresources.Scale.SpecReplicasPath);
        Assert.Equal(".status.replicas", subresources.Scale.StatusReplicasPath);
        Assert.Equal(".status.selector", subresources.Scale.LabelSelectorPath);
        foreach (var path in new[] { subresources.Scale.SpecReplicasPath, subresources.Scale.StatusReplicasPath, subresources.Scale.LabelSelectorPath })
        {
            Assert.True(Resolve(path) is not null, $"{path} is not in the schema");
        }

        Assert.Equal("integer", Resolve(".status.replicas")!.Type);
        Assert.Equal("string", Resolve(".status.selector")!.Type);
    }

    [Fact]
    public void Printer_columns_show_replicas_ready_leader_heartbeat_election_and_age()
    {
        var columns = Crd.Spec.Versions[0].AdditionalPrinterColumns;
        Assert.Equal(["Replicas", "Ready", "Leader", "Heartbeat", "Election", "Phase", "Age"], columns.Select(c => c.Name));
        foreach (var column in columns.Where(c => !c.JsonPath.StartsWith(".metadata.", StringComparison.Ordinal)))
        {
            var field = Resolve(column.JsonPath);
            Assert.True(field is not null, $"column {column.Name}: {column.JsonPath} is not in the schema");
            Assert.Equal(column.Type, field.Type);
        }

        Assert.Equal("date", columns.Single(c => c.Name == "Age").Type);
    }

    [Fact]
    public void Replicas_has_a_default_bounds_and_an_odd_rule_that_explains_quorum()
    {
        var replicas = Spec.Properties["replicas"];
        Assert.Equal("integer", replicas.Type);
        Assert.Equal(3L, Convert.ToInt64(replicas.DefaultProperty, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1, replicas.Minimum);
        Assert.Equal(9, replicas.Maximum);
        var rule = Assert.Single(replicas.XKubernetesValidations);
        Assert.Equal("self >= 1 && self <= 9 && self % 2 == 1", rule.Rule);
        Assert.Contains("must be odd", rule.Message, StringComparison.Ordinal);
        Assert.Contains("quorum", rule.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Storage_class_and_size_are_immutable_through_transition_rules()
    {
        var storage = Spec.Properties["storage"];
        Assert.Contains(storage.XKubernetesValidations, r => r.Rule.Contains("has(self.storageClassName) == has(oldSelf.storageClassName)", StringComparison.Ordinal));
        Assert.Equal("self == oldSelf", Assert.Single(storage.Properties["storageClassName"].XKubernetesValidations).Rule);
        Assert.Equal("self == oldSelf", Assert.Single(storage.Properties["size"].XKubernetesValidations).Rule);
        Assert.Null(storage.Properties["reclaimPolicy"].XKubernetesValidations);
        Assert.Equal(["Retain", "Delete"], storage.Properties["reclaimPolicy"].EnumProperty.Cast<string>());
    }

    [Fact]
    public void Manual_tuning_rules_bound_the_election_timeout()
    {
        var tuning = Spec.Properties["tuning"];
        var rules = tuning.XKubernetesValidations.Select(r => r.Rule).ToList();
        Assert.Contains(rules, r => r.Contains(">= 5 * duration(self.heartbeatInterval).getMilliseconds()", StringComparison.Ordinal));
        Assert.Contains(rules, r => r.Contains("duration(self.electionTimeout) <= duration('50s')", StringComparison.Ordinal));
        Assert.All(rules, r => Assert.StartsWith("self.mode != 'Manual' || ", r, StringComparison.Ordinal));
        Assert.Equal(["Auto", "Manual"], tuning.Properties["mode"].EnumProperty.Cast<string>());
        Assert.Equal(["Default", "Aggressive"], tuning.Properties["profile"].EnumProperty.Cast<string>());
        Assert.NotNull(tuning.Properties["heartbeatInterval"].Pattern);
    }

    /// <summary>
    /// The local control plane evaluates our CEL rules itself, so the rules may use only the functions
    /// it implements. Adding a function to a rule means adding it to this list and to LocalKube.
    /// </summary>
    [Fact]
    public void CEL_rules_use_only_has_duration_and_getMilliseconds()
    {
        var allowed = new HashSet<string>(StringComparer.Ordinal) { "has", "duration", "getMilliseconds" };
        var rules = AllRules(Crd.Spec.Versions[0].Schema.OpenAPIV3Schema).ToList();
        Assert.True(rules.Count >= 8, $"expected the CRD's rules, found {rules.Count}");
        foreach (var rule in rules)
        {
            var withoutStrings = QuotedString().Replace(rule.Rule, "''");
            foreach (Match call in FunctionCall().Matches(withoutStrings))
            {
                Assert.True(allowed.Contains(call.Groups[1].Value), $"rule \"{rule.Rule}\" calls {call.Groups[1].Value}(), which the local control plane may not implement");
            }

            Assert.False(string.IsNullOrWhiteSpace(rule.Message), $"rule \"{rule.Rule}\" has no message");
        }
    }

    [Fact]
    public void Every_spec_field_has_a_description()
    {
        foreach (var (path, schema) in Walk("spec", Spec).Where(p => !p.Path.Contains("tolerations.", StringComparison.Ordinal) && !p.Path.Contains("resources.", StringComparison.Ordinal)))
        {
            Assert.False(string.IsNullOrWhiteSpace(schema.Description), $"{path} has no description (kubectl explain would show nothing)");
        }
    }

    [Fact]
    public void Conditions_are_a_list_map_keyed_by_type()
    {
        var conditions = Resolve(".status.conditions")!;
        Assert.Equal("map", conditions.XKubernetesListType);
        Assert.Equal(["type"], conditions.XKubernetesListMapKeys);
        Assert.Contains("observedGeneration", ((V1JSONSchemaProps)conditions.Items).Properties.Keys);
    }

    [Fact]
    public void Every_list_map_key_is_required_in_its_items_as_the_API_server_demands()
    {
        var lists = Walk("status", Crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"]).Where(p => p.Schema.XKubernetesListType == "map").ToList();
        Assert.Equal(2, lists.Count);
        foreach (var (path, schema) in lists)
        {
            var item = (V1JSONSchemaProps)schema.Items;
            foreach (var key in schema.XKubernetesListMapKeys)
            {
                Assert.True(item.Required?.Contains(key) == true, $"{path}: list-map key {key} is not required in the items");
            }
        }
    }

    [Fact]
    public void Generating_twice_gives_the_same_text()
    {
        Assert.Equal(CrdGenerator.ToYaml(CrdGenerator.Build()), CrdGenerator.ToYaml(CrdGenerator.Build()));
    }

    [Fact]
    public void The_manifests_command_writes_the_file_and_check_detects_staleness()
    {
        var dir = Directory.CreateTempSubdirectory("raftkv-manifests-").FullName;
        try
        {
            var (code, stdout, stderr) = Run("manifests", "--output-dir", dir, "--check");
            Assert.True(code == 1, $"check on an empty dir: exit {code}, stderr {stderr}");
            Assert.Contains("is missing", stderr, StringComparison.Ordinal);

            (code, stdout, stderr) = Run("manifests", "--output-dir", dir);
            Assert.True(code == 0, $"exit {code}, stderr {stderr}");
            var path = Path.Combine(dir, CrdGenerator.FileName);
            Assert.Equal(CrdGenerator.ToYaml(Crd), File.ReadAllText(path));

            (code, _, stderr) = Run("manifests", "--output-dir", dir, "--check");
            Assert.True(code == 0, $"check after writing: exit {code}, stderr {stderr}");

            File.AppendAllText(path, "# edited\n");
            (code, _, stderr) = Run("manifests", "--output-dir", dir, "--check");
            Assert.Equal(1, code);
            Assert.Contains("is stale", stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_manifests_command_requires_an_output_dir()
    {
        var (code, _, stderr) = Run("manifests");
        Assert.Equal(2, code);
        Assert.Contains("--output-dir DIR is required", stderr, StringComparison.Ordinal);
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static V1JSONSchemaProps? Resolve(string jsonPath)
    {
        var schema = Crd.Spec.Versions[0].Schema.OpenAPIV3Schema;
        foreach (var part in jsonPath.TrimStart('.').Split('.'))
        {
            if (schema.Properties is null || !schema.Properties.TryGetValue(part, out var next))
            {
                return null;
            }

            schema = next;
        }

        return schema;
    }

    private static IEnumerable<V1ValidationRule> AllRules(V1JSONSchemaProps schema) =>
        (schema.XKubernetesValidations ?? [])
            .Concat((schema.Properties?.Values ?? []).SelectMany(AllRules))
            .Concat(schema.Items is V1JSONSchemaProps items ? AllRules(items) : []);

    private static IEnumerable<(string Path, V1JSONSchemaProps Schema)> Walk(string path, V1JSONSchemaProps schema)
    {
        yield return (path, schema);
        foreach (var (name, child) in schema.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
        {
            foreach (var item in Walk($"{path}.{name}", child))
            {
                yield return item;
            }
        }
    }

    [GeneratedRegex("'[^']*'")]
    private static partial Regex QuotedString();

    [GeneratedRegex("([A-Za-z_][A-Za-z0-9_]*)\\s*\\(")]
    private static partial Regex FunctionCall();
}
