using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace LocalKube.Tests;

/// <summary>API semantics over plain HTTP: concurrency, errors as Status objects, paging, watch, deletion.</summary>
public sealed class ApiSemanticsTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>, IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = kube.Url, Timeout = TimeSpan.FromSeconds(30) };

    public void Dispose() => _http.Dispose();

    private async Task<(HttpStatusCode Code, JsonObject Body)> Send(HttpMethod method, string path, JsonNode? body = null, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text) as JsonObject ?? throw new InvalidOperationException($"not an object: {text}"));
    }

    private async Task<string> Namespace(string prefix)
    {
        var name = $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";
        var (code, body) = await Send(HttpMethod.Post, "/api/v1/namespaces", new JsonObject { ["metadata"] = new JsonObject { ["name"] = name } });
        Assert.True(code == HttpStatusCode.Created, body.ToJsonString());
        return name;
    }

    private static JsonObject ConfigMap(string name, JsonObject? meta = null)
    {
        var m = meta ?? [];
        m["name"] = name;
        return new JsonObject { ["apiVersion"] = "v1", ["kind"] = "ConfigMap", ["metadata"] = m, ["data"] = new JsonObject { ["k"] = "v" } };
    }

    [Fact]
    public async Task Stale_resourceVersion_is_a_409_Conflict_Status()
    {
        var ns = await Namespace("cas");
        var (_, created) = await Send(HttpMethod.Post, $"/api/v1/namespaces/{ns}/configmaps", ConfigMap("c"));
        var rv = created["metadata"]!["resourceVersion"]!.GetValue<string>();
        Assert.False(string.IsNullOrEmpty(created["metadata"]!["uid"]?.GetValue<string>()));

        var first = (JsonObject)created.DeepClone();
        first["data"]!["k"] = "first";
        var (ok, updated) = await Send(HttpMethod.Put, $"/api/v1/namespaces/{ns}/configmaps/c", first);
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.True(long.Parse(updated["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > long.Parse(rv, System.Globalization.CultureInfo.InvariantCulture));

        var second = (JsonObject)created.DeepClone();
        second["data"]!["k"] = "second";
        var (code, status) = await Send(HttpMethod.Put, $"/api/v1/namespaces/{ns}/configmaps/c", second);
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Equal("Status", status["kind"]?.GetValue<string>());
        Assert.Equal("Conflict", status["reason"]?.GetValue<string>());
        Assert.Contains("the object has been modified", status["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var (missing, notFound) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Equal("configmaps \"nope\" not found", notFound["message"]?.GetValue<string>());
        var (dup, exists) = await Send(HttpMethod.Post, $"/api/v1/namespaces/{ns}/configmaps", ConfigMap("c"));
        Assert.Equal(HttpStatusCode.Conflict, dup);
        Assert.Equal("AlreadyExists", exists["reason"]?.GetValue<string>());
    }

    [Fact]
    public async Task Generation_counts_spec_changes_only_and_status_goes_through_its_subresource()
    {
        var ns = await Namespace("gen");
        var sts = new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "StatefulSet",
            ["metadata"] = new JsonObject { ["name"] = "s" },
            ["spec"] = new JsonObject
            {
                ["replicas"] = 3,
                ["serviceName"] = "s",
                ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = "s" } },
                ["template"] = new JsonObject
                {
                    ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["app"] = "s" } },
                    ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "c", ["image"] = "raftkv" }) },
                },
            },
        };
        var path = $"/apis/apps/v1/namespaces/{ns}/statefulsets";
        var (_, created) = await Send(HttpMethod.Post, path, sts);
        Assert.Equal(1, created["metadata"]!["generation"]!.GetValue<long>());
        var (_, labelled) = await Send(HttpMethod.Patch, path + "/s", new JsonObject { ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["x"] = "y" } } }, "application/merge-patch+json");
        Assert.Equal(1, labelled["metadata"]!["generation"]!.GetValue<long>());
        var (_, statusIgnored) = await Send(HttpMethod.Patch, path + "/s", new JsonObject { ["status"] = new JsonObject { ["readyReplicas"] = 3 } }, "application/merge-patch+json");
        Assert.Null(statusIgnored["status"]?["readyReplicas"]);
        var (_, withStatus) = await Send(HttpMethod.Patch, path + "/s/status", new JsonObject { ["status"] = new JsonObject { ["readyReplicas"] = 2 }, ["spec"] = new JsonObject { ["replicas"] = 7 } }, "application/merge-patch+json");
        Assert.Equal(2, withStatus["status"]!["readyReplicas"]!.GetValue<int>());
        Assert.Equal(3, withStatus["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal(1, withStatus["metadata"]!["generation"]!.GetValue<long>());
        var (_, scaled) = await Send(HttpMethod.Patch, path + "/s", new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 5 } }, "application/merge-patch+json");
        Assert.Equal(2, scaled["metadata"]!["generation"]!.GetValue<long>());
    }

    [Fact]
    public async Task List_pages_with_limit_and_continue_and_filters_by_labels()
    {
        var ns = await Namespace("page");
        for (var i = 0; i < 5; i++)
        {
            await Send(HttpMethod.Post, $"/api/v1/namespaces/{ns}/configmaps", ConfigMap($"c{i}", new JsonObject { ["labels"] = new JsonObject { ["parity"] = i % 2 == 0 ? "even" : "odd" } }));
        }

        var names = new List<string>();
        string? next = null;
        var pages = 0;
        do
        {
            var (_, page) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps?limit=2" + (next is null ? "" : "&continue=" + Uri.EscapeDataString(next)));
            pages++;
            names.AddRange(page["items"]!.AsArray().Select(i => i!["metadata"]!["name"]!.GetValue<string>()));
            next = page["metadata"]?["continue"]?.GetValue<string>();
        }
        while (next is not null && pages < 10);

        Assert.Equal(["c0", "c1", "c2", "c3", "c4"], names);
        Assert.Equal(3, pages);
        var (_, odd) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps?labelSelector=" + Uri.EscapeDataString("parity notin (even)"));
        Assert.Equal(["c1", "c3"], odd["items"]!.AsArray().Select(i => i!["metadata"]!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Dry_run_validates_but_stores_nothing()
    {
        var ns = await Namespace("dry");
        var (code, body) = await Send(HttpMethod.Post, $"/api/v1/namespaces/{ns}/configmaps?dryRun=All", ConfigMap("d"));
        Assert.Equal(HttpStatusCode.Created, code);
        Assert.Equal("d", body["metadata"]!["name"]!.GetValue<string>());
        var (missing, _) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps/d");
        Assert.Equal(HttpStatusCode.NotFound, missing);
    }

    [Fact]
    public async Task Finalizers_hold_deletion_until_removed()
    {
        var ns = await Namespace("fin");
        await Send(HttpMethod.Post, $"/api/v1/namespaces/{ns}/configmaps", ConfigMap("f", new JsonObject { ["finalizers"] = new JsonArray("example.com/x") }));
        var (code, deleting) = await Send(HttpMethod.Delete, $"/api/v1/namespaces/{ns}/configmaps/f");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.NotNull(deleting["metadata"]!["deletionTimestamp"]);
        var (_, still) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps/f");
        Assert.NotNull(still["metadata"]!["deletionTimestamp"]);
        await Send(HttpMethod.Patch, $"/api/v1/namespaces/{ns}/configmaps/f", new JsonObject { ["metadata"] = new JsonObject { ["finalizers"] = null } }, "application/merge-patch+json");
        var (gone, _) = await Send(HttpMethod.Get, $"/api/v1/namespaces/{ns}/configmaps/f");
        Assert.Equal(HttpStatusCode.NotFound, gone);
    }

    private static JsonObject OwnedBy(JsonObject owner, bool block = false) => new()
    {
        ["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "ConfigMap",
            ["name"] = owner["metadata"]!["name"]!.GetValue<string>(),
            ["uid"] = owner["metadata"]!["uid"]!.GetValue<string>(),
            ["blockOwnerDeletion"] = block,
        }),
    };

    [Fact]
    public async Task Garbage_collector_deletes_dependents_in_background_and_foreground_and_orphans_on_request()
    {
        var ns = await Namespace("gc");
        var path = $"/api/v1/namespaces/{ns}/configmaps";
        var (_, owner) = await Send(HttpMethod.Post, path, ConfigMap("owner"));
        await Send(HttpMethod.Post, path, ConfigMap("dep", OwnedBy(owner)));
        await Send(HttpMethod.Delete, path + "/owner", new JsonObject { ["propagationPolicy"] = "Background" });
        await LocalKubeFixture.WaitUntil(
            async () => (await Send(HttpMethod.Get, path + "/dep")).Code == HttpStatusCode.NotFound,
            async () => (await Send(HttpMethod.Get, path + "/dep")).Body.ToJsonString());

        // Foreground: the owner stays (with a deletionTimestamp) until its dependents are gone.
        var (_, fg) = await Send(HttpMethod.Post, path, ConfigMap("fg"));
        await Send(HttpMethod.Post, path, ConfigMap("fgdep", OwnedBy(fg, block: true)));
        var (_, deleting) = await Send(HttpMethod.Delete, path + "/fg", new JsonObject { ["propagationPolicy"] = "Foreground" });
        Assert.Contains("foregroundDeletion", deleting["metadata"]!["finalizers"]!.AsArray().Select(f => f!.GetValue<string>()));
        await LocalKubeFixture.WaitUntil(
            async () => (await Send(HttpMethod.Get, path + "/fg")).Code == HttpStatusCode.NotFound && (await Send(HttpMethod.Get, path + "/fgdep")).Code == HttpStatusCode.NotFound,
            async () => (await Send(HttpMethod.Get, path)).Body.ToJsonString());

        // Orphan: the dependent stays, without the owner reference.
        var (_, orphaner) = await Send(HttpMethod.Post, path, ConfigMap("or"));
        await Send(HttpMethod.Post, path, ConfigMap("ordep", OwnedBy(orphaner)));
        await Send(HttpMethod.Delete, path + "/or", new JsonObject { ["propagationPolicy"] = "Orphan" });
        await LocalKubeFixture.WaitUntil(
            async () => (await Send(HttpMethod.Get, path + "/or")).Code == HttpStatusCode.NotFound,
            async () => (await Send(HttpMethod.Get, path)).Body.ToJsonString());
        var (code, kept) = await Send(HttpMethod.Get, path + "/ordep");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Null(kept["metadata"]!["ownerReferences"]);
    }

    private async Task<List<JsonObject>> ReadEvents(string path, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        var events = new List<JsonObject>();
        while (events.Count < count)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"watch {path}: {events.Count} of {count} events in 20 s: {string.Join("\n", events.Select(e => e.ToJsonString()))}");
            }

            if (line is null)
            {
                break;
            }

            events.Add((JsonObject)JsonNode.Parse(line)!);
        }

        return events;
    }

    [Fact]
    public async Task Watch_from_a_resourceVersion_replays_later_changes_and_sends_bookmarks()
    {
        var ns = await Namespace("watch");
        var path = $"/api/v1/namespaces/{ns}/configmaps";
        var (_, a) = await Send(HttpMethod.Post, path, ConfigMap("a"));
        var from = a["metadata"]!["resourceVersion"]!.GetValue<string>();
        await Send(HttpMethod.Post, path, ConfigMap("b"));
        await Send(HttpMethod.Delete, path + "/a");

        var events = await ReadEvents($"{path}?watch=true&resourceVersion={from}&allowWatchBookmarks=true", 3);
        Assert.Equal(["ADDED:b", "DELETED:a", "BOOKMARK:"], events.Select(e => $"{e["type"]}:{e["object"]!["metadata"]!["name"]}"));
        var bookmarkRv = long.Parse(events[2]["object"]!["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(bookmarkRv >= long.Parse(events[1]["object"]!["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture));

        var fresh = await ReadEvents($"{path}?watch=1", 1);
        Assert.Equal("ADDED:b", $"{fresh[0]["type"]}:{fresh[0]["object"]!["metadata"]!["name"]}");
    }

    [Fact]
    public async Task Watch_from_a_compacted_resourceVersion_reports_410_Gone()
    {
        await using var small = await LocalKubeServer.StartAsync(new LocalKubeOptions { WatchHistory = 10 });
        using var http = new HttpClient { BaseAddress = small.Url };
        for (var i = 0; i < 30; i++)
        {
            using var content = new StringContent(ConfigMap($"c{i}").ToJsonString(), Encoding.UTF8, "application/json");
            (await http.PostAsync("/api/v1/namespaces/default/configmaps", content)).EnsureSuccessStatusCode();
        }

        var text = await http.GetStringAsync("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1");
        var first = JsonNode.Parse(text.Split('\n')[0])!;
        Assert.Equal("ERROR", first["type"]!.GetValue<string>());
        Assert.Equal(410, first["object"]!["code"]!.GetValue<int>());
        Assert.Equal("Expired", first["object"]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_restarted_API_server_cuts_watches_keeps_objects_on_the_same_port_and_expires_old_resourceVersions()
    {
        await using var server = await LocalKubeServer.StartAsync(new LocalKubeOptions());
        using var http = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(30) };
        long beforeRv;
        using (var content = new StringContent(ConfigMap("before").ToJsonString(), Encoding.UTF8, "application/json"))
        {
            var created = JsonNode.Parse(await (await http.PostAsync("/api/v1/namespaces/default/configmaps", content)).Content.ReadAsStringAsync())!;
            beforeRv = long.Parse(created["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        }

        var listed = JsonNode.Parse(await http.GetStringAsync("/api/v1/namespaces/default/configmaps"))!;
        var rv = listed["metadata"]!["resourceVersion"]!.GetValue<string>();
        using var open = await http.GetAsync($"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}", HttpCompletionOption.ResponseHeadersRead);
        var watchBody = await open.Content.ReadAsStreamAsync();

        await server.RestartApiServerAsync(TimeSpan.Zero, forgetWatchHistory: true);

        // The open watch was cut: its body ends (or fails) instead of waiting for events.
        var buffer = new byte[256];
        using var cut = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var ended = false;
        try
        {
            ended = await watchBody.ReadAsync(buffer, cut.Token) == 0;
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            ended = true;
        }

        Assert.True(ended, "the watch opened before the restart was still open after it");

        using var again = new HttpClient { BaseAddress = server.Url, Timeout = TimeSpan.FromSeconds(30) };
        var after = JsonNode.Parse(await again.GetStringAsync("/api/v1/namespaces/default/configmaps/before"))!;
        Assert.Equal("before", after["metadata"]!["name"]!.GetValue<string>());
        using (var content = new StringContent(ConfigMap("after").ToJsonString(), Encoding.UTF8, "application/json"))
        {
            var created = JsonNode.Parse(await (await again.PostAsync("/api/v1/namespaces/default/configmaps", content)).Content.ReadAsStringAsync())!;
            Assert.True(long.Parse(created["metadata"]!["resourceVersion"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > long.Parse(rv, System.Globalization.CultureInfo.InvariantCulture), created.ToJsonString());
        }

        // A watch resumed from before the restart (the write of "before" is no longer retained) must list again.
        var text = await again.GetStringAsync($"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={beforeRv - 1}&timeoutSeconds=1");
        var first = JsonNode.Parse(text.Split('\n')[0])!;
        Assert.True(first["object"]?["code"]?.GetValue<int>() == 410, text);
    }
}
