using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Runtime;
using LocalKube.Storage;

namespace LocalKube.Tests;

/// <summary>The pure parts: selectors, patches, server-side apply field sets, YAML, the store's watch history,
/// the scheduler's placement rules and the fault arithmetic.</summary>
public sealed class UnitTests
{
    private static JsonObject Labels(string json) => (JsonObject)JsonNode.Parse(json)!;

    [Theory]
    [InlineData("app=web", "{\"app\":\"web\"}", true)]
    [InlineData("app==web,tier!=db", "{\"app\":\"web\",\"tier\":\"fe\"}", true)]
    [InlineData("app in (web, api),!legacy", "{\"app\":\"api\"}", true)]
    [InlineData("app in (web, api),!legacy", "{\"app\":\"api\",\"legacy\":\"1\"}", false)]
    [InlineData("app notin (web)", "{}", true)]
    [InlineData("app", "{}", false)]
    [InlineData("", "{}", true)]
    public void Label_selectors_match_as_in_Kubernetes(string selector, string labels, bool expected) =>
        Assert.Equal(expected, LabelSelector.Parse(selector).Matches(Labels(labels)));

    [Fact]
    public void A_broken_selector_says_where()
    {
        var e = Assert.Throws<FormatException>(() => LabelSelector.Parse("app in web"));
        Assert.Contains("expected '('", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Structured_selectors_combine_matchLabels_and_expressions()
    {
        var selector = LabelSelector.FromObject(Labels("{\"matchLabels\":{\"app\":\"db\"},\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]}]}"))!;
        Assert.True(selector.Matches(Labels("{\"app\":\"db\",\"zone\":\"b\"}")));
        Assert.False(selector.Matches(Labels("{\"app\":\"db\",\"zone\":\"c\"}")));
        Assert.Null(LabelSelector.FromObject(null));
    }

    [Fact]
    public void Merge_patch_removes_nulls_and_replaces_lists()
    {
        var result = Patches.MergePatch(JsonNode.Parse("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"l\":[1,2]}"), JsonNode.Parse("{\"a\":null,\"b\":{\"c\":5},\"l\":[3]}"));
        Assert.Equal("{\"b\":{\"c\":5,\"d\":3},\"l\":[3]}", result!.ToJsonString());
    }

    [Fact]
    public void Json_patch_applies_operations_in_order_and_tests()
    {
        var result = Patches.JsonPatch(JsonNode.Parse("{\"a\":[1,2],\"b\":\"x\"}")!, (JsonArray)JsonNode.Parse("[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":9},{\"op\":\"remove\",\"path\":\"/b\"},{\"op\":\"test\",\"path\":\"/a/2\",\"value\":2},{\"op\":\"copy\",\"from\":\"/a/0\",\"path\":\"/c\"}]")!);
        Assert.Equal("{\"a\":[1,9,2],\"c\":1}", result.ToJsonString());
        Assert.Throws<PatchException>(() => Patches.JsonPatch(JsonNode.Parse("{}")!, (JsonArray)JsonNode.Parse("[{\"op\":\"remove\",\"path\":\"/missing\"}]")!));
    }

    [Fact]
    public void Strategic_merge_patch_merges_containers_env_and_ports_by_key_and_honours_directives()
    {
        var current = JsonNode.Parse("""
            {"metadata":{"finalizers":["a"]},"spec":{"containers":[
              {"name":"main","image":"v1","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"ports":[{"containerPort":80,"name":"http"}]},
              {"name":"side","image":"s1"}]}}
            """);
        var patch = JsonNode.Parse("""
            {"metadata":{"finalizers":["b"]},"spec":{"$setElementOrder/containers":[{"name":"side"},{"name":"main"}],"containers":[
              {"name":"main","image":"v2","env":[{"name":"B","$patch":"delete"},{"name":"C","value":"3"}],"ports":[{"containerPort":80,"protocol":"TCP"}]},
              {"name":"new","image":"n1"}]}}
            """);
        var result = Patches.StrategicMerge(current, patch)!;
        Assert.Equal("[\"a\",\"b\"]", result["metadata"]!["finalizers"]!.ToJsonString());
        var containers = result["spec"]!["containers"]!.AsArray();
        Assert.Equal(["side", "main", "new"], containers.Select(c => c!["name"]!.GetValue<string>()));
        var main = containers[1]!;
        Assert.Equal("v2", main["image"]!.GetValue<string>());
        Assert.Equal("[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"C\",\"value\":\"3\"}]", main["env"]!.ToJsonString());
        Assert.Equal("[{\"containerPort\":80,\"name\":\"http\",\"protocol\":\"TCP\"}]", main["ports"]!.ToJsonString());
    }

    [Fact]
    public void Server_side_apply_owns_the_fields_it_applied_and_conflicts_with_another_applier()
    {
        var first = ServerSideApply.Apply(null, Labels("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"labels\":{\"a\":\"1\"}},\"data\":{\"x\":\"1\",\"y\":\"2\"}}"), "one", false, "v1", "t");
        Assert.Equal("{\"f:metadata\":{\"f:labels\":{\"f:a\":{}}},\"f:data\":{\"f:x\":{},\"f:y\":{}}}", first["metadata"]!["managedFields"]![0]!["fieldsV1"]!.ToJsonString());

        var dropped = ServerSideApply.Apply(first, Labels("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},\"data\":{\"x\":\"1\"}}"), "one", false, "v1", "t");
        Assert.Equal("{\"x\":\"1\"}", dropped["data"]!.ToJsonString());
        Assert.Null(dropped["metadata"]!["labels"]?["a"]);

        var conflict = Assert.Throws<ApplyConflictException>(() => ServerSideApply.Apply(dropped, Labels("{\"metadata\":{\"name\":\"c\"},\"data\":{\"x\":\"2\"}}"), "two", false, "v1", "t"));
        Assert.Contains("conflict with \"one\": .data.x", conflict.Message, StringComparison.Ordinal);
        var forced = ServerSideApply.Apply(dropped, Labels("{\"metadata\":{\"name\":\"c\"},\"data\":{\"x\":\"2\"}}"), "two", true, "v1", "t");
        Assert.Equal("2", forced["data"]!["x"]!.GetValue<string>());
        Assert.Equal(["two"], forced["metadata"]!["managedFields"]!.AsArray().Select(m => m!["manager"]!.GetValue<string>()));
    }

    [Fact]
    public void Yaml_types_plain_scalars_and_keeps_quoted_ones_as_strings()
    {
        var doc = Yaml.Parse("a: 1\nb: \"1\"\nc: true\nd: ~\ne: 1.5\nf: [x, 'y']\ng: 25ms\n")!;
        Assert.Equal("{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":null,\"e\":1.5,\"f\":[\"x\",\"y\"],\"g\":\"25ms\"}", doc.ToJsonString());
        Assert.Equal(2, Yaml.ParseAll("a: 1\n---\nb: 2\n---\n").Count);
    }

    [Fact]
    public void Store_replays_history_after_a_revision_and_expires_old_ones()
    {
        var store = new InMemoryObjectStore(historyLimit: 3);
        for (var i = 0; i < 5; i++)
        {
            store.Create("/configmaps", "ns", $"c{i}", new JsonObject { ["metadata"] = new JsonObject { ["name"] = $"c{i}" } });
        }

        using var recent = store.Watch("/configmaps", "ns", store.Revision - 2);
        Assert.True(recent.Events.TryRead(out var e1) && e1.Name == "c3");
        Assert.True(recent.Events.TryRead(out var e2) && e2.Name == "c4" && e2.Object["metadata"]!["resourceVersion"]!.GetValue<string>() == store.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var expired = Assert.Throws<StoreException>(() => store.Watch("/configmaps", "ns", 1));
        Assert.Equal(StoreError.Expired, expired.Error);
        Assert.Equal(StoreError.Conflict, Assert.Throws<StoreException>(() => store.Update("/configmaps", "ns", "c0", [], 1)).Error);
    }

    private static JsonObject Node(string name, string zone) => Labels($"{{\"metadata\":{{\"name\":\"{name}\",\"labels\":{{\"kubernetes.io/hostname\":\"{name}\",\"topology.kubernetes.io/zone\":\"{zone}\",\"disk\":\"{(name == "n1" ? "ssd" : "hdd")}\"}}}}}}");

    private static JsonObject Pod(string name, string? node, string spec = "{}") =>
        Labels($"{{\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"ns\",\"labels\":{{\"app\":\"db\"}}}},\"spec\":{spec}}}") is var p && node is not null
            ? SetNode(p, node) : Labels($"{{\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"ns\",\"labels\":{{\"app\":\"db\"}}}},\"spec\":{spec}}}");

    private static JsonObject SetNode(JsonObject pod, string node)
    {
        pod["spec"]!["nodeName"] = node;
        return pod;
    }

    [Fact]
    public void Scheduler_honours_node_selector_anti_affinity_and_topology_spread()
    {
        JsonObject[] nodes = [Node("n1", "a"), Node("n2", "a"), Node("n3", "b")];
        Assert.NotNull(Runtime.Scheduler.Refusal(Pod("p", null, "{\"nodeSelector\":{\"disk\":\"ssd\"}}"), nodes[1], nodes, []));
        Assert.Null(Runtime.Scheduler.Refusal(Pod("p", null, "{\"nodeSelector\":{\"disk\":\"ssd\"}}"), nodes[0], nodes, []));

        var anti = "{\"affinity\":{\"podAntiAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":[{\"labelSelector\":{\"matchLabels\":{\"app\":\"db\"}},\"topologyKey\":\"topology.kubernetes.io/zone\"}]}}}";
        JsonObject[] placed = [Pod("db-0", "n1")];
        Assert.Equal("node(s) didn't match pod anti-affinity rules", Runtime.Scheduler.Refusal(Pod("db-1", null, anti), nodes[1], nodes, placed));
        Assert.Null(Runtime.Scheduler.Refusal(Pod("db-1", null, anti), nodes[2], nodes, placed));

        var spread = "{\"topologySpreadConstraints\":[{\"maxSkew\":1,\"topologyKey\":\"topology.kubernetes.io/zone\",\"whenUnsatisfiable\":\"DoNotSchedule\",\"labelSelector\":{\"matchLabels\":{\"app\":\"db\"}}}]}";
        JsonObject[] two = [Pod("db-0", "n1"), Pod("db-1", "n3")];
        Assert.Null(Runtime.Scheduler.Refusal(Pod("db-2", null, spread), nodes[1], nodes, two));
        JsonObject[] three = [Pod("db-0", "n1"), Pod("db-1", "n2")];
        Assert.Equal("node(s) didn't match pod topology spread constraints", Runtime.Scheduler.Refusal(Pod("db-2", null, spread), nodes[1], nodes, three));
    }

    [Fact]
    public void Link_faults_add_delays_combine_losses_and_partition_if_either_side_does()
    {
        var a = PodLinks.FaultsOf(Labels("{\"metadata\":{\"annotations\":{\"localkube.raftkv.io/delay\":\"25ms\",\"localkube.raftkv.io/loss\":\"0.1\"}}}"));
        var b = PodLinks.FaultsOf(Labels("{\"metadata\":{\"annotations\":{\"localkube.raftkv.io/delay\":\"1s\",\"localkube.raftkv.io/loss\":\"0.5\",\"localkube.raftkv.io/partition\":\"true\"}}}"));
        var both = PodLinks.Combine(a, b);
        Assert.Equal(TimeSpan.FromMilliseconds(1025), both.Delay);
        Assert.Equal(0.55, both.Loss, 6);
        Assert.True(both.Partitioned);
        Assert.Equal(LinkFaults.None, PodLinks.FaultsOf(Labels("{\"metadata\":{\"annotations\":{\"localkube.raftkv.io/delay\":\"soon\"}}}")));
    }
}
