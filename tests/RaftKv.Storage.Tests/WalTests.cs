using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

public sealed class WalTests
{
    private static readonly WalMetadata Me = new(0xC1, 0x11);

    private static Entry E(ulong index, ulong term = 1, int size = 16) =>
        Entry.Normal(index, term, Enumerable.Range(0, size).Select(i => (byte)(index + (ulong)i)).ToArray());

    private static void AssertEntries(IReadOnlyList<Entry> actual, ulong from, ulong to)
    {
        var indexes = actual.Select(e => e.Index).ToList();
        Assert.True(indexes.SequenceEqual(Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (ulong)i)),
            $"expected entries {from}..{to}, got [{string.Join(",", indexes)}]");
        foreach (var e in actual)
        {
            Assert.True(e.Data.Span.SequenceEqual(E(e.Index, e.Term, e.Data.Length).Data.Span), $"entry {e.Index} data differs");
        }
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(Crc32C.Compute("123456789"u8), Crc32C.Append(Crc32C.Compute("1234"u8), "56789"u8));
    }

    [Fact]
    public async Task Entries_and_hard_state_survive_reopen_with_etcd_file_names_and_preallocation()
    {
        using var dir = new TempDir();
        var walDir = dir.Sub("member", "wal");
        using (var wal = WriteAheadLog.Create(walDir, Me))
        {
            await wal.AppendAsync([E(1), E(2), E(3)], new HardState(2, 1, 3));
            await wal.AppendAsync([E(4, 2)], new HardState(2, 1, 4));
        }

        var files = Directory.GetFiles(walDir).Select(Path.GetFileName).ToList();
        Assert.Equal(["0000000000000000-0000000000000000.wal"], files);
        Assert.Equal(64L * 1024 * 1024, new FileInfo(Path.Combine(walDir, files[0]!)).Length);
        var (reopened, contents) = WriteAheadLog.Open(walDir, Me);
        using (reopened)
        {
            AssertEntries(contents.Entries, 1, 4);
            Assert.Equal(new HardState(2, 1, 4), contents.HardState);
            Assert.Empty(contents.Repairs);
        }
    }

    [Fact]
    public async Task Conflicting_entries_replace_the_suffix_on_read()
    {
        using var dir = new TempDir();
        using (var wal = WriteAheadLog.Create(dir.Path, Me))
        {
            await wal.AppendAsync([E(1), E(2), E(3)], null);
            await wal.AppendAsync([E(2, 5)], null);
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me);
        w.Dispose();
        Assert.Equal([1UL, 2UL], c.Entries.Select(e => e.Index));
        Assert.Equal(5UL, c.Entries[1].Term);
    }

    [Fact]
    public async Task Append_writes_on_the_callers_thread_when_idle_and_keeps_order_with_queued_writes()
    {
        using var dir = new TempDir();
        var syncThreads = new List<int>();
        var options = new WalOptions { SyncObserver = _ => { lock (syncThreads) { syncThreads.Add(Environment.CurrentManagedThreadId); } } };
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            lock (syncThreads)
            {
                syncThreads.Clear(); // creating the first segment syncs too
            }

            wal.Append([E(1), E(2)], new HardState(1, 0, 0));
            Assert.Equal([Environment.CurrentManagedThreadId], syncThreads);

            // Queued and inline writes interleave in call order.
            var queued = wal.AppendAsync([E(3)], null);
            wal.Append([E(4)], null);
            await queued;
            await wal.AppendAsync([E(5)], new HardState(2, 0, 3));
            wal.Append([E(6)], null);
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me);
        w.Dispose();
        AssertEntries(c.Entries, 1, 6);
        Assert.Equal(new HardState(2, 0, 3), c.HardState);
    }

    [Fact]
    public async Task Concurrent_appenders_share_syncs()
    {
        using var dir = new TempDir();
        var syncs = 0;
        var options = new WalOptions { SyncObserver = _ => Interlocked.Increment(ref syncs) };
        var next = 0UL;
        var gate = new Lock();
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            var writers = Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
            {
                for (var i = 0; i < 20; i++)
                {
                    Task t;
                    lock (gate)
                    {
                        next++;
                        t = wal.AppendAsync([E(next)], null);
                    }

                    await t;
                }
            })).ToArray();
            await Task.WhenAll(writers);
        }

        Assert.True(syncs < 640, $"640 appends took {syncs} syncs; group commit should share them");
        var (w, c) = WriteAheadLog.Open(dir.Path, Me);
        w.Dispose();
        AssertEntries(c.Entries, 1, 640);
    }

    [Fact]
    public async Task Segments_are_cut_chained_and_released_after_a_snapshot()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 4096 };
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            for (ulong i = 1; i <= 200; i++)
            {
                await wal.AppendAsync([E(i, size: 100)], new HardState(1, 0, i));
            }

            Assert.True(wal.SegmentNames.Count > 3, $"expected several segments, got {wal.SegmentNames.Count}");
            Assert.StartsWith("0000000000000001-", wal.SegmentNames[1], StringComparison.Ordinal);
            await wal.SaveSnapshotAsync(new WalSnapshot(150, 1, new ConfState([1])));
            var before = wal.SegmentNames.Count;
            wal.ReleaseTo(150);
            Assert.True(wal.SegmentNames.Count < before, "segments covered by the snapshot should be released");
            Assert.Equal(wal.SegmentNames.Count, Directory.GetFiles(dir.Path, "*.wal").Length);
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me, new WalSnapshot(150, 1, new ConfState([1])), options);
        w.Dispose();
        AssertEntries(c.Entries, 151, 200);
        Assert.Equal(200UL, c.HardState.Commit);
    }

    [Fact]
    public async Task A_wal_reopens_after_release_when_its_oldest_kept_segment_holds_a_rewrite_of_earlier_entries()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 4096 };
        ulong cutAfter;
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            ulong i = 0;
            do
            {
                i++;
                await wal.AppendAsync([E(i, size: 100)], new HardState(1, 0, 0));
            }
            while (wal.SegmentNames.Count < 3);

            cutAfter = i; // the newest segment starts at cutAfter + 1; entries cutAfter-2.. were never committed
            await wal.AppendAsync([E(cutAfter + 1, size: 100)], new HardState(1, 0, 0));
            await wal.AppendAsync([E(cutAfter - 2, term: 2, size: 100), E(cutAfter - 1, term: 2, size: 100)], new HardState(2, 0, cutAfter - 3));
            for (var j = cutAfter; j <= cutAfter + 10; j++)
            {
                await wal.AppendAsync([E(j, term: 2, size: 100)], new HardState(2, 0, j));
            }

            await wal.SaveSnapshotAsync(new WalSnapshot(cutAfter + 5, 2, new ConfState([1])));
            wal.ReleaseTo(cutAfter + 5);
            Assert.StartsWith($"{cutAfter + 1:x16}", wal.SegmentNames[0][17..], StringComparison.Ordinal);
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me, WalSnapshot.Zero, options);
        w.Dispose();
        Assert.Equal(Enumerable.Range(0, 13).Select(k => cutAfter - 2 + (ulong)k), c.Entries.Select(e => e.Index));
        Assert.All(c.Entries, e => Assert.Equal(2UL, e.Term));
    }

    /// <summary>
    /// A member applies behind what it has persisted, so the marker of a snapshot taken just after a segment was cut can be the
    /// first record of the new segment while naming an index below that segment's first entry. Once a later snapshot releases
    /// the segment before it, the log read from the oldest kept segment starts with that marker: the entries between the
    /// marker and the segment's first entry lie in the released segment, covered by the later snapshot, and are not missing.
    /// </summary>
    [Theory]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(6UL)]
    public async Task A_wal_reopens_when_its_oldest_kept_segment_starts_with_a_marker_older_than_its_first_entry(ulong appliedLag)
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 4096 };
        ulong lastBeforeCut;
        ulong released;
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            ulong i = 0;
            do
            {
                i++;
                await wal.AppendAsync([E(i, size: 100)], new HardState(1, 0, i));
            }
            while (wal.SegmentNames.Count < 2);

            lastBeforeCut = i; // the new segment is empty: the next record written is its first
            await wal.SaveSnapshotAsync(new WalSnapshot(lastBeforeCut - appliedLag, 1, new ConfState([1])));
            for (var j = lastBeforeCut + 1; j <= lastBeforeCut + 10; j++)
            {
                await wal.AppendAsync([E(j, size: 100)], new HardState(1, 0, j));
            }

            released = lastBeforeCut + 5;
            await wal.SaveSnapshotAsync(new WalSnapshot(released, 1, new ConfState([1])));
            wal.ReleaseTo(released);
            Assert.True(wal.SegmentNames.Count == 1, $"segments kept: {string.Join(", ", wal.SegmentNames)}");
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me, WalSnapshot.Zero, options);
        w.Dispose();
        AssertEntries(c.Entries, lastBeforeCut + 1, lastBeforeCut + 10);
        Assert.Equal([lastBeforeCut - appliedLag, released], c.Snapshots.Select(s => s.Index));
    }

    [Fact]
    public async Task A_data_dir_of_another_member_is_refused()
    {
        using var dir = new TempDir();
        using (var wal = WriteAheadLog.Create(dir.Path, Me))
        {
            await wal.AppendAsync([E(1)], null);
        }

        var ex = Assert.Throws<WalIdentityMismatchException>(() => WriteAheadLog.Open(dir.Path, new WalMetadata(0xC1, 0x22)));
        Assert.Contains("belongs to cluster 00000000000000c1 member 0000000000000011", ex.Message, StringComparison.Ordinal);
        Assert.Contains("member 0000000000000022", ex.Message, StringComparison.Ordinal);
        Assert.Throws<WalIdentityMismatchException>(() => WriteAheadLog.Open(dir.Path, new WalMetadata(0xC2, 0x11)));
    }

    private static async Task<(string Path, long EndOfData)> WriteThreeBatches(TempDir dir)
    {
        using (var wal = WriteAheadLog.Create(dir.Path, Me))
        {
            await wal.AppendAsync([E(1), E(2)], new HardState(1, 0, 2));
            await wal.AppendAsync([E(3), E(4)], new HardState(1, 0, 4));
            await wal.AppendAsync([E(5), E(6)], new HardState(1, 0, 6));
        }

        var path = Directory.GetFiles(dir.Path, "*.wal").Single();
        var bytes = File.ReadAllBytes(path);
        return (path, Array.FindLastIndex(bytes, b => b != 0) + 1);
    }

    private static long RecordOffset(string path, ulong entryIndex)
    {
        // Entry payload starts with the index (8 bytes little endian) right after the 16-byte header.
        var bytes = File.ReadAllBytes(path);
        for (var at = 0; at + 24 <= bytes.Length; at += 8)
        {
            if (bytes[at + 4] == 2 && BitConverter.ToUInt64(bytes, at + 16) == entryIndex)
            {
                return at;
            }
        }

        throw new InvalidOperationException($"entry {entryIndex} not found");
    }

    [Fact]
    public async Task A_partial_last_record_is_cut_with_a_warning_naming_it()
    {
        using var dir = new TempDir();
        var (path, end) = await WriteThreeBatches(dir);
        var lastBatch = RecordOffset(path, 5);

        // Zero the second half of the last batch: what a crash in the middle of its write leaves.
        using (var f = new FileStream(path, FileMode.Open))
        {
            var half = lastBatch + ((end - lastBatch) / 2);
            f.Position = half;
            f.Write(new byte[end - half]);
        }

        var (wal, c) = WriteAheadLog.Open(dir.Path, Me);
        using (wal)
        {
            AssertEntries(c.Entries, 1, 5);
            var warning = Assert.Single(c.Repairs);
            Assert.Contains($"torn tail truncated at offset {RecordOffset(path, 5) + 8 * ((WalFrameSize(5)) / 8)}", warning, StringComparison.Ordinal);
            Assert.Contains(path, warning, StringComparison.Ordinal);
            Assert.Contains("never acknowledged", warning, StringComparison.Ordinal);
            await wal.AppendAsync([E(6), E(7)], new HardState(1, 0, 7));
        }

        var (again, c2) = WriteAheadLog.Open(dir.Path, Me);
        again.Dispose();
        AssertEntries(c2.Entries, 1, 7);
        Assert.Empty(c2.Repairs);
    }

    private static int WalFrameSize(ulong index) => 16 + ((17 + 16 + 7) & ~7);

    [Fact]
    public async Task Trailing_garbage_after_the_last_record_is_cut()
    {
        using var dir = new TempDir();
        var (path, lastNonZero) = await WriteThreeBatches(dir);
        var end = (lastNonZero + 7) & ~7L; // records end on 8-byte boundaries
        using (var f = new FileStream(path, FileMode.Open))
        {
            f.Position = end;
            f.Write("garbage!garbage!garbage!"u8);
        }

        var (wal, c) = WriteAheadLog.Open(dir.Path, Me);
        wal.Dispose();
        AssertEntries(c.Entries, 1, 6);
        var warning = Assert.Single(c.Repairs);
        Assert.Contains($"torn tail truncated at offset {end}", warning, StringComparison.Ordinal);
        Assert.Contains("garbage", warning, StringComparison.Ordinal);
        Assert.Contains("cut 24 bytes", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Damage_before_a_later_synced_batch_refuses_to_start_naming_file_and_offset()
    {
        using var dir = new TempDir();
        var (path, _) = await WriteThreeBatches(dir);
        var damaged = RecordOffset(path, 3);
        using (var f = new FileStream(path, FileMode.Open))
        {
            f.Position = damaged + 20;
            f.WriteByte(0xFF);
        }

        var ex = Assert.Throws<WalCorruptException>(() => WriteAheadLog.Open(dir.Path, Me));
        Assert.Equal(path, ex.File);
        Assert.Equal(damaged, ex.Offset);
        Assert.Contains($"'{path}' is damaged at offset {damaged}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("CRC-32C does not match", ex.Message, StringComparison.Ordinal);
        Assert.Contains("etcdctl member remove", ex.Message, StringComparison.Ordinal);
        Assert.Contains("empty --data-dir", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Damage_in_an_older_segment_refuses_to_start()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            for (ulong i = 1; i <= 60; i++)
            {
                await wal.AppendAsync([E(i, size: 64)], null);
            }
        }

        var first = Directory.GetFiles(dir.Path, "*.wal").Order(StringComparer.Ordinal).First();
        using (var f = new FileStream(first, FileMode.Open))
        {
            f.Position = f.Length - 10;
            f.WriteByte(0x5A);
        }

        var ex = Assert.Throws<WalCorruptException>(() => WriteAheadLog.Open(dir.Path, Me, null, options));
        Assert.Equal(first, ex.File);
        Assert.Contains("not the newest", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broken_chain_is_refused()
    {
        using var dir = new TempDir();
        var options = new WalOptions { SegmentSizeBytes = 2048 };
        using (var wal = WriteAheadLog.Create(dir.Path, Me, options))
        {
            for (ulong i = 1; i <= 60; i++)
            {
                await wal.AppendAsync([E(i, size: 64)], null);
            }
        }

        // Swap in a second segment from another log: every record is intact on its own, but the chain does not continue.
        using var other = new TempDir();
        using (var wal = WriteAheadLog.Create(other.Path, Me, options))
        {
            for (ulong i = 1; i <= 60; i++)
            {
                await wal.AppendAsync([E(i, 2, size: 64)], null);
            }
        }

        var name = Path.GetFileName(Directory.GetFiles(dir.Path, "0000000000000001-*.wal").Single());
        var otherSecond = Directory.GetFiles(other.Path, "0000000000000001-*.wal").Single();
        File.Copy(otherSecond, Path.Combine(dir.Path, name), overwrite: true);
        var ex = Assert.Throws<WalCorruptException>(() => WriteAheadLog.Open(dir.Path, Me, null, options));
        Assert.Contains("CRC chain is broken", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, ex.Offset);
    }

    [Fact]
    public async Task The_fsync_method_and_empty_appends_work_and_a_failed_write_stops_the_log()
    {
        using var dir = new TempDir();
        using (var wal = WriteAheadLog.Create(dir.Path, Me, new WalOptions { FileSystem = new OsFileSystem(WalSyncMethod.Fsync) }))
        {
            await wal.AppendAsync([], null); // nothing to write: completes without a sync
            await wal.AppendAsync([E(1)], new HardState(1, 0, 1));
        }

        var (w, c) = WriteAheadLog.Open(dir.Path, Me);
        w.Dispose();
        AssertEntries(c.Entries, 1, 1);

        // After a failed write nothing more is accepted: the member must restart and repair.
        var fs = new FaultyFileSystem();
        using var failing = WriteAheadLog.Create("/x/wal", Me, new WalOptions { FileSystem = fs });
        fs.CrashAtWrite = fs.Writes + 1;
        var first = await Assert.ThrowsAsync<IOException>(() => failing.AppendAsync([E(1)], null));
        Assert.Contains("WAL write failed", first.Message, StringComparison.Ordinal);
        var next = await Assert.ThrowsAsync<IOException>(() => failing.AppendAsync([E(1)], null));
        Assert.Contains("stopped after a write failure", next.Message, StringComparison.Ordinal);
    }
}
