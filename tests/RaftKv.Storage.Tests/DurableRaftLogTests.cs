using System.Globalization;
using System.Text;
using RaftKv.Raft;
using RaftKv.Storage.Mvcc;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

public sealed class DurableRaftLogTests
{
    private static readonly WalMetadata Me = new(0x1234, 0x1);

    private static Entry E(ulong index, ulong term) => Entry.Normal(index, term, Encoding.UTF8.GetBytes($"put k{index % 5} v{index}"));

    [Fact]
    public async Task The_log_answers_the_core_and_survives_restart()
    {
        using var dir = new TempDir();
        using (var log = DurableRaftLog.Open(dir.Path, Me))
        {
            Assert.Equal((1UL, 0UL), (log.FirstIndex(), log.LastIndex()));
            Assert.Equal(0UL, log.Term(0));
            await log.SaveAsync([E(1, 1), E(2, 1), E(3, 1)], new HardState(1, 1, 0));
            await log.SaveAsync([E(3, 2), E(4, 2)], new HardState(2, 1, 2)); // a new leader replaced entry 3
            Assert.Equal(4UL, log.LastIndex());
            Assert.Equal(2UL, log.Term(3));
            Assert.Equal([2UL, 3UL], log.Entries(2, 4, ulong.MaxValue).Select(e => e.Index));
            Assert.Single(log.Entries(1, 5, 1)); // the byte limit still returns one entry
            Assert.Throws<RaftLogUnavailableException>(() => log.Entries(1, 6, ulong.MaxValue));
            Assert.Throws<RaftLogUnavailableException>(() => log.Term(5));
        }

        Assert.True(Directory.Exists(Path.Combine(dir.Path, "member", "wal")));
        using (var log = DurableRaftLog.Open(dir.Path, Me))
        {
            Assert.Equal(new HardState(2, 1, 2), log.InitialState().HardState);
            Assert.Equal([1UL, 1UL, 2UL, 2UL], log.Entries(1, 5, ulong.MaxValue).Select(e => e.Term));
        }
    }

    [Fact]
    public async Task Only_entries_term_and_vote_wait_for_an_fdatasync_a_commit_index_alone_is_written_without_one()
    {
        using var dir = new TempDir();
        var syncs = 0;
        var options = new WalOptions { SyncObserver = _ => Interlocked.Increment(ref syncs) };
        var seen = new List<(string Save, int Syncs)>();
        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            async Task Save(string what, IReadOnlyList<Entry> entries, HardState hs)
            {
                var before = Volatile.Read(ref syncs);
                await log.SaveAsync(entries, hs);
                seen.Add((what, Volatile.Read(ref syncs) - before));
            }

            await Save("entries", [E(1, 1)], new HardState(1, 1, 0));
            await Save("commit only", [], new HardState(1, 1, 1));
            await Save("term", [], new HardState(2, 0, 1));
            await Save("vote", [], new HardState(2, 3, 1));
            await Save("entries and commit", [E(2, 2)], new HardState(2, 3, 2));
            await Save("commit only again", [], new HardState(2, 3, 2));
        }

        Assert.True(
            seen.SequenceEqual([("entries", 1), ("commit only", 0), ("term", 1), ("vote", 1), ("entries and commit", 1), ("commit only again", 0)]),
            "syncs per save: " + string.Join(", ", seen));
        using (var log = DurableRaftLog.Open(dir.Path, Me))
        {
            Assert.Equal(new HardState(2, 3, 2), log.InitialState().HardState); // the unsynced record was still written
        }
    }

    [Fact]
    public async Task A_snapshot_compacts_the_log_and_restart_starts_from_it()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        var conf = new ConfState([1, 2, 3]);
        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            for (ulong i = 1; i <= 100; i++)
            {
                await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
            }

            var segmentsBefore = log.Wal.SegmentNames.Count;
            await log.CreateSnapshotAsync(80, conf, Encoding.UTF8.GetBytes("state at 80"));
            Assert.True(log.Wal.SegmentNames.Count < segmentsBefore, "segments covered by the snapshot should be released");
            Assert.Equal(81UL, log.FirstIndex());
            Assert.Equal(1UL, log.Term(80));
            Assert.Throws<RaftLogCompactedException>(() => log.Term(79));
            Assert.Throws<RaftLogCompactedException>(() => log.Entries(80, 90, ulong.MaxValue));
            Assert.Equal(80UL, log.Snapshot().Metadata.Index);
        }

        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            Assert.Equal((81UL, 100UL), (log.FirstIndex(), log.LastIndex()));
            Assert.Equal("state at 80", Encoding.UTF8.GetString(log.Snapshot().Data.Span));
            Assert.Equal(conf, log.InitialState().ConfState);
        }
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(0, 6)] // 0: unlimited, as etcd's --max-snapshots
    public async Task Max_snapshots_bounds_the_snap_files_kept(int maxSnapshots, int expectedFiles)
    {
        using var dir = new TempDir();
        var conf = new ConfState([1]);
        using var log = DurableRaftLog.Open(dir.Path, Me, new WalOptions(), maxSnapshots: maxSnapshots);
        for (ulong i = 1; i <= 60; i++)
        {
            await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
            if (i % 10 == 0)
            {
                await log.CreateSnapshotAsync(i, conf, Encoding.UTF8.GetBytes($"state at {i}"));
            }
        }

        var files = Directory.GetFiles(DurableRaftLog.SnapDirectory(dir.Path), "*.snap").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count == expectedFiles, $"--max-snapshots {maxSnapshots}: kept {string.Join(", ", files)}");
        Assert.EndsWith("-000000000000003c.snap", files[^1], StringComparison.Ordinal); // the newest always stays
    }

    /// <summary>
    /// A member persists entries before it applies them, so its snapshots (of what is applied) name an index a few entries
    /// behind the WAL's end; with segments cut every few entries a snapshot's marker sometimes opens a new segment. The log
    /// must reopen after every snapshot, whatever the lag, with the entries after the snapshot intact.
    /// </summary>
    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(3UL)]
    [InlineData(6UL)]
    public async Task The_log_reopens_after_every_snapshot_when_applying_lags_behind_persisting(ulong lag)
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        var conf = new ConfState([1, 2, 3]);
        var log = DurableRaftLog.Open(dir.Path, Me, options);
        try
        {
            var markersOpeningSegments = 0;
            var random = new Random(1000 + (int)lag); // irregular snapshot spacing, so cuts fall at every position
            var nextSnapshot = (ulong)random.Next(1, 12);
            for (ulong i = 1; i <= 400; i++)
            {
                await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
                var applied = i - Math.Min(i, lag);
                if (applied >= nextSnapshot)
                {
                    nextSnapshot = applied + (ulong)random.Next(1, 12);
                    // A segment named after the next entry was cut right after entry i: the marker will be its first record.
                    if (log.Wal.SegmentNames[^1].EndsWith(string.Create(CultureInfo.InvariantCulture, $"-{i + 1:x16}.wal"), StringComparison.Ordinal))
                    {
                        markersOpeningSegments++;
                    }

                    await log.CreateSnapshotAsync(applied, conf, Encoding.UTF8.GetBytes($"state at {applied}"), catchUpEntries: 2);

                    log.Dispose();
                    log = DurableRaftLog.Open(dir.Path, Me, options);
                    Assert.True((log.FirstIndex(), log.LastIndex()) == (applied + 1, i),
                        $"lag {lag}: after the snapshot at {applied} with {i} persisted the log reopened as {log.FirstIndex()}..{log.LastIndex()}; segments {string.Join(", ", log.Wal.SegmentNames)}");
                    Assert.Equal(Enumerable.Range((int)applied + 1, (int)(i - applied)).Select(k => (ulong)k), log.Entries(applied + 1, i + 1, ulong.MaxValue).Select(e => e.Index));
                }
            }

            Assert.True(markersOpeningSegments > 0, $"lag {lag}: no snapshot marker opened a segment, so the case was not exercised");
        }
        finally
        {
            log.Dispose();
        }
    }

    [Fact]
    public async Task A_log_whose_oldest_segment_was_lost_between_a_snapshot_and_the_next_entry_is_refused()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        ulong persisted;
        string lost;
        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            ulong i = 0;
            do
            {
                i++;
                await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
            }
            while (log.Wal.SegmentNames.Count < 2);

            // The snapshot's marker opens the new segment; entries i-2..i stay in the segment before it.
            await log.CreateSnapshotAsync(i - 3, new ConfState([1]), Encoding.UTF8.GetBytes("state"));
            persisted = i + 5;
            for (var j = i + 1; j <= persisted; j++)
            {
                await log.SaveAsync([E(j, 1)], new HardState(1, 1, j));
            }

            lost = Path.Combine(log.Wal.Directory, log.Wal.SegmentNames[0]);
            Assert.Equal(2, log.Wal.SegmentNames.Count);
        }

        File.Delete(lost); // no snapshot covers the entries it held
        var e = Assert.Throws<WalCorruptException>(() => DurableRaftLog.Open(dir.Path, Me, options).Dispose());
        Assert.True(e.Message.Contains("entries in between are lost", StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public async Task Snapshots_keep_catch_up_entries_release_covered_wal_segments_and_the_log_reopens_after_release()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        var conf = new ConfState([1, 2, 3]);
        var walDir = DurableRaftLog.WalDirectory(dir.Path);
        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            var maxSegments = 0;
            for (ulong i = 1; i <= 300; i++)
            {
                await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
                if (i % 50 == 0)
                {
                    await log.CreateSnapshotAsync(i, conf, Encoding.UTF8.GetBytes($"state at {i}"), catchUpEntries: 10);
                    Assert.Equal(i - 9, log.FirstIndex());
                    Assert.Equal(1UL, log.Term(i - 10));
                    Assert.Throws<RaftLogCompactedException>(() => log.Entries(i - 10, i, ulong.MaxValue));
                    Assert.Equal(10, log.Entries(i - 9, i + 1, ulong.MaxValue).Count);
                    var files = Directory.GetFiles(walDir, "*.wal").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
                    Assert.Equal(log.Wal.SegmentNames.Order(StringComparer.Ordinal), files);

                    // The oldest segment kept holds the snapshot index (etcd's rule); nothing older survives.
                    var firstIndexes = files.Select(f => Convert.ToUInt64(f![17..33], 16)).ToList();
                    Assert.True(firstIndexes[0] <= i + 1, $"oldest kept segment starts at {firstIndexes[0]}, snapshot at {i}: {string.Join(", ", files)}");
                    Assert.True(firstIndexes.Count == 1 || firstIndexes[1] > i, $"a segment wholly below snapshot {i} was kept: {string.Join(", ", files)}");
                }

                maxSegments = Math.Max(maxSegments, log.Wal.SegmentNames.Count);
            }

            Assert.True(maxSegments <= 6, $"WAL grew to {maxSegments} segments of 2 KiB between snapshots every 50 entries");
            Assert.Equal(5, Directory.GetFiles(DurableRaftLog.SnapDirectory(dir.Path), "*.snap").Length); // six made, the newest five kept
        }

        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            Assert.Equal((301UL, 300UL), (log.FirstIndex(), log.LastIndex()));
            Assert.Equal("state at 300", Encoding.UTF8.GetString(log.Snapshot().Data.Span));
            Assert.Equal(new HardState(1, 1, 300), log.InitialState().HardState);
            for (ulong i = 301; i <= 320; i++)
            {
                await log.SaveAsync([E(i, 2)], new HardState(2, 1, i));
            }
        }

        using (var log = DurableRaftLog.Open(dir.Path, Me, options))
        {
            Assert.Equal((301UL, 320UL), (log.FirstIndex(), log.LastIndex()));
            Assert.Equal(Enumerable.Range(301, 20).Select(i => (ulong)i), log.Entries(301, 321, ulong.MaxValue).Select(e => e.Index));
            Assert.Equal(2UL, log.Term(320));
        }
    }

    [Fact]
    public async Task A_snapshot_from_the_leader_replaces_a_log_that_disagrees()
    {
        using var dir = new TempDir();
        using var log = DurableRaftLog.Open(dir.Path, Me);
        await log.SaveAsync([E(1, 1), E(2, 1)], null);
        await log.ApplySnapshotAsync(new Snapshot(new SnapshotMetadata(50, 4, new ConfState([1, 2])), new byte[] { 1 }));
        Assert.Equal((51UL, 50UL, 4UL), (log.FirstIndex(), log.LastIndex(), log.Term(50)));
        await log.SaveAsync([E(51, 4)], new HardState(4, 0, 51));
        log.Dispose();
        using var reopened = DurableRaftLog.Open(dir.Path, Me);
        Assert.Equal((51UL, 51UL), (reopened.FirstIndex(), reopened.LastIndex()));
    }

    [Fact]
    public void Another_members_data_dir_is_refused()
    {
        using var dir = new TempDir();
        DurableRaftLog.Open(dir.Path, Me).Dispose();
        var ex = Assert.Throws<WalIdentityMismatchException>(() => DurableRaftLog.Open(dir.Path, new WalMetadata(0x1234, 0x2)));
        Assert.Contains("belongs to cluster", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The WAL is the source of truth: the store applied only part of it when the process stopped; restarting replays the WAL
    /// from the start and the store skips what its consistent index already covers. The result equals applying once.
    /// </summary>
    [Fact]
    public async Task Restart_replays_the_wal_into_the_store_from_its_consistent_index()
    {
        using var dir = new TempDir();
        static ApplyCommand Decode(Entry e)
        {
            var parts = Encoding.UTF8.GetString(e.Data.Span).Split(' ');
            return new ApplyCommand(e.Index, e.Term, new PutRequest { Key = Encoding.UTF8.GetBytes(parts[1]), Value = Encoding.UTF8.GetBytes(parts[2]) });
        }

        var dbPath = Path.Combine(dir.Path, "member", "snap", "db");
        using (var log = DurableRaftLog.Open(dir.Path, Me))
        using (var store = MvccStore.Open(dbPath))
        {
            for (ulong i = 1; i <= 30; i++)
            {
                await log.SaveAsync([E(i, 1)], new HardState(1, 1, i));
            }

            store.Apply([.. log.Entries(1, 18, ulong.MaxValue).Select(Decode)]); // stopped after applying 17
        }

        using (var log = DurableRaftLog.Open(dir.Path, Me))
        using (var store = MvccStore.Open(dbPath))
        {
            Assert.Equal(17UL, store.ConsistentIndex);
            var results = store.Apply([.. log.Entries(log.FirstIndex(), log.LastIndex() + 1, ulong.MaxValue).Select(Decode)]);
            Assert.Equal(17, results.Count(r => r.Skipped));
            Assert.Equal(31, store.CurrentRevision); // 30 puts, one revision each, none twice
            var k0 = store.Range(new RangeRequest { Key = "k0"u8.ToArray() }).Kvs.Single();
            Assert.Equal(("v30", 6L), (Encoding.UTF8.GetString(k0.Value), k0.Version));
        }
    }
}
