using System.Text.Json.Nodes;
using LocalKube.Validation;

namespace LocalKube.Tests;

/// <summary>The CEL subset used by CRD validation rules.</summary>
public sealed class CelTests
{
    private static object? Eval(string expression, string self, string? oldSelf = null)
    {
        var variables = new Dictionary<string, object?> { ["self"] = Cel.FromJson(JsonNode.Parse(self)) };
        if (oldSelf is not null)
        {
            variables["oldSelf"] = Cel.FromJson(JsonNode.Parse(oldSelf));
        }

        return Cel.Evaluate(expression, variables);
    }

    [Theory]
    [InlineData("self.replicas % 2 == 1", "{\"replicas\":3}", true)]
    [InlineData("self.replicas % 2 == 1", "{\"replicas\":4}", false)]
    [InlineData("self.replicas >= 1 && self.replicas <= 9", "{\"replicas\":9}", true)]
    [InlineData("self.replicas >= 1 && self.replicas <= 9", "{\"replicas\":11}", false)]
    [InlineData("has(self.tuning) ? self.tuning.mode == 'Manual' : true", "{}", true)]
    [InlineData("!has(self.tuning) || self.tuning.electionTimeout >= 5 * self.tuning.heartbeatInterval", "{\"tuning\":{\"heartbeatInterval\":100,\"electionTimeout\":400}}", false)]
    [InlineData("self.tuning.mode != 'Manual' || (has(self.tuning.heartbeatInterval) && has(self.tuning.electionTimeout))", "{\"tuning\":{\"mode\":\"Manual\",\"heartbeatInterval\":100}}", false)]
    [InlineData("self.mode in ['Auto', 'Manual']", "{\"mode\":\"Auto\"}", true)]
    [InlineData("size(self.name) <= 5 && self.name.startsWith('ab') && self.name.matches('^[a-z]+$')", "{\"name\":\"abc\"}", true)]
    [InlineData("self.items.all(i, i > 0) && self.items.exists(i, i == 2) && self.items.exists_one(i, i == 3)", "{\"items\":[1,2,3]}", true)]
    [InlineData("self.items.filter(i, i > 1).size() == 2 && self.items.map(i, i * 10)[2] == 30", "{\"items\":[1,2,3]}", true)]
    [InlineData("duration(self.h) < duration('1s') && duration(self.e) >= duration(self.h) + duration('0s')", "{\"h\":\"100ms\",\"e\":\"1s\"}", true)]
    [InlineData("-self.a + 10 / 3 == 1", "{\"a\":2}", true)]
    [InlineData("self.x == 1.5 && self.y == 2", "{\"x\":1.5,\"y\":2.0}", true)]
    public void Rules_evaluate_as_in_kube_apiserver(string rule, string self, bool expected) =>
        Assert.Equal(expected, Eval(rule, self));

    [Fact]
    public void Transition_rule_compares_with_the_old_value() =>
        Assert.Equal(false, Eval("self == oldSelf", "{\"version\":\"2\"}", "{\"version\":\"1\"}"));

    [Fact]
    public void Or_absorbs_an_error_on_the_other_side_when_one_side_is_true() =>
        Assert.Equal(true, Eval("self.missing == 1 || true", "{}"));

    [Theory]
    [InlineData("self.missing == 1", "no such key: missing")]
    [InlineData("self.a +", "syntax error")]
    [InlineData("self.a % 0 == 1", "modulus by zero")]
    [InlineData("unknownFn(self)", "no matching overload")]
    public void Errors_say_what_is_wrong(string rule, string expected)
    {
        var e = Assert.Throws<CelException>(() => Eval(rule, "{\"a\":1}"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
