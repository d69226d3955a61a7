using RaftKv.Raft;
using RaftKv.Storage.Wal;
using Xunit.Abstractions;

namespace RaftKv.Storage.Tests;

/// <summary>Crashes at every write point of a WAL workload; after reboot every acknowledged entry is there and nothing is invented.</summary>
public sealed class CrashConsistencyTests(ITestOutputHelper output)
{
    private static readonly WalMetadata Me = new(7, 3);
    private const string WalDir = "/data/member/wal";

    private static Entry E(ulong index, ulong term) =>
        Entry.Normal(index, term, Enumerable.Range(0, (int)(index % 50) + 1).Select(i => (byte)(index * 31 + (ulong)i)).ToArray());

    /// <summary>Batches of 1-3 entries; every fifth batch rewrites its predecessor's last entry with a higher term (a new leader).</summary>
    private static List<Entry[]> Workload()
    {
        var batches = new List<Entry[]>();
        ulong next = 1, term = 1;
        for (var b = 0; b < 40; b++)
        {
            if (b % 5 == 4 && next > 2)
            {
                term++;
                next--;
            }

            var n = (b % 3) + 1;
            batches.Add([.. Enumerable.Range(0, n).Select(i => E(next + (ulong)i, term))]);
            next += (ulong)n;
        }

        return batches;
    }

    /// <summary>Runs the workload until the simulated crash; returns the acknowledged log and the batch that was in flight, if any.</summary>
    private static async Task<(List<Entry> Acked, Entry[]? InFlight)> Run(WalOptions options)
    {
        var acked = new List<Entry>();
        Entry[]? inFlight = null;
        WriteAheadLog? wal = null;
        try
        {
            wal = WriteAheadLog.Create(WalDir, Me, options);
            foreach (var batch in Workload())
            {
                inFlight = batch;
                await wal.AppendAsync(batch, new HardState(batch[^1].Term, 0, batch[^1].Index));
                acked.RemoveAll(e => e.Index >= batch[0].Index);
                acked.AddRange(batch);
                inFlight = null;
            }
        }
        catch (IOException)
        {
            // the simulated machine died
        }
        finally
        {
            wal?.Dispose();
        }

        return (acked, inFlight);
    }

    private static bool SameEntries(List<Entry> a, IReadOnlyList<Entry> b) =>
        a.Count == b.Count && a.Zip(b).All(p => p.First.Index == p.Second.Index && p.First.Term == p.Second.Term && p.First.Data.Span.SequenceEqual(p.Second.Data.Span));

    private static string Show(IReadOnlyList<Entry> log) => string.Join(",", log.Select(e => $"{e.Index}/{e.Term}"));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Every_synced_entry_survives_a_crash_at_any_write(bool tearLastWrite)
    {
        var options = new WalOptions { SegmentSizeBytes = 1024 };
        var clean = new FaultyFileSystem();
        options.FileSystem = clean;
        await Run(options);
        var totalWrites = clean.Writes;
        Assert.True(totalWrites > 40, $"workload made only {totalWrites} writes");
        var repaired = 0;
        for (var crashAt = 1; crashAt <= totalWrites; crashAt++)
        {
            var fs = new FaultyFileSystem { CrashAtWrite = crashAt, TearLastWrite = tearLastWrite, TornBytes = 5 + (crashAt * 7 % 90) };
            options.FileSystem = fs;
            var (acked, inFlight) = await Run(options);
            Assert.True(fs.Crashed, $"crash point {crashAt} was not reached");
            var after = fs.Reboot();
            options.FileSystem = after;
            if (!WriteAheadLog.Exists(WalDir, after))
            {
                Assert.True(acked.Count == 0, $"crash at write {crashAt}: no WAL after reboot but {acked.Count} entries were acknowledged");
                continue;
            }

            var (wal, contents) = WriteAheadLog.Open(WalDir, Me, null, options);
            wal.Dispose();
            repaired += contents.Repairs.Count;
            var found = contents.Entries;

            // Allowed: exactly the acknowledged log, or it with a prefix of the interrupted batch applied (those bytes did land).
            // Anything else lost an acknowledged entry or invented one.
            var allowed = new List<List<Entry>> { acked };
            for (var k = 1; inFlight is not null && k <= inFlight.Length; k++)
            {
                allowed.Add([.. acked.Where(e => e.Index < inFlight[0].Index), .. inFlight.Take(k)]);
            }

            Assert.True(allowed.Any(a => SameEntries(a, found)),
                $"crash at write {crashAt}: found [{Show(found)}], acknowledged [{Show(acked)}], in flight [{(inFlight is null ? "" : Show(inFlight))}]");

            // And the log keeps working after the repair.
            options.FileSystem = after;
            var (again, c2) = WriteAheadLog.Open(WalDir, Me, null, options);
            using (again)
            {
                Assert.Empty(c2.Repairs);
                var next = (ulong)found.Count + 1;
                await again.AppendAsync([E(next, 99)], null);
            }
        }

        output.WriteLine($"{totalWrites} crash points, {repaired} torn tails repaired (tear={tearLastWrite})");
        if (tearLastWrite)
        {
            Assert.True(repaired > 0, "tearing writes should have left torn tails to repair");
        }
    }
}
