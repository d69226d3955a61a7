using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using RaftKv.SpecFuzz;

namespace RaftKv.Chaos.Operator;

/// <summary>How long a random-specs run is.</summary>
/// <param name="Creations">RaftClusters created with a random spec (names fuzz-N), each checked and deleted again.</param>
/// <param name="ValidCreations">How many of those are valid (they start pods and must become Available).</param>
/// <param name="StartReplicas">Members of the running cluster the edits work on (1 or 3; 0: random of the two).</param>
/// <param name="Edits">Edits of the running cluster: scale by 2, new timing, a rolling update, or an invalid edit.</param>
/// <param name="MaxReplicas">The most members a valid spec asks for (the control plane has 5 nodes).</param>
/// <param name="RollingUpdates">Whether edits may change the pod template (a rolling update of every pod).</param>
internal sealed record SpecPlan(int Creations, int ValidCreations, int StartReplicas, int Edits, int MaxReplicas, bool RollingUpdates);

/// <summary>
/// Random RaftCluster specs applied to the local control plane with the operator running (tests/RaftKv.SpecFuzz makes
/// them, as the operator's property test does). Broken specs (1–2 breakages: bad values, wrong JSON types, unknown enum
/// strings, Manual timing against the rules, changes of immutable fields) must be refused with a reason that names each
/// broken field: by the CRD's schema at admission, or accepted and then reported by the operator as Degraded=True
/// InvalidSpec for that very generation, with no StatefulSet made for a new cluster and, for an edit of the running
/// cluster, no pod deleted or restarted and writes still going through. Valid specs must be reconciled: a new cluster
/// Available with its member count (then deleted: it and its pods must go), an edit of the running one healthy at the
/// new member count, timing or pod template. Throughout: no raftkv container restarts (no crash loop), the operator
/// never exits and its /healthz answers, and every write acknowledged along the way reads back at the end.
/// </summary>
internal static class RandomSpecScenario
{
    public static SpecPlan Short { get; } = new(Creations: 4, ValidCreations: 0, StartReplicas: 1, Edits: 4, MaxReplicas: 3, RollingUpdates: false);

    public static SpecPlan Long { get; } = new(Creations: 10, ValidCreations: 3, StartReplicas: 0, Edits: 14, MaxReplicas: 5, RollingUpdates: true);

    private const string Cluster = KubeEnvironment.ClusterName;
    private static readonly TimeSpan DecisionTimeout = TimeSpan.FromSeconds(60);

    public static Scenario Make(string name, bool bounded, SpecPlan plan) =>
        new(name, 3, bounded, _ => Task.CompletedTask, Custom: (seed, options, ct) =>
            OperatorScenarios.RunInEnvironmentAsync(name, seed, options, (env, log, c) => RunAsync(env, seed, plan, log, c), ct));

    private static async Task<string> RunAsync(KubeEnvironment env, int seed, SpecPlan plan, EventLog log, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var problems = new List<string>();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        void Count(string what) => counts[what] = counts.GetValueOrDefault(what) + 1;

        // New clusters with random specs, each checked and deleted again.
        var validLeft = plan.ValidCreations;
        for (var i = 0; i < plan.Creations; i++)
        {
            var name = $"fuzz-{i}";
            var valid = validLeft > 0 && random.Next(plan.Creations - i) < validLeft;
            var spec = RandomSpecs.Valid(random, SpecRanges.Runnable(valid ? 3 : plan.MaxReplicas));
            var breakages = new List<Breakage>();
            if (!valid)
            {
                for (var m = 1 + random.Next(2); m > 0; m--)
                {
                    breakages.Add(RandomSpecs.Break(spec, random, breakages, schemaBreakages: true));
                }
            }
            else
            {
                validLeft--;
            }

            log.Add($"create {name}: {(valid ? "valid" : "broken: " + string.Join("; ", breakages))}; spec {spec.ToJsonString()}");
            var (code, body) = await env.CreateClusterAsync(spec, cancellationToken, name);
            if (valid)
            {
                if (code != HttpStatusCode.Created)
                {
                    problems.Add($"{name}: a valid spec was refused: {(int)code} {Message(body)}; spec {spec.ToJsonString()}");
                    continue;
                }

                var replicas = spec["replicas"]!.GetValue<int>();
                await WaitAvailableAsync(env, name, replicas, TimeSpan.FromMinutes(4), log, cancellationToken);
                problems.AddRange(await RestartsAsync(env, name, cancellationToken));
                Count("valid new cluster Available");
            }
            else
            {
                var outcome = await CheckRefusedAsync(env, name, code, body, breakages, log, problems, cancellationToken);
                Count(outcome);
                if (code == HttpStatusCode.Created && await env.GetAsync($"/apis/apps/v1/namespaces/{KubeEnvironment.Namespace}/statefulsets/{name}", cancellationToken) is not null)
                {
                    problems.Add($"{name}: the operator made a StatefulSet for an invalid spec ({string.Join("; ", breakages)})");
                }
            }

            if (code == HttpStatusCode.Created)
            {
                await env.DeleteClusterAsync(name, TimeSpan.FromMinutes(2), cancellationToken);
            }
        }

        // The running cluster and its edits.
        var current = RandomSpecs.Valid(random, SpecRanges.Runnable(plan.MaxReplicas));
        current["replicas"] = plan.StartReplicas > 0 ? plan.StartReplicas : random.Next(2) == 0 ? 1 : 3;
        log.Add($"create {Cluster}: {current.ToJsonString()}");
        var (created, createdBody) = await env.CreateClusterAsync(current, cancellationToken);
        if (created != HttpStatusCode.Created)
        {
            throw new ChaosFailure($"the running cluster's valid spec was refused: {(int)created} {Message(createdBody)}; spec {current.ToJsonString()}");
        }

        var replicasNow = current["replicas"]!.GetValue<int>();
        await env.WaitHealthyAsync(replicasNow, TimeSpan.FromMinutes(4), cancellationToken);
        using var channel = await env.ServiceChannelAsync(cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writer = new AckedWriter();
        var writing = writer.RunAsync(channel, 0, stop.Token);
        var brokenInPlace = false;
        try
        {
            for (var e = 0; e < plan.Edits; e++)
            {
                // After an invalid spec was accepted, the next edit fixes it.
                var invalid = !brokenInPlace && random.Next(5) < 2;
                var candidate = current.DeepClone().AsObject();
                if (invalid)
                {
                    var breakages = new List<Breakage>();
                    if (random.Next(4) == 0)
                    {
                        breakages.Add(ChangeImmutable(candidate, random));
                    }
                    else
                    {
                        for (var m = 1 + random.Next(2); m > 0; m--)
                        {
                            breakages.Add(RandomSpecs.Break(candidate, random, breakages, schemaBreakages: true));
                        }
                    }

                    var before = await ShapeAsync(env, cancellationToken);
                    var acked = writer.Acked;
                    log.Add($"edit {e}: invalid: {string.Join("; ", breakages)}; spec {candidate.ToJsonString()}");
                    var (code, body) = await env.ReplaceSpecAsync(Cluster, candidate, cancellationToken);
                    Count("invalid edit: " + await CheckRefusedAsync(env, Cluster, code, body, breakages, log, problems, cancellationToken));
                    brokenInPlace = code == HttpStatusCode.OK;

                    // The cluster keeps its last good shape and serves.
                    await WaitForAsync(() => writer.Acked >= acked + 3, TimeSpan.FromSeconds(30), cancellationToken);
                    if (writer.Acked < acked + 3)
                    {
                        problems.Add($"edit {e}: after the invalid edit ({string.Join("; ", breakages)}) writes stopped: {writer.Acked - acked} acknowledged in 30 s");
                    }

                    var after = await ShapeAsync(env, cancellationToken);
                    if (after != before)
                    {
                        problems.Add($"edit {e}: the invalid edit ({string.Join("; ", breakages)}) changed the cluster: before {before}, after {after}");
                    }

                    continue;
                }

                brokenInPlace = false;
                var kinds = new List<string> { "retime" };
                if (replicasNow + 2 <= plan.MaxReplicas)
                {
                    kinds.Add("scale up");
                }

                if (replicasNow - 2 >= 1)
                {
                    kinds.Add("scale down");
                }

                if (plan.RollingUpdates)
                {
                    kinds.Add("rolling update");
                }

                var kind = kinds[random.Next(kinds.Count)];
                (string, string)? annotation = null;
                switch (kind)
                {
                    case "scale up":
                        candidate["replicas"] = replicasNow + 2;
                        break;
                    case "scale down":
                        candidate["replicas"] = replicasNow - 2;
                        break;
                    case "retime":
                        candidate["tuning"] = RandomSpecs.Timing(random, SpecRanges.Runnable(plan.MaxReplicas));
                        break;
                    default:
                        {
                            var value = random.Next().ToString(CultureInfo.InvariantCulture);
                            var template = candidate["podTemplate"] as JsonObject ?? [];
                            candidate["podTemplate"] = template;
                            var annotations = template["annotations"] as JsonObject ?? [];
                            template["annotations"] = annotations;
                            annotations["chaos.raftkv.io/roll"] = value;
                            annotation = ("chaos.raftkv.io/roll", value);
                            break;
                        }
                }

                log.Add($"edit {e}: {kind}; spec {candidate.ToJsonString()}");
                var (answer, answerBody) = await env.ReplaceSpecAsync(Cluster, candidate, cancellationToken);
                if (answer != HttpStatusCode.OK)
                {
                    problems.Add($"edit {e}: the valid edit ({kind}) was refused: {(int)answer} {Message(answerBody)}; spec {candidate.ToJsonString()}");
                    continue;
                }

                var generation = answerBody?["metadata"]?["generation"]?.GetValue<long>() ?? 0;
                current = candidate;
                replicasNow = current["replicas"]!.GetValue<int>();
                await WaitObservedAsync(env, Cluster, generation, TimeSpan.FromMinutes(1), cancellationToken);
                await env.WaitHealthyAsync(replicasNow, TimeSpan.FromMinutes(kind == "rolling update" ? 6 : 4), cancellationToken, annotation);
                if (kind == "retime")
                {
                    await WaitTimingAsync(env, current["tuning"]!.AsObject(), TimeSpan.FromMinutes(2), log, problems, cancellationToken);
                }

                Count(kind);
                problems.AddRange((await RestartsAsync(env, Cluster, cancellationToken)).Select(p => $"edit {e} ({kind}): {p}"));
            }

            var atEnd = writer.Acked;
            await WaitForAsync(() => writer.Acked >= atEnd + 10, TimeSpan.FromSeconds(30), cancellationToken);
        }
        finally
        {
            await stop.CancelAsync();
            await writing;
        }

        problems.AddRange((await writer.VerifyAsync(channel, cancellationToken)).Take(5));
        problems.AddRange(await RestartsAsync(env, Cluster, cancellationToken));
        problems.AddRange(env.OperatorCrashes);
        if (await env.OperatorHealthProblemAsync(cancellationToken) is { } unhealthy)
        {
            problems.Add(unhealthy);
        }

        var events = await env.OperatorEventsAsync(cancellationToken);
        log.Add("operator events: " + string.Join(" | ", events.Select(x => $"{x.Reason}: {x.Message}")));
        if (problems.Count > 0)
        {
            throw new ChaosFailure(string.Join("\n  ", problems));
        }

        return $"{string.Join(", ", counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {c.Value}"))}; {writer.Acked} acknowledged writes all read back " +
            $"({writer.Errors} errors, longest gap {writer.LongestGap.TotalSeconds:0.0} s); operator events: " +
            string.Join(", ", events.GroupBy(x => x.Reason).Select(g => $"{g.Key} {g.Count()}"));
    }

    /// <summary>A change of a field that cannot change after creation (the storage the members' volumes were made with).</summary>
    private static Breakage ChangeImmutable(JsonObject spec, Random random)
    {
        var storage = spec["storage"]!.AsObject();
        if (random.Next(2) == 0)
        {
            var size = storage["size"]?.GetValue<string>() == "3Gi" ? "4Gi" : "3Gi";
            var was = storage["size"]?.GetValue<string>();
            storage["size"] = size;
            return new("spec.storage.size", $"size changed from {was} to {size} (immutable)", true);
        }

        storage["storageClassName"] = "another-class";
        return new("spec.storage", "storageClassName added (immutable)", true);
    }

    /// <summary>
    /// Checks a broken spec's answer: refused (422) with a reason naming every field the schema refuses, or accepted and
    /// then reported Degraded=True InvalidSpec for its generation naming every broken field. Returns how it was refused.
    /// </summary>
    private static async Task<string> CheckRefusedAsync(KubeEnvironment env, string name, HttpStatusCode code, JsonNode? body, List<Breakage> breakages,
        EventLog log, List<string> problems, CancellationToken cancellationToken)
    {
        var what = string.Join("; ", breakages);
        if (code == HttpStatusCode.UnprocessableEntity)
        {
            var text = Message(body);
            log.Add($"{name}: refused at admission: {text}");
            var unnamed = breakages.Where(b => b.RefusedAtAdmission && !text.Contains(b.Field, StringComparison.Ordinal)).ToList();
            if (unnamed.Count > 0 || !breakages.Any(b => text.Contains(b.Field, StringComparison.Ordinal)))
            {
                problems.Add($"{name}: refused at admission, but the reason does not name {string.Join(", ", (unnamed.Count > 0 ? unnamed : breakages).Select(b => b.Field))} ({what}): {text}");
            }

            return "refused at admission";
        }

        if (code is not (HttpStatusCode.Created or HttpStatusCode.OK))
        {
            problems.Add($"{name}: the broken spec ({what}) got {(int)code} {Message(body)}");
            return "other answer";
        }

        foreach (var b in breakages.Where(b => b.RefusedAtAdmission))
        {
            problems.Add($"{name}: the API server accepted {b} (the CRD's schema should refuse it)");
        }

        var generation = body?["metadata"]?["generation"]?.GetValue<long>() ?? 0;
        var deadline = DateTime.UtcNow + DecisionTimeout;
        var seen = "nothing";
        while (DateTime.UtcNow < deadline)
        {
            var status = (await env.GetAsync(KubeEnvironment.ClusterPath(name), cancellationToken))?["status"];
            var degraded = status?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Degraded");
            seen = status?.ToJsonString() ?? "no status";
            if (degraded?["status"]?.GetValue<string>() == "True" && degraded["reason"]?.GetValue<string>() == "InvalidSpec"
                && degraded["observedGeneration"]?.GetValue<long>() == generation && status?["observedGeneration"]?.GetValue<long>() == generation)
            {
                var message = degraded["message"]?.GetValue<string>() ?? "";
                log.Add($"{name}: accepted, the operator reports InvalidSpec for generation {generation}: {message}");
                var unnamed = breakages.Where(b => !b.SchemaOnly && !message.Contains(b.Field, StringComparison.Ordinal)).ToList();
                if (unnamed.Count > 0)
                {
                    problems.Add($"{name}: the operator's InvalidSpec message does not name {string.Join(", ", unnamed.Select(b => b.Field))} ({what}): {message}");
                }

                return "accepted, operator reports InvalidSpec";
            }

            await Task.Delay(250, cancellationToken);
        }

        problems.Add($"{name}: the broken spec ({what}) was accepted and within {DecisionTimeout.TotalSeconds:0} s the operator reported no Degraded=True " +
            $"InvalidSpec condition for generation {generation}; last status: {seen}");
        return "accepted, not reported";
    }

    /// <summary>What an invalid edit must not change: the StatefulSet's size and template, each pod's UID, readiness and restarts.</summary>
    private static async Task<string> ShapeAsync(KubeEnvironment env, CancellationToken cancellationToken)
    {
        var set = await env.GetAsync($"/apis/apps/v1/namespaces/{KubeEnvironment.Namespace}/statefulsets/{Cluster}", cancellationToken);
        var pods = await env.PodsAsync(cancellationToken);
        var podText = pods
            .Select(p => $"{p?["metadata"]?["name"]}/{p?["metadata"]?["uid"]}/ready={KubeEnvironment.IsReady(p)}/restarts={RestartCount(p)}")
            .Order(StringComparer.Ordinal);
        return $"statefulset replicas {set?["spec"]?["replicas"]}, template {set?["spec"]?["template"]?.ToJsonString().GetHashCode(StringComparison.Ordinal):x8}; pods [{string.Join(", ", podText)}]";
    }

    private static int RestartCount(JsonNode? pod) =>
        pod?["status"]?["containerStatuses"]?.AsArray().Sum(c => c?["restartCount"]?.GetValue<int>() ?? 0) ?? 0;

    /// <summary>Every container restart of the cluster's pods (raftkv must not crash on any spec the operator accepted).</summary>
    private static async Task<List<string>> RestartsAsync(KubeEnvironment env, string cluster, CancellationToken cancellationToken) =>
        [.. (await env.PodsAsync(cluster, cancellationToken))
            .Where(p => RestartCount(p) > 0)
            .Select(p => $"pod {p?["metadata"]?["name"]} restarted {RestartCount(p)} times: {p?["status"]?["containerStatuses"]?.ToJsonString()}")];

    /// <summary>A new cluster Available with <paramref name="replicas"/> voters and ready pods, for its generation.</summary>
    private static async Task WaitAvailableAsync(KubeEnvironment env, string name, int replicas, TimeSpan timeout, EventLog log, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        var seen = "nothing";
        while (DateTime.UtcNow < deadline)
        {
            var cluster = await env.GetAsync(KubeEnvironment.ClusterPath(name), cancellationToken);
            var status = cluster?["status"];
            var pods = await env.PodsAsync(name, cancellationToken);
            seen = $"status {status?.ToJsonString()}; {pods.Count} pods, {pods.Count(KubeEnvironment.IsReady)} ready";
            if (KubeEnvironment.IsAvailable(status) && status?["voters"]?.GetValue<int>() == replicas && pods.Count == replicas && pods.All(KubeEnvironment.IsReady)
                && status?["observedGeneration"]?.GetValue<long>() == cluster?["metadata"]?["generation"]?.GetValue<long>())
            {
                log.Add($"{name} Available with {replicas} members");
                return;
            }

            await Task.Delay(500, cancellationToken);
        }

        throw new ChaosFailure($"{name} (valid) not Available with {replicas} members within {timeout.TotalSeconds:0} s; last seen: {seen}");
    }

    private static async Task WaitObservedAsync(KubeEnvironment env, string name, long generation, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        long? observed = null;
        while (DateTime.UtcNow < deadline)
        {
            observed = (await env.GetAsync(KubeEnvironment.ClusterPath(name), cancellationToken))?["status"]?["observedGeneration"]?.GetValue<long>();
            if (observed >= generation)
            {
                return;
            }

            await Task.Delay(250, cancellationToken);
        }

        throw new ChaosFailure($"{name}: the operator did not observe generation {generation} within {timeout.TotalSeconds:0} s (status.observedGeneration {observed})");
    }

    /// <summary>After a Manual retime, the status reports exactly that timing in force.</summary>
    private static async Task WaitTimingAsync(KubeEnvironment env, JsonObject tuning, TimeSpan timeout, EventLog log, List<string> problems, CancellationToken cancellationToken)
    {
        if (tuning["mode"]?.GetValue<string>() != "Manual")
        {
            return;
        }

        var heartbeat = Milliseconds(tuning["heartbeatInterval"]!.GetValue<string>());
        var election = Milliseconds(tuning["electionTimeout"]!.GetValue<string>());
        var deadline = DateTime.UtcNow + timeout;
        var seen = "nothing";
        while (DateTime.UtcNow < deadline)
        {
            var status = (await env.GetAsync(KubeEnvironment.ClusterPath(Cluster), cancellationToken))?["status"]?["tuning"];
            seen = status?.ToJsonString() ?? "no tuning status";
            if (status?["heartbeatInterval"]?.GetValue<string>() is { } h && status["electionTimeout"]?.GetValue<string>() is { } el
                && Milliseconds(h) == heartbeat && Milliseconds(el) == election)
            {
                log.Add($"timing in force: {seen}");
                return;
            }

            await Task.Delay(500, cancellationToken);
        }

        problems.Add($"Manual timing {tuning.ToJsonString()} not in force within {timeout.TotalSeconds:0} s; status.tuning {seen}");
    }

    /// <summary>A Go duration of h/m/s/ms parts ("1.5s", "1m30s", "250ms") in milliseconds.</summary>
    internal static double Milliseconds(string text)
    {
        double total = 0;
        foreach (Match m in Regex.Matches(text, @"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)"))
        {
            var value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            total += value * m.Groups[2].Value switch { "h" => 3_600_000, "m" => 60_000, "s" => 1000, _ => 1 };
        }

        return Math.Round(total, 3);
    }

    private static string Message(JsonNode? body) =>
        body is JsonObject o ? (o["message"]?.ToString() ?? o.ToJsonString()) + (o["details"]?["causes"] is JsonArray causes ? " causes " + causes.ToJsonString() : "") : body?.ToJsonString() ?? "(no body)";

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, cancellationToken);
        }
    }
}
