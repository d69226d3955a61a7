using System.Text;
using Google.Protobuf;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>
/// Damages a stopped member's data dir (WAL or snapshot files) and starts it again. Acceptable outcomes: it repairs
/// what it can and rejoins (the final checks then prove it did not lose or invent data), or it refuses to start with
/// a non-zero exit code and a one-line message saying what is wrong, and no stack trace. A crash (signal, unhandled
/// exception) or a member that runs but never becomes healthy fails the scenario.
/// </summary>
internal static class Corruption
{
    public enum Kind
    {
        /// <summary>No damage: the member is stopped with SIGTERM and started again (the baseline of the cases below).</summary>
        None,

        /// <summary>A torn final write: part of a record appended after the last one (what a crash mid-write leaves; it was never acknowledged).</summary>
        WalTornTail,

        /// <summary>The last ~300 bytes of synced records cut off: acknowledged entries lost, which Raft cannot repair; refusal expected.</summary>
        WalTruncatedTail,
        WalFlippedBytes,
        SnapshotFlippedBytes,
        SnapshotTruncated,

        /// <summary>Bytes flipped in the member's LMDB store file (member/snap/db), beyond its two meta pages.</summary>
        StoreFlippedBytes,

        /// <summary>The member's LMDB store file cut short at a random length.</summary>
        StoreTruncated,

        /// <summary>
        /// One byte flipped inside a value the scenario wrote (every copy of it in the LMDB store file): the store still opens and
        /// the value would be served wrong, so only the initial corruption check stands between it and the clients. Refusal
        /// with exit code 4 and "found data inconsistency with peers" expected.
        /// </summary>
        StoreFlippedValue,
    }

    /// <summary>raftkv's exit code for a store that differs from its peers' (RaftKvExitCodes.DataInconsistent in common/).</summary>
    private const int DataInconsistentExit = 4;

    public static async Task RunAsync(ScenarioContext c, Kind kind)
    {
        var victim = c.Pick([.. c.Cluster.Current]);
        var isSnapshot = kind is Kind.SnapshotFlippedBytes or Kind.SnapshotTruncated;
        var isStore = kind is Kind.StoreFlippedBytes or Kind.StoreTruncated or Kind.StoreFlippedValue;
        var dir = Path.Combine(victim.DataDir, "member", isSnapshot || isStore ? "snap" : "wal");
        var pattern = isStore ? "db" : isSnapshot ? "*.snap" : "*.wal";

        // Let the load write long enough that there is a WAL with records and (for the snapshot cases) a snapshot.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        await c.PauseAsync(2000, 3000);
        while (!Directory.Exists(dir) || Directory.GetFiles(dir, pattern).Length == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"no {pattern} file appeared in {dir} within 60 s of load");
            }

            await Task.Delay(200, c.Cancellation);
        }

        var canary = kind == Kind.StoreFlippedValue ? await WriteCanaryAsync(c, victim) : null;
        await c.Cluster.StopAsync(victim);
        var files = Directory.GetFiles(dir, pattern).Order(StringComparer.Ordinal).ToList();
        var what = kind switch
        {
            Kind.None => "nothing (clean stop and start)",
            Kind.WalTornTail => AppendTorn(files[^1], c.Random),
            Kind.WalTruncatedTail => Truncate(files[^1], c.Random, tailOnly: true),
            Kind.WalFlippedBytes => Flip(files[c.Random.Next(files.Count)], c.Random),
            Kind.SnapshotFlippedBytes => Flip(files[^1], c.Random),
            Kind.SnapshotTruncated => Truncate(files[^1], c.Random, tailOnly: false),
            Kind.StoreFlippedBytes => Flip(files[0], c.Random, from: 2 * 4096),
            Kind.StoreTruncated => Truncate(files[0], c.Random, tailOnly: false),
            Kind.StoreFlippedValue => FlipInValue(files[0], canary!, c.Random),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        c.Log.Add($"corrupted {victim.Name}: {what}");
        var logStart = new FileInfo(victim.LogFile).Length;
        c.Cluster.Restart(victim);

        // Either it exits (refusal) or it serves and becomes healthy with the others.
        var wait = DateTime.UtcNow + TimeSpan.FromSeconds(45);
        while (DateTime.UtcNow < wait && victim.IsRunning)
        {
            if (await ChaosCluster.StatusAsync(victim, c.Cancellation) is { Leader: not 0 } status && status.RaftAppliedIndex > 0)
            {
                break;
            }

            await Task.Delay(200, c.Cancellation);
        }

        if (victim.IsRunning && kind == Kind.StoreFlippedValue)
        {
            throw new ChaosFailure($"{victim.Name} started and serves after {what}: the initial corruption check should have refused the damaged value");
        }

        if (victim.IsRunning)
        {
            await c.Cluster.WaitHealthyAsync(TimeSpan.FromSeconds(45), c.Cancellation);
            c.Notes.Add($"{victim.Name} repaired after {what}");
            c.Log.Add($"{victim.Name} started again and rejoined");
        }
        else
        {
            var code = victim.Process!.ExitCode;
            var output = ReadFrom(victim.LogFile, logStart);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var message = lines.FirstOrDefault(l => l.StartsWith("raftkv:", StringComparison.Ordinal));
            var stackTrace = lines.FirstOrDefault(l => l.StartsWith("at ", StringComparison.Ordinal) || l.Contains("Unhandled exception", StringComparison.Ordinal));
            if (code == 0 || code >= 128 || message is null || stackTrace is not null)
            {
                throw new ChaosFailure($"{victim.Name} after {what}: exited {code} " +
                    (message is null ? "without a 'raftkv: ...' message" : $"with '{message}'") +
                    (stackTrace is null ? "" : $" and a stack trace ('{stackTrace}')") + $"; its output:\n{string.Join('\n', lines.TakeLast(30))}");
            }

            if (kind == Kind.StoreFlippedValue && (code != DataInconsistentExit || !message.Contains("found data inconsistency with peers", StringComparison.Ordinal)))
            {
                throw new ChaosFailure($"{victim.Name} after {what}: expected exit {DataInconsistentExit} with 'found data inconsistency with peers', got exit {code} with '{message}'");
            }

            c.Notes.Add($"{victim.Name} refused to start (exit {code}): {message}");
            c.Log.Add($"{victim.Name} refused: exit {code}: {message}");

            // The operator's remedy for a member whose data is gone: the rest of the cluster goes on without it.
            victim.InCluster = false;
        }

        while (c.Running)
        {
            await c.PauseAsync(200, 400);
        }
    }

    /// <summary>Writes a key with a value found nowhere else and waits until <paramref name="victim"/> serves it (so its store holds it).</summary>
    private static async Task<byte[]> WriteCanaryAsync(ScenarioContext c, ChaosMember victim)
    {
        var value = Encoding.ASCII.GetBytes($"canary-value-{c.Random.NextInt64():x16}-{c.Random.NextInt64():x16}");
        var key = ByteString.CopyFromUtf8("chaos-canary");
        await c.Cluster.CallAnyAsync(ch => new KV.KVClient(ch).PutAsync(new PutRequest { Key = key, Value = ByteString.CopyFrom(value) },
            deadline: ChaosCluster.Deadline(), cancellationToken: c.Cancellation).ResponseAsync, c.Cancellation);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                var got = await new KV.KVClient(victim.Channel).RangeAsync(new RangeRequest { Key = key, Serializable = true },
                    deadline: ChaosCluster.Deadline(), cancellationToken: c.Cancellation);
                if (got.Kvs.Count == 1 && got.Kvs[0].Value.Span.SequenceEqual(value))
                {
                    c.Log.Add($"{victim.Name} serves the canary value");
                    return value;
                }
            }
            catch (Grpc.Core.RpcException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ChaosFailure($"{victim.Name} did not apply the canary put within 30 s");
            }

            await Task.Delay(100, c.Cancellation);
        }
    }

    /// <summary>Flips one bit of one byte inside every copy of <paramref name="value"/> in the file (LMDB keeps stale copies in free pages).</summary>
    private static string FlipInValue(string path, byte[] value, Random random)
    {
        var bytes = File.ReadAllBytes(path);
        var offsets = new List<int>();
        var within = random.Next(value.Length);
        for (var at = bytes.AsSpan().IndexOf(value); at >= 0;)
        {
            bytes[at + within] ^= (byte)(1 << random.Next(8));
            offsets.Add(at + within);
            var next = bytes.AsSpan(at + 1).IndexOf(value);
            at = next < 0 ? -1 : at + 1 + next;
        }

        if (offsets.Count == 0)
        {
            throw new ChaosFailure($"the canary value is not in {path} ({bytes.Length} bytes) after a clean stop");
        }

        File.WriteAllBytes(path, bytes);
        return $"{Path.GetFileName(path)}: a bit flipped in the canary value at {string.Join(", ", offsets)}";
    }

    /// <summary>Length of the file up to its last non-zero byte (WAL segments are preallocated with zeros).</summary>
    private static long WrittenLength(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var end = bytes.Length;
        while (end > 0 && bytes[end - 1] == 0)
        {
            end--;
        }

        return end;
    }

    private static string Truncate(string path, Random random, bool tailOnly)
    {
        var written = WrittenLength(path);
        var cut = tailOnly ? Math.Max(0, written - random.Next(1, (int)Math.Min(written, 300) + 1)) : random.NextInt64(0, Math.Max(1, written));
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(cut);
        }

        return $"{Path.GetFileName(path)} truncated from {written} written bytes to {cut}";
    }

    private static string AppendTorn(string path, Random random)
    {
        var written = WrittenLength(path);
        var bytes = File.ReadAllBytes(path);

        // Copy the start of the last record seen (a plausible header) and cut it short, right after the written end.
        var length = random.Next(5, 40);
        var source = Math.Max(0, written - 64);
        var torn = bytes.AsSpan((int)source, (int)Math.Min(length, written - source)).ToArray();
        var end = (int)written + ((8 - ((int)written % 8)) % 8);
        if (end + torn.Length > bytes.Length)
        {
            Array.Resize(ref bytes, end + torn.Length);
        }

        torn.CopyTo(bytes, end);
        File.WriteAllBytes(path, bytes);
        return $"{Path.GetFileName(path)} ({written} written bytes): {torn.Length} bytes of a torn record written at {end}";
    }

    private static string Flip(string path, Random random, long from = 0)
    {
        var written = WrittenLength(path);
        var bytes = File.ReadAllBytes(path);
        var offsets = new List<long>();
        for (var i = 0; i < 3 && written > from; i++)
        {
            var at = random.NextInt64(from, written);
            bytes[at] ^= (byte)random.Next(1, 256);
            offsets.Add(at);
        }

        File.WriteAllBytes(path, bytes);
        return $"{Path.GetFileName(path)} ({written} written bytes): bytes flipped at {string.Join(", ", offsets)}";
    }

    private static string ReadFrom(string path, long offset)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(f);
        return reader.ReadToEnd();
    }
}
