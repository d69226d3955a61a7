using System.Diagnostics;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using RaftKv.Linearizability;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>How a run is set up.</summary>
internal sealed record ChaosOptions
{
    /// <summary>The raftkv program to start.</summary>
    public required string Binary { get; init; }

    /// <summary>Where failures keep their seed, schedule, history and member logs.</summary>
    public required string ResultsDir { get; init; }

    /// <summary>How long each scenario's fault schedule runs.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(8);

    public int Clients { get; init; } = 6;

    public int Keys { get; init; } = 64;

    /// <summary>Raft snapshot every this many applied entries (small, so snapshots and log compaction happen during a run).</summary>
    public int SnapshotCount { get; init; } = 300;
}

/// <summary>The outcome of one scenario run.</summary>
internal sealed record ScenarioResult(string Name, int Seed, bool Passed, TimeSpan Elapsed, string Summary, string? Failure, string? KeptAt)
{
    public override string ToString() => Passed
        ? $"PASS {Name} (seed {Seed}, {Elapsed.TotalSeconds:0.0} s): {Summary}"
        : $"FAIL {Name} (seed {Seed}, {Elapsed.TotalSeconds:0.0} s): {Failure}" + (KeptAt is null ? "" : $" [logs: {KeptAt}]");
}

/// <summary>Runs one scenario: cluster, load, faults, heal, checks; keeps everything of a failure under the results dir.</summary>
internal static class Runner
{
    public static async Task<ScenarioResult> RunAsync(Scenario scenario, int seed, ChaosOptions options, CancellationToken cancellationToken)
    {
        if (scenario.Custom is { } custom)
        {
            return await custom(seed, options, cancellationToken);
        }

        var clock = Stopwatch.StartNew();
        var root = Directory.CreateTempSubdirectory($"raftkv-chaos-{scenario.Name}-").FullName;
        var log = new EventLog();
        log.Add($"scenario {scenario.Name}, seed {seed}, {scenario.Size} members, faults for {options.Duration.TotalSeconds:0} s");
        var summary = "";
        string? failure = null;
        Workload? workload = null;
        Func<Task> stopBackground = () => Task.CompletedTask;
        try
        {
            await using var cluster = await ChaosCluster.StartAsync(options.Binary, root, scenario.Size, log, options.SnapshotCount, cancellationToken);
            try
            {
                summary = await RunStartedAsync(scenario, seed, options, cluster, log, w => workload = w, s => stopBackground = s, cancellationToken);
            }
            catch (Exception e) when (e is ChaosFailure or RpcException or TimeoutException or OperationCanceledException or IOException)
            {
                failure = e is ChaosFailure ? e.Message : $"{e.GetType().Name}: {e.Message}";
            }
        }
        catch (Exception e) when (e is ChaosFailure or RpcException or IOException)
        {
            failure = $"cluster did not start: {e.Message}";
        }

        string? keptAt = null;
        if (failure is not null)
        {
            log.Add("FAILED: " + failure);
            keptAt = Keep(scenario, seed, root, log, workload, options.ResultsDir);
        }

        TryDelete(root);
        return new ScenarioResult(scenario.Name, seed, failure is null, clock.Elapsed, summary, failure, keptAt);
    }

    private static async Task<string> RunStartedAsync(Scenario scenario, int seed, ChaosOptions options, ChaosCluster cluster, EventLog log,
        Action<Workload> created, Action<Func<Task>> onStop, CancellationToken cancellationToken)
    {
        var workload = new Workload(cluster, options.Keys, seed);
        created(workload);
        var watcher = new Watcher(cluster, log, seed + 1);
        // Not disposed: a failure stops the background tasks (through onStop) after this method returned.
        var load = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workloadStop = CancellationTokenSource.CreateLinkedTokenSource(load.Token);
        var loadTask = workload.RunAsync(options.Clients, workloadStop.Token);
        var watchTask = watcher.RunAsync(load.Token);
        onStop(async () =>
        {
            await load.CancelAsync();
            await Task.WhenAll(loadTask, watchTask);
        });
        var context = new ScenarioContext
        {
            Cluster = cluster,
            Random = new Random(seed),
            Log = log,
            Duration = options.Duration,
            Watcher = watcher,
            Cancellation = cancellationToken,
        };
        try
        {
            await scenario.Faults(context);

            // Heal: no faults, every member that was stopped on purpose running again; a member that died by itself is a failure.
            var crashed = cluster.Current.Where(m => !m.IsRunning && !m.ExpectedDown).Select(m => $"{m.Name} exited with code {m.Process?.ExitCode}").ToList();
            if (crashed.Count > 0)
            {
                throw new ChaosFailure("member died without being killed: " + string.Join(", ", crashed));
            }

            await cluster.HealAsync(cancellationToken);
            foreach (var m in cluster.Current.Where(m => !m.IsRunning))
            {
                cluster.Restart(m);
            }

            await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
            log.Add("healed and healthy");

            // Some load on the healed cluster, then stop it.
            await Task.Delay(1000, cancellationToken);
        }
        finally
        {
            await workloadStop.CancelAsync();
            await loadTask;
        }

        await workload.ReadBackAsync(cancellationToken);
        var operations = workload.Operations();
        log.Add($"history: {operations.Count} operations, {workload.Unknown} unknown outcomes");

        var lastRevision = await LastWorkloadRevisionAsync(cluster, cancellationToken);
        log.Add($"workload's last revision {lastRevision}; watch at {watcher.LastRevision}");
        await WaitForAsync(() => watcher.LastRevision >= lastRevision, TimeSpan.FromSeconds(30), cancellationToken);
        log.Add($"watch at {watcher.LastRevision}");
        await load.CancelAsync();
        await watchTask;

        var problems = new List<string>();
        var check = CheckLinearizable(operations);
        if (!check.IsOk)
        {
            problems.Add($"history not linearizable ({check.Outcome}): {check.Explanation}");
        }

        problems.AddRange(LostWrites(operations).Take(5));
        problems.AddRange(watcher.Problems.Take(5));
        if (watcher.LastRevision < lastRevision)
        {
            problems.Add($"the watch saw revisions up to {watcher.LastRevision}, but the store is at {lastRevision}");
        }

        problems.AddRange(CheckWatchAgainstHistory(watcher.Events, operations, scenario.OnlyWorkloadWrites).Take(5));
        if (problems.Count == 0)
        {
            problems.AddRange(await CheckResumedWatchAsync(cluster, watcher, context, lastRevision, cancellationToken));
            problems.AddRange(await CheckHashesAsync(cluster, lastRevision, cancellationToken));
        }

        if (problems.Count > 0)
        {
            throw new ChaosFailure(string.Join("\n  ", problems));
        }

        var notes = context.Notes.Count > 0 ? "; " + string.Join("; ", context.Notes) : "";
        return $"{operations.Count} ops ({workload.Unknown} unknown), {watcher.Events.Count} watch events, {watcher.Resumes} watch resumes, " +
            $"revision {lastRevision}, {check.Steps} checker steps{notes}";
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>The highest mod revision under the workload's prefix (read linearizably).</summary>
    private static async Task<long> LastWorkloadRevisionAsync(ChaosCluster cluster, CancellationToken cancellationToken)
    {
        var response = await cluster.CallAnyAsync(c => new KV.KVClient(c).RangeAsync(new RangeRequest
        {
            Key = ByteString.CopyFromUtf8(Workload.Prefix),
            RangeEnd = Watcher.PrefixEnd(Workload.Prefix),
            SortOrder = RangeRequest.Types.SortOrder.Descend,
            SortTarget = RangeRequest.Types.SortTarget.Mod,
            Limit = 1,
        }, deadline: ChaosCluster.Deadline(), cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        return response.Kvs.Count == 0 ? 0 : response.Kvs[0].ModRevision;
    }

    public static CheckResult CheckLinearizable(IReadOnlyList<Operation<KvInput, KvOutput>> operations) =>
        LinearizabilityChecker.Check(KvModel.Instance, operations, new CheckOptions { MaxSteps = 20_000_000, Timeout = TimeSpan.FromSeconds(60) });

    /// <summary>
    /// A write is lost when the value read back at the end was written by an operation that returned before an
    /// acknowledged write of the same key was even sent (so the acknowledged one must have come later), or when a key
    /// with an acknowledged write reads back as absent (the workload never deletes).
    /// </summary>
    public static IEnumerable<string> LostWrites(IReadOnlyList<Operation<KvInput, KvOutput>> operations)
    {
        var writes = operations
            .Select(op => (Op: op, Value: op.Input switch { KvPut p => p.Value, KvCompareAndSet c => c.NewValue, _ => null }))
            .Where(w => w.Value is not null && (w.Op.Input is KvPut || w.Op.Output is null or KvCompareAndSetResult { Succeeded: true }))
            .ToList();
        var byValue = writes.ToDictionary(w => (w.Op.Input.Key, w.Value!), w => w.Op);
        foreach (var final in operations.Where(op => op.ClientId == -1 && op.Completed))
        {
            var key = final.Input.Key;
            var acknowledged = writes.Where(w => w.Op.Input.Key == key && w.Op.Completed).Select(w => w.Op).ToList();
            var read = ((KvGetResult)final.Output!).Value;
            if (read is null)
            {
                if (acknowledged.Count > 0)
                {
                    yield return $"{key} reads back absent, but {acknowledged.Count} writes of it were acknowledged (last: {acknowledged[^1]})";
                }

                continue;
            }

            if (!byValue.TryGetValue((key, read), out var writer))
            {
                yield return $"{key} reads back \"{read}\", a value no client wrote";
                continue;
            }

            if (writer.ReturnTime is { } wrote && acknowledged.FirstOrDefault(a => a.CallTime > wrote) is { } later)
            {
                yield return $"{key} reads back \"{read}\" ({writer}), but a later write was acknowledged: {later}";
            }
        }
    }

    /// <summary>
    /// The watch against the history: every acknowledged write appears exactly once, every event is a write some
    /// client sent, and (when only the workload writes) the revisions have no gap.
    /// </summary>
    public static IEnumerable<string> CheckWatchAgainstHistory(IReadOnlyList<WatchedEvent> events, IReadOnlyList<Operation<KvInput, KvOutput>> operations, bool onlyWorkloadWrites)
    {
        var seen = new Dictionary<(string, string), int>();
        foreach (var e in events.Where(e => e.Value is not null))
        {
            seen[(e.Key, e.Value!)] = seen.GetValueOrDefault((e.Key, e.Value!)) + 1;
        }

        var sent = new HashSet<(string, string)>();
        foreach (var op in operations)
        {
            var (value, acknowledged) = op.Input switch
            {
                KvPut p => (p.Value, op.Completed),
                KvCompareAndSet c => (c.NewValue, op.Output is KvCompareAndSetResult { Succeeded: true }),
                _ => (null, false),
            };
            if (value is null)
            {
                continue;
            }

            sent.Add((op.Input.Key, value));
            var count = seen.GetValueOrDefault((op.Input.Key, value));
            if (acknowledged && count == 0)
            {
                yield return $"acknowledged write never seen by the watch: {op}";
            }

            if (count > 1)
            {
                yield return $"the watch saw the write of {op.Input.Key}=\"{value}\" {count} times";
            }
        }

        foreach (var e in events.Where(e => e.Value is not null && e.Key != ChaosCluster.HealthKey && !sent.Contains((e.Key, e.Value!))))
        {
            yield return $"the watch saw {e.Key}=\"{e.Value}\" at revision {e.Revision}, which no client wrote";
        }

        if (onlyWorkloadWrites && events.Count > 0)
        {
            for (var i = 1; i < events.Count; i++)
            {
                if (events[i].Revision != events[i - 1].Revision + 1)
                {
                    yield return $"the watch skipped from revision {events[i - 1].Revision} to {events[i].Revision}";
                    yield break;
                }
            }
        }
    }

    /// <summary>A fresh watch from a revision in the middle (above any compaction) sees exactly what the long-running watch saw from there.</summary>
    private static async Task<List<string>> CheckResumedWatchAsync(ChaosCluster cluster, Watcher watcher, ScenarioContext context, long lastRevision,
        CancellationToken cancellationToken)
    {
        var events = watcher.Events;
        var candidates = events.Where(e => e.Revision > context.CompactedTo + 1).ToList();
        if (candidates.Count == 0)
        {
            return [];
        }

        var from = candidates[context.Random.Next(candidates.Count)].Revision;
        var member = context.Pick([.. cluster.Current]);
        var fresh = await Watcher.CollectAsync(member, from, lastRevision, cancellationToken);
        var expected = events.Where(e => e.Revision >= from).ToList();
        if (fresh.Count != expected.Count || fresh.Zip(expected).Any(p => p.First != p.Second))
        {
            var diff = fresh.Zip(expected).FirstOrDefault(p => p.First != p.Second);
            return [$"a watch from revision {from} on {member.Name} got {fresh.Count} events, the long watch {expected.Count}" +
                (diff.First is null ? "" : $"; first difference: {diff.First} vs {diff.Second}")];
        }

        return [];
    }

    /// <summary>Every member's store hashes the same at the last revision.</summary>
    private static async Task<List<string>> CheckHashesAsync(ChaosCluster cluster, long revision, CancellationToken cancellationToken)
    {
        var hashes = new List<(string Name, uint Hash)>();
        foreach (var m in cluster.Current)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    var r = await new Maintenance.MaintenanceClient(m.Channel).HashKVAsync(new HashKVRequest { Revision = revision }, deadline: ChaosCluster.Deadline(),
                        cancellationToken: cancellationToken);
                    hashes.Add((m.Name, r.Hash));
                    break;
                }
                catch (RpcException e) when (DateTime.UtcNow < deadline)
                {
                    _ = e;
                    await Task.Delay(200, cancellationToken);
                }
                catch (RpcException e)
                {
                    return [$"{m.Name} could not hash revision {revision}: {e.Status.Detail}"];
                }
            }
        }

        return hashes.Select(h => h.Hash).Distinct().Count() == 1 ? [] :
            [$"members' stores differ at revision {revision}: {string.Join(", ", hashes.Select(h => $"{h.Name} {h.Hash:x8}"))}"];
    }

    private static string Keep(Scenario scenario, int seed, string root, EventLog log, Workload? workload, string resultsDir)
    {
        var dir = Path.Combine(resultsDir, $"{scenario.Name}-seed{seed.ToString(CultureInfo.InvariantCulture)}");
        try
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            Directory.CreateDirectory(dir);
            var replay = $"replay: make chaos ARGS='--scenario {scenario.Name} --seed {seed}'  (or dotnet run --project tests/RaftKv.Chaos -c Release -- --scenario {scenario.Name} --seed {seed})\n";
            File.WriteAllText(Path.Combine(dir, "schedule.log"), replay + string.Join('\n', log.Lines) + "\n");
            foreach (var memberLog in Directory.GetFiles(root, "raftkv.log", SearchOption.AllDirectories))
            {
                File.Copy(memberLog, Path.Combine(dir, Path.GetFileName(Path.GetDirectoryName(memberLog)!) + ".log"), overwrite: true);
            }

            if (workload is not null)
            {
                var text = new StringBuilder();
                foreach (var op in workload.Operations())
                {
                    text.AppendLine(op.ToString());
                }

                File.WriteAllText(Path.Combine(dir, "history.txt"), text.ToString());
            }
        }
        catch (IOException e)
        {
            return $"{dir} (incomplete: {e.Message})";
        }

        return dir;
    }

    private static void TryDelete(string root)
    {
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
