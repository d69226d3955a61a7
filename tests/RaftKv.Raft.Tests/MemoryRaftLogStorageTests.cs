namespace RaftKv.Raft.Tests;

public sealed class MemoryRaftLogStorageTests
{
    private static MemoryRaftLogStorage WithEntries(params (ulong Index, ulong Term)[] entries)
    {
        var s = new MemoryRaftLogStorage();
        if (entries.Length > 0 && entries[0].Index > 1)
        {
            // Start from a snapshot at the first entry so the log begins there (etcd's dummy-entry layout).
            s.ApplySnapshot(new Snapshot(new SnapshotMetadata(entries[0].Index, entries[0].Term, new ConfState([1])), default));
            entries = entries[1..];
        }

        s.Append([.. entries.Select(e => Entry.Normal(e.Index, e.Term, new byte[8]))]);
        return s;
    }

    [Fact]
    public void New_storage_is_empty_with_first_index_1_and_last_index_0()
    {
        var s = new MemoryRaftLogStorage();
        Assert.Equal(1UL, s.FirstIndex());
        Assert.Equal(0UL, s.LastIndex());
        Assert.Equal(0UL, s.Term(0));
        Assert.Empty(s.Entries(1, 1, ulong.MaxValue));
        Assert.True(s.Snapshot().IsEmpty);
        Assert.True(s.InitialState().HardState.IsEmpty);
    }

    [Theory]
    [InlineData(2UL, "compacted")]
    [InlineData(3UL, "3")]
    [InlineData(4UL, "4")]
    [InlineData(5UL, "5")]
    [InlineData(6UL, "unavailable")]
    public void Term_answers_from_the_snapshot_index_to_the_last_index(ulong index, string expected)
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        var got = Describe(() => s.Term(index).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(expected, got);
    }

    [Theory]
    [InlineData(2UL, 6UL, ulong.MaxValue, "compacted")]
    [InlineData(3UL, 4UL, ulong.MaxValue, "compacted")]
    [InlineData(4UL, 5UL, ulong.MaxValue, "4")]
    [InlineData(4UL, 6UL, ulong.MaxValue, "4,5")]
    [InlineData(4UL, 7UL, ulong.MaxValue, "4,5,6")]
    [InlineData(4UL, 8UL, ulong.MaxValue, "unavailable")]
    // Byte limit: each entry is 8 + OverheadBytes = 32 bytes; at least one is always returned.
    [InlineData(4UL, 7UL, 0UL, "4")]
    [InlineData(4UL, 7UL, 32UL, "4")]
    [InlineData(4UL, 7UL, 63UL, "4")]
    [InlineData(4UL, 7UL, 64UL, "4,5")]
    [InlineData(4UL, 7UL, 96UL, "4,5,6")]
    public void Entries_returns_the_half_open_range_within_the_byte_limit_but_at_least_one(ulong lo, ulong hi, ulong maxBytes, string expected)
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5), (6, 6));
        var got = Describe(() => string.Join(',', s.Entries(lo, hi, maxBytes).Select(e => e.Index)));
        Assert.Equal(expected, got);
    }

    [Theory]
    // Append exactly after: extends.
    [InlineData(new ulong[] { 6 }, new ulong[] { 6 }, "3/3,4/4,5/5,6/6")]
    // Same entries again: no change.
    [InlineData(new ulong[] { 3, 4, 5 }, new ulong[] { 3, 4, 5 }, "3/3,4/4,5/5")]
    // Conflict at 4 with a new term: truncate from 4 and replace.
    [InlineData(new ulong[] { 4, 5 }, new ulong[] { 6, 6 }, "3/3,4/6,5/6")]
    [InlineData(new ulong[] { 4 }, new ulong[] { 6 }, "3/3,4/6")]
    // Overlapping the compacted part: the compacted prefix is ignored.
    [InlineData(new ulong[] { 2, 3, 4 }, new ulong[] { 3, 3, 5 }, "3/3,4/5")]
    // Entirely compacted: nothing happens.
    [InlineData(new ulong[] { 1, 2 }, new ulong[] { 1, 2 }, "3/3,4/4,5/5")]
    public void Append_overwrites_a_conflicting_suffix_and_ignores_the_compacted_prefix(ulong[] indexes, ulong[] terms, string expected)
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        s.Append([.. indexes.Select((ix, i) => Entry.Normal(ix, terms[i], default))]);
        Assert.Equal(expected, Dump(s));
    }

    [Fact]
    public void Append_refuses_a_gap_and_says_where()
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        var ex = Assert.Throws<ArgumentException>(() => s.Append([Entry.Normal(7, 5, default)]));
        Assert.Contains("gap", ex.Message, StringComparison.Ordinal);
        Assert.Equal("3/3,4/4,5/5", Dump(s));
    }

    [Theory]
    [InlineData(2UL, "compacted")]
    [InlineData(3UL, "compacted")]
    [InlineData(4UL, "4/4,5/5")]
    [InlineData(5UL, "5/5")]
    [InlineData(6UL, "out of range")]
    public void Compact_drops_entries_before_the_index_and_keeps_its_term(ulong compactIndex, string expected)
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        var got = Describe(() =>
        {
            s.Compact(compactIndex);
            return Dump(s);
        });
        Assert.Equal(expected, got);
        if (compactIndex is 4 or 5)
        {
            Assert.Equal(compactIndex + 1, s.FirstIndex());
            Assert.Equal(compactIndex, s.Term(compactIndex));
        }
    }

    [Fact]
    public void CreateSnapshot_records_index_term_membership_and_data()
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        var cs = new ConfState([1, 2, 3], [4]);
        var snap = s.CreateSnapshot(4, cs, new byte[] { 42 });
        Assert.Equal(new SnapshotMetadata(4, 4, cs), snap.Metadata);
        Assert.Equal(snap, s.Snapshot());
        Assert.Equal(cs, s.InitialState().ConfState);
        Assert.Throws<ArgumentException>(() => s.CreateSnapshot(4, cs, default));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.CreateSnapshot(6, cs, default));
    }

    [Fact]
    public void ApplySnapshot_replaces_the_log_and_refuses_an_older_snapshot()
    {
        var s = WithEntries((3, 3), (4, 4), (5, 5));
        s.ApplySnapshot(new Snapshot(new SnapshotMetadata(10, 7, new ConfState([1, 2])), default));
        Assert.Equal(11UL, s.FirstIndex());
        Assert.Equal(10UL, s.LastIndex());
        Assert.Equal(7UL, s.Term(10));
        var ex = Assert.Throws<ArgumentException>(() => s.ApplySnapshot(new Snapshot(new SnapshotMetadata(9, 7, new ConfState([1])), default)));
        Assert.Contains("out of date", ex.Message, StringComparison.Ordinal);
        s.Append([Entry.Normal(11, 7, default)]);
        Assert.Equal("10/7,11/7", Dump(s));
    }

    [Fact]
    public void SetHardState_is_returned_by_InitialState()
    {
        var s = new MemoryRaftLogStorage();
        s.SetHardState(new HardState(5, 2, 3));
        Assert.Equal(new HardState(5, 2, 3), s.InitialState().HardState);
    }

    [Fact]
    public void ConfState_sorts_dedups_and_compares_by_value()
    {
        Assert.Equal(new ConfState([3, 1, 2, 2], [5, 4]), new ConfState([1, 2, 3], [4, 5]));
        Assert.Equal(new ConfState([1, 2, 3], [4, 5]).GetHashCode(), new ConfState([3, 2, 1], [5, 4]).GetHashCode());
        Assert.NotEqual(new ConfState([1, 2]), new ConfState([1], [2]));
        // A node cannot be both: voter wins.
        Assert.Empty(new ConfState([1], [1]).Learners);
        Assert.Throws<ArgumentException>(() => new ConfState([0]));
    }

    [Theory]
    [InlineData(ConfChangeType.AddNode, 7UL, "")]
    [InlineData(ConfChangeType.AddLearnerNode, ulong.MaxValue, "http://10.0.0.1:2380")]
    [InlineData(ConfChangeType.RemoveNode, 1UL, "x")]
    public void ConfChange_round_trips_through_its_encoding(ConfChangeType type, ulong node, string context)
    {
        var cc = new ConfChange(type, node, System.Text.Encoding.UTF8.GetBytes(context));
        var back = ConfChange.Decode(cc.Encode());
        Assert.Equal(type, back.Type);
        Assert.Equal(node, back.NodeId);
        Assert.Equal(context, System.Text.Encoding.UTF8.GetString(back.Context.Span));
        Assert.Throws<FormatException>(() => ConfChange.Decode(new byte[] { 9, 0 }));
    }

    private static string Dump(MemoryRaftLogStorage s)
    {
        var first = s.FirstIndex() - 1;
        var parts = new List<string>();
        for (var i = first; i <= s.LastIndex(); i++)
        {
            parts.Add($"{i}/{s.Term(i)}");
        }

        return string.Join(',', parts);
    }

    private static string Describe(Func<string> f)
    {
        try
        {
            return f();
        }
        catch (RaftLogCompactedException)
        {
            return "compacted";
        }
        catch (RaftLogUnavailableException)
        {
            return "unavailable";
        }
        catch (ArgumentOutOfRangeException)
        {
            return "out of range";
        }
    }
}
