using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos.Operator;

/// <summary>What an operator scenario's fault schedule works with.</summary>
internal sealed class OperatorContext
{
    public required KubeEnvironment Env { get; init; }

    public required Random Random { get; init; }

    public required EventLog Log { get; init; }

    public required CancellationToken Cancellation { get; init; }

    public Task PauseAsync(int minMs, int maxMs) => Task.Delay(Random.Next(minMs, maxMs + 1), Cancellation);

    /// <summary>Polls the leader's member list until <paramref name="condition"/> holds (a point in the middle of a change).</summary>
    public async Task<List<(string Name, ulong Id, bool Learner)>> WaitMembersAsync(string what, Func<List<(string Name, ulong Id, bool Learner)>, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var seen = "nothing";
        while (DateTime.UtcNow < deadline)
        {
            if (await Env.LeaderMemberListAsync(Cancellation) is { } list)
            {
                seen = Describe(list.Members);
                if (condition(list.Members))
                {
                    Log.Add($"reached: {what} ({seen})");
                    return list.Members;
                }
            }

            await Task.Delay(150, Cancellation);
        }

        throw new ChaosFailure($"{what}: not within {timeout.TotalSeconds:0} s; the leader's member list last was {seen}");
    }

    public static string Describe(IEnumerable<(string Name, ulong Id, bool Learner)> members) =>
        "[" + string.Join(", ", members.OrderBy(m => m.Name, StringComparer.Ordinal).Select(m => m.Name + (m.Learner ? " (learner)" : ""))) + "]";
}

/// <summary>
/// Fault scenarios of the operator on the local control plane (full set only: each starts a control plane, the
/// operator and a 3-member RaftCluster, and takes minutes). While the faults run, two clients put unique keys through
/// the client Service and a sampler reads the leader's member list every ~200 ms. Checks: the cluster ends healthy as
/// specified; every acknowledged write reads back; no member-list sample has more than one learner, a voter count
/// outside the scenario's range or a member not named after an ordinal; consecutive samples differ by at most one
/// voter (one voter change at a time); the operator never exited by itself and its /healthz answers ok.
/// </summary>
internal static class OperatorScenarios
{
    public static IReadOnlyList<Scenario> All { get; } =
    [
        Make("operator-killed-mid-scale", KilledMidScaleAsync),
        Make("operator-killed-mid-rolling-update", KilledMidRollingUpdateAsync),
        Make("pods-killed-while-scaling", PodsKilledWhileScalingAsync),
        Make("apiserver-restarted-while-scaling", ApiServerRestartedWhileScalingAsync),
        RandomSpecScenario.Make("random-specs-short", true, RandomSpecScenario.Short),
        RandomSpecScenario.Make("random-specs", false, RandomSpecScenario.Long),
    ];

    private static Scenario Make(string name, Func<OperatorContext, Task<(int Replicas, (string, string)? Annotation)>> faults) =>
        new(name, 3, false, _ => Task.CompletedTask, Custom: (seed, options, ct) => RunAsync(name, seed, options, faults, ct));

    private const int MaxReplicas = 5;

    private static JsonObject InitialSpec() => new()
    {
        ["replicas"] = 3,
        ["storage"] = new JsonObject { ["size"] = "1Gi" },

        // Fixed timing: Auto tuning follows what it measures, which on a loaded shared machine can be an election timeout of tens of seconds.
        ["tuning"] = new JsonObject { ["mode"] = "Manual", ["heartbeatInterval"] = "200ms", ["electionTimeout"] = "2s" },
    };

    private static async Task<(int, (string, string)?)> KilledMidScaleAsync(OperatorContext c)
    {
        await c.Env.PatchSpecAsync(new JsonObject { ["replicas"] = 5 }, c.Cancellation);
        await c.WaitMembersAsync("a learner added for the 4th member", m => m.Count >= 4, TimeSpan.FromMinutes(2));
        await c.PauseAsync(0, 1500);
        await c.Env.KillOperatorAsync();
        await c.PauseAsync(500, 3000);
        c.Env.StartOperator();
        await c.WaitMembersAsync("4 voters", m => m.Count(x => !x.Learner) >= 4, TimeSpan.FromMinutes(3));
        await c.WaitMembersAsync("a learner added for the 5th member", m => m.Count >= 5, TimeSpan.FromMinutes(3));
        await c.PauseAsync(0, 1000);
        await c.Env.KillOperatorAsync();
        await c.PauseAsync(500, 3000);
        c.Env.StartOperator();
        return (5, null);
    }

    private static async Task<(int, (string, string)?)> KilledMidRollingUpdateAsync(OperatorContext c)
    {
        var value = c.Random.Next().ToString(CultureInfo.InvariantCulture);
        const string Key = "chaos.raftkv.io/roll";
        await c.Env.PatchSpecAsync(new JsonObject { ["podTemplate"] = new JsonObject { ["annotations"] = new JsonObject { [Key] = value } } }, c.Cancellation);
        for (var rolled = 1; rolled <= 2; rolled++)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (true)
            {
                var pods = await c.Env.PodsAsync(c.Cancellation);
                var count = pods.Count(p => p?["metadata"]?["annotations"]?[Key]?.GetValue<string>() == value);
                if (count >= rolled)
                {
                    c.Log.Add($"{count} pod(s) on the new template");
                    break;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new ChaosFailure($"the rolling update did not reach {rolled} pod(s) within 3 minutes");
                }

                await Task.Delay(150, c.Cancellation);
            }

            await c.PauseAsync(0, 1500);
            await c.Env.KillOperatorAsync();
            await c.PauseAsync(500, 3000);
            c.Env.StartOperator();
        }

        return (3, (Key, value));
    }

    private static async Task<(int, (string, string)?)> PodsKilledWhileScalingAsync(OperatorContext c)
    {
        await c.Env.PatchSpecAsync(new JsonObject { ["replicas"] = 5 }, c.Cancellation);
        var members = await c.WaitMembersAsync("a learner added for the 4th member", m => m.Count >= 4, TimeSpan.FromMinutes(2));
        var voters = members.Where(m => !m.Learner).Select(m => m.Name).Order(StringComparer.Ordinal).ToList();
        await c.PauseAsync(0, 1000);
        await c.Env.DeletePodAsync(voters[c.Random.Next(voters.Count)], c.Cancellation);
        members = await c.WaitMembersAsync("4 voters", m => m.Count(x => !x.Learner) >= 4, TimeSpan.FromMinutes(3));
        await c.PauseAsync(0, 1000);

        // The second victim may be the leader or the newest member.
        var all = members.Select(m => m.Name).Order(StringComparer.Ordinal).ToList();
        await c.Env.DeletePodAsync(all[c.Random.Next(all.Count)], c.Cancellation);
        return (5, null);
    }

    private static async Task<(int, (string, string)?)> ApiServerRestartedWhileScalingAsync(OperatorContext c)
    {
        await c.Env.PatchSpecAsync(new JsonObject { ["replicas"] = 5 }, c.Cancellation);
        await c.WaitMembersAsync("a learner added for the 4th member", m => m.Count >= 4, TimeSpan.FromMinutes(2));
        var downtime = TimeSpan.FromMilliseconds(c.Random.Next(500, 4000));
        await c.Env.Kube.RestartApiServerAsync(downtime, forgetWatchHistory: true, c.Cancellation);
        c.Log.Add($"API server restarted ({downtime.TotalMilliseconds:0} ms down, watch history forgotten: resumed watches get 410)");
        await c.WaitMembersAsync("4 voters", m => m.Count(x => !x.Learner) >= 4, TimeSpan.FromMinutes(3));
        downtime = TimeSpan.FromMilliseconds(c.Random.Next(500, 4000));
        await c.Env.Kube.RestartApiServerAsync(downtime, forgetWatchHistory: c.Random.Next(2) == 0, c.Cancellation);
        c.Log.Add($"API server restarted again ({downtime.TotalMilliseconds:0} ms down)");
        return (5, null);
    }

    public static Task<ScenarioResult> RunAsync(string name, int seed, ChaosOptions options,
        Func<OperatorContext, Task<(int Replicas, (string, string)? Annotation)>> faults, CancellationToken cancellationToken) =>
        RunInEnvironmentAsync(name, seed, options, (env, log, ct) => RunStartedAsync(env, seed, log, faults, ct), cancellationToken);

    /// <summary>
    /// Starts the local control plane and the operator, runs <paramref name="body"/> (its result is the summary; a
    /// <see cref="ChaosFailure"/> or a transport error fails the scenario), keeps the logs of a failure and stops everything.
    /// </summary>
    public static async Task<ScenarioResult> RunInEnvironmentAsync(string name, int seed, ChaosOptions options,
        Func<KubeEnvironment, EventLog, CancellationToken, Task<string>> body, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var root = Directory.CreateTempSubdirectory($"raftkv-chaos-{name}-").FullName;
        var log = new EventLog();
        log.Add($"scenario {name}, seed {seed}");
        string summary = "";
        string? failure = null;
        KubeEnvironment? env = null;
        try
        {
            env = await KubeEnvironment.StartAsync(options.Binary, root, log, cancellationToken);
            summary = await body(env, log, cancellationToken);
        }
        catch (Exception e) when (e is ChaosFailure or RpcException or TimeoutException or OperationCanceledException or IOException or HttpRequestException or InvalidOperationException)
        {
            failure = e is ChaosFailure ? e.Message : $"{e.GetType().Name}: {e.Message}";
        }

        string? keptAt = null;
        if (failure is not null)
        {
            log.Add("FAILED: " + failure);
            keptAt = Keep(name, seed, log, env, options.ResultsDir);
        }

        if (env is not null)
        {
            await env.DisposeAsync();
        }

        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A temp directory left behind is harmless.
        }

        return new ScenarioResult(name, seed, failure is null, clock.Elapsed, summary, failure, keptAt);
    }

    private static async Task<string> RunStartedAsync(KubeEnvironment env, int seed, EventLog log,
        Func<OperatorContext, Task<(int Replicas, (string, string)? Annotation)>> faults, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var (code, body) = await env.CreateClusterAsync(InitialSpec(), cancellationToken);
        if (code != System.Net.HttpStatusCode.Created)
        {
            throw new ChaosFailure($"RaftCluster refused: {(int)code} {body?.ToJsonString()}");
        }

        await env.WaitHealthyAsync(3, TimeSpan.FromMinutes(4), cancellationToken);
        var startUp = clock.Elapsed;

        using var channel = await env.ServiceChannelAsync(cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writer = new AckedWriter();
        var sampler = new MemberSampler(env, 3, MaxReplicas);
        var writers = Enumerable.Range(0, 2).Select(i => writer.RunAsync(channel, i, stop.Token)).ToList();
        var sampling = sampler.RunAsync(stop.Token);
        var context = new OperatorContext { Env = env, Random = new Random(seed), Log = log, Cancellation = cancellationToken };
        int replicas;
        (string, string)? annotation;
        var faultClock = Stopwatch.StartNew();
        try
        {
            (replicas, annotation) = await faults(context);
            if (!env.OperatorRunning)
            {
                env.StartOperator();
            }

            await env.WaitHealthyAsync(replicas, TimeSpan.FromMinutes(5), cancellationToken, annotation);
            var afterFaults = writer.Acked;

            // The cluster takes writes once healed.
            var more = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (writer.Acked < afterFaults + 10 && DateTime.UtcNow < more)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            await sampling;
        }

        var faultTime = faultClock.Elapsed;
        var problems = new List<string>();
        problems.AddRange((await writer.VerifyAsync(channel, cancellationToken)).Take(5));
        problems.AddRange(sampler.Problems.Take(5));
        problems.AddRange(env.OperatorCrashes);
        if (await env.OperatorHealthProblemAsync(cancellationToken) is { } unhealthy)
        {
            problems.Add(unhealthy);
        }

        var events = await env.OperatorEventsAsync(cancellationToken);
        log.Add("operator events: " + string.Join(" | ", events.Select(e => $"{e.Reason}: {e.Message}")));
        var steps = events.GroupBy(e => e.Reason).Select(g => $"{g.Key} {g.Count()}").ToList();
        if (problems.Count > 0)
        {
            throw new ChaosFailure(string.Join("\n  ", problems));
        }

        return $"start-up {startUp.TotalSeconds:0} s, faults to healthy {faultTime.TotalSeconds:0} s; {writer.Acked} acknowledged writes all read back " +
            $"({writer.Errors} errors, longest gap between acknowledged writes {writer.LongestGap.TotalSeconds:0.0} s); {sampler.Samples} member-list samples " +
            $"(voter sets seen: {string.Join(" → ", sampler.VoterSets)}); operator events: {string.Join(", ", steps)}";
    }

    private static string Keep(string name, int seed, EventLog log, KubeEnvironment? env, string resultsDir)
    {
        var dir = Path.Combine(resultsDir, $"{name}-seed{seed.ToString(CultureInfo.InvariantCulture)}");
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            Directory.CreateDirectory(dir);
            var replay = $"replay: make chaos ARGS='--scenario {name} --seed {seed}'\n";
            File.WriteAllText(Path.Combine(dir, "schedule.log"), replay + string.Join('\n', log.Lines) + "\n");
            env?.KeepLogs(dir);
        }
        catch (IOException e)
        {
            return $"{dir} (incomplete: {e.Message})";
        }

        return dir;
    }
}

/// <summary>Clients that put unique keys (op/CLIENT/N) one after another and remember which were acknowledged.</summary>
internal sealed class AckedWriter
{
    public const string Prefix = "op/";

    private readonly ConcurrentDictionary<string, string> _acked = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private DateTime _lastAck = DateTime.UtcNow;
    private int _errors;

    public int Acked => _acked.Count;

    public int Errors => Volatile.Read(ref _errors);

    public TimeSpan LongestGap { get; private set; }

    public async Task RunAsync(GrpcChannel channel, int client, CancellationToken cancellationToken)
    {
        var kv = new KV.KVClient(channel);
        for (var i = 0; !cancellationToken.IsCancellationRequested; i++)
        {
            var key = $"{Prefix}{client}/{i:D6}";
            var value = $"v{client}-{i}";
            try
            {
                await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) },
                    deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: cancellationToken);
                _acked[key] = value;
                lock (_lock)
                {
                    var now = DateTime.UtcNow;
                    LongestGap = now - _lastAck > LongestGap ? now - _lastAck : LongestGap;
                    _lastAck = now;
                }
            }
            catch (RpcException) when (!cancellationToken.IsCancellationRequested)
            {
                // Unknown outcome: the write may or may not have happened; only acknowledged ones are checked.
                Interlocked.Increment(ref _errors);
                await Task.Delay(100, CancellationToken.None);
            }
            catch (RpcException)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Reads every key under the prefix (linearizably) and reports each acknowledged write missing or changed.</summary>
    public async Task<List<string>> VerifyAsync(GrpcChannel channel, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                var response = await new KV.KVClient(channel).RangeAsync(new RangeRequest
                {
                    Key = ByteString.CopyFromUtf8(Prefix),
                    RangeEnd = ByteString.CopyFromUtf8("op0"),
                }, deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: cancellationToken);
                var stored = response.Kvs.ToDictionary(k => k.Key.ToStringUtf8(), k => k.Value.ToStringUtf8(), StringComparer.Ordinal);
                var problems = new List<string>();
                foreach (var (key, value) in _acked.OrderBy(k => k.Key, StringComparer.Ordinal))
                {
                    if (!stored.TryGetValue(key, out var read))
                    {
                        problems.Add($"acknowledged write {key}={value} is missing");
                    }
                    else if (read != value)
                    {
                        problems.Add($"acknowledged write {key}={value} reads back {read}");
                    }
                }

                return problems;
            }
            catch (RpcException e) when (DateTime.UtcNow < deadline)
            {
                _ = e;
                await Task.Delay(500, cancellationToken);
            }
        }
    }
}

/// <summary>
/// Samples the leader's member list and checks every sample: at most one learner, voters within the range the
/// scenario allows, only members named after an ordinal below the largest replica count, and (one voter change at a
/// time) a voter set that differs from the previous sample's by at most one member.
/// </summary>
internal sealed class MemberSampler(KubeEnvironment env, int minVoters, int maxReplicas)
{
    private readonly List<string> _problems = [];
    private readonly List<string> _voterSets = [];

    public int Samples { get; private set; }

    public IReadOnlyList<string> Problems => _problems;

    /// <summary>Each distinct voter set in the order seen.</summary>
    public IReadOnlyList<string> VoterSets => _voterSets;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        HashSet<string>? previous = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                if (await env.LeaderMemberListAsync(cancellationToken) is { } list)
                {
                    Samples++;
                    var text = $"leader {list.Leader}: {OperatorContext.Describe(list.Members)}";
                    var learners = list.Members.Count(m => m.Learner);
                    var voters = list.Members.Where(m => !m.Learner).Select(m => m.Name.Length > 0 ? m.Name : $"{m.Id:x16}").ToHashSet(StringComparer.Ordinal);
                    if (learners > 1)
                    {
                        _problems.Add($"{learners} learners at once: {text}");
                    }

                    if (voters.Count < minVoters || voters.Count > maxReplicas)
                    {
                        _problems.Add($"{voters.Count} voters (allowed {minVoters}..{maxReplicas}): {text}");
                    }

                    // A member added but not started yet has no name (as in etcd).
                    if (list.Members.Any(m => m.Name.Length > 0 && !IsOrdinalName(m.Name)))
                    {
                        _problems.Add($"a member not named {KubeEnvironment.ClusterName}-N with N < {maxReplicas}: {text}");
                    }

                    if (previous is not null && !previous.SetEquals(voters))
                    {
                        var changed = previous.Except(voters).Count() + voters.Except(previous).Count();
                        if (changed > 1)
                        {
                            _problems.Add($"{changed} voter changes between two samples ({string.Join(",", previous.Order(StringComparer.Ordinal))} → {text})");
                        }
                    }

                    if (previous is null || !previous.SetEquals(voters))
                    {
                        _voterSets.Add(voters.Count.ToString(CultureInfo.InvariantCulture));
                    }

                    previous = voters;
                }

                await Task.Delay(200, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or RpcException or OperationCanceledException)
            {
                // The API server is restarting or the pods are changing: sample again.
                try
                {
                    await Task.Delay(200, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private bool IsOrdinalName(string name) =>
        name.StartsWith(KubeEnvironment.ClusterName + "-", StringComparison.Ordinal)
        && int.TryParse(name.AsSpan(KubeEnvironment.ClusterName.Length + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < maxReplicas;
}
