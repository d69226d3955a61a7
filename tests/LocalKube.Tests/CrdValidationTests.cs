using System.Text.Json.Nodes;
using LocalKube.Validation;

namespace LocalKube.Tests;

/// <summary>Custom resource schema handling: defaulting, pruning, structural validation and CEL rules, both as a
/// unit and through kubectl with the messages users see.</summary>
public sealed class CrdValidationTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>
{
    private const string Crd = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: rafts.test.raftkv.io
        spec:
          group: test.raftkv.io
          scope: Namespaced
          names: {plural: rafts, singular: raft, kind: Raft}
          versions:
          - name: v1alpha1
            served: true
            storage: true
            subresources: {status: {}}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    x-kubernetes-validations:
                    - rule: "self.replicas % 2 == 1"
                      message: "replicas must be odd (1, 3, 5, 7 or 9) so that a majority survives"
                    - rule: "self.tuning.mode != 'Manual' || (has(self.tuning.heartbeatMillis) && has(self.tuning.electionMillis))"
                      message: "Manual tuning needs heartbeatMillis and electionMillis"
                    - rule: "!has(self.tuning.electionMillis) || self.tuning.electionMillis >= 5 * self.tuning.heartbeatMillis"
                      message: "electionMillis must be at least 5 x heartbeatMillis"
                    properties:
                      replicas: {type: integer, minimum: 1, maximum: 9, default: 3}
                      version:
                        type: string
                        x-kubernetes-validations: [{rule: "self == oldSelf", message: "version is immutable"}]
                      tuning:
                        type: object
                        default: {}
                        properties:
                          mode: {type: string, enum: [Auto, Manual], default: Auto}
                          heartbeatMillis: {type: integer}
                          electionMillis: {type: integer}
                  status:
                    type: object
                    x-kubernetes-preserve-unknown-fields: true
        """;

    private static JsonObject Schema()
    {
        var crd = (JsonObject)LocalKube.Api.Yaml.Parse(Crd)!;
        return (JsonObject)crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;
    }

    [Fact]
    public void Defaults_fill_absent_fields_including_nested_defaults_of_defaulted_objects()
    {
        var body = JsonNode.Parse("{\"spec\":{}}")!;
        SchemaValidator.Default(body, Schema());
        Assert.Equal("{\"spec\":{\"replicas\":3,\"tuning\":{\"mode\":\"Auto\"}}}", body.ToJsonString());
    }

    [Fact]
    public void Pruning_removes_undeclared_fields_and_keeps_preserved_ones()
    {
        var body = JsonNode.Parse("{\"spec\":{\"replicas\":3,\"extra\":1},\"status\":{\"anything\":{\"goes\":true}}}")!;
        var pruned = SchemaValidator.Prune(body, Schema(), "");
        Assert.Equal(["spec.extra"], pruned);
        Assert.Equal("{\"spec\":{\"replicas\":3},\"status\":{\"anything\":{\"goes\":true}}}", body.ToJsonString());
    }

    [Theory]
    [InlineData("{\"spec\":{\"replicas\":3,\"tuning\":{\"mode\":\"Auto\"}}}", "")]
    [InlineData("{\"spec\":{\"replicas\":4,\"tuning\":{\"mode\":\"Auto\"}}}", "spec: Invalid value: \"object\": replicas must be odd")]
    [InlineData("{\"spec\":{\"replicas\":\"three\",\"tuning\":{}}}", "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer")]
    [InlineData("{\"spec\":{\"replicas\":0,\"tuning\":{}}}", "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1")]
    [InlineData("{\"spec\":{\"replicas\":3,\"tuning\":{\"mode\":\"Manual\",\"heartbeatMillis\":100}}}", "Manual tuning needs heartbeatMillis and electionMillis")]
    [InlineData("{\"spec\":{\"replicas\":3,\"tuning\":{\"mode\":\"Manual\",\"heartbeatMillis\":100,\"electionMillis\":400}}}", "electionMillis must be at least 5 x heartbeatMillis")]
    [InlineData("{\"spec\":{\"replicas\":3,\"tuning\":{\"mode\":\"Fast\"}}}", "spec.tuning.mode: Unsupported value: \"Fast\": supported values: \"Auto\", \"Manual\"")]
    public void Validation_reports_each_broken_rule_with_its_field(string body, string expected)
    {
        var errors = SchemaValidator.Validate(JsonNode.Parse(body), null, false, Schema(), "");
        var text = string.Join("\n", errors.Select(e => $"{e.Field}: {e.Message}"));
        if (expected.Length == 0)
        {
            Assert.True(errors.Count == 0, text);
        }
        else
        {
            Assert.Contains(expected, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Transition_rules_apply_to_updates_only()
    {
        var schema = Schema();
        var v1 = JsonNode.Parse("{\"spec\":{\"replicas\":3,\"version\":\"1\",\"tuning\":{\"mode\":\"Auto\"}}}");
        var v2 = JsonNode.Parse("{\"spec\":{\"replicas\":3,\"version\":\"2\",\"tuning\":{\"mode\":\"Auto\"}}}");
        Assert.Empty(SchemaValidator.Validate(v2, null, false, schema, ""));
        Assert.Empty(SchemaValidator.Validate(v1, v1, true, schema, ""));
        var errors = SchemaValidator.Validate(v2, v1, true, schema, "");
        Assert.Equal("spec.version", Assert.Single(errors).Field);
    }

    [Fact]
    public async Task Kubectl_shows_the_rule_messages_and_defaults_are_stored()
    {
        await kube.KubectlOkIn(Crd, "apply", "-f", "-");
        var ns = await kube.NewNamespace("valid");
        var even = await kube.KubectlIn("apiVersion: test.raftkv.io/v1alpha1\nkind: Raft\nmetadata: {name: r}\nspec: {replicas: 4}\n", "-n", ns, "apply", "-f", "-");
        Assert.True(even.ExitCode != 0, even.ToString());
        Assert.Contains("The Raft \"r\" is invalid: spec: Invalid value: \"object\": replicas must be odd", even.Stderr, StringComparison.Ordinal);

        var unknown = await kube.KubectlIn("apiVersion: test.raftkv.io/v1alpha1\nkind: Raft\nmetadata: {name: r}\nspec: {replicaz: 3}\n", "-n", ns, "apply", "-f", "-");
        Assert.True(unknown.ExitCode != 0 && unknown.Stderr.Contains("unknown field \"spec.replicaz\"", StringComparison.Ordinal), unknown.ToString());

        await kube.KubectlOkIn("apiVersion: test.raftkv.io/v1alpha1\nkind: Raft\nmetadata: {name: r}\nspec: {version: \"1\"}\n", "-n", ns, "apply", "-f", "-");
        Assert.Equal("3 Auto", await kube.KubectlOk("-n", ns, "get", "raft", "r", "-o", "jsonpath={.spec.replicas} {.spec.tuning.mode}"));
        var immutable = await kube.KubectlIn("apiVersion: test.raftkv.io/v1alpha1\nkind: Raft\nmetadata: {name: r}\nspec: {version: \"2\"}\n", "-n", ns, "apply", "-f", "-");
        Assert.True(immutable.ExitCode != 0 && immutable.Stderr.Contains("spec.version: Invalid value: \"2\": version is immutable", StringComparison.Ordinal), immutable.ToString());
    }
}
