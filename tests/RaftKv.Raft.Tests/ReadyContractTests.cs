using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>The Ready/Advance contract the host relies on.</summary>
public sealed class ReadyContractTests
{
    [Fact]
    public void Commit_only_change_needs_no_fsync_but_term_vote_and_entries_do()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.TickAll(1);
        net[1].Propose("x"u8.ToArray());
        var appendReady = net[1].GetReady();
        Assert.True(appendReady.MustSync);
        net.Storage[1].Append(appendReady.Entries);
        net[1].Advance(appendReady);

        // Follower acknowledges; the leader's next Ready only moves the commit index and applies.
        var app = appendReady.Messages.First(m => m.To == 2 && m.Type == MessageType.MsgApp);
        net[2].Step(app);
        var followerReady = net[2].GetReady();
        net.Storage[2].Append(followerReady.Entries);
        net[2].Advance(followerReady);
        net[1].Step(followerReady.MessagesAfterPersist.Single(m => m.Type == MessageType.MsgAppResp));
        var commitReady = net[1].GetReady();
        Assert.NotNull(commitReady.HardState);
        Assert.Empty(commitReady.Entries);
        Assert.False(commitReady.MustSync);
        Assert.Equal("x", Encoding.UTF8.GetString(Assert.Single(commitReady.CommittedEntries).Data.Span));
        net[1].Advance(commitReady);
    }

    [Fact]
    public void Committed_entries_are_handed_out_in_pages_of_MaxCommittedSizePerReady()
    {
        var net = new TestNetwork(1, (_, c) => c with { MaxCommittedSizePerReady = 3 * (10 + Entry.OverheadBytes) });
        net.Campaign(1);
        net.Process();
        var node = net[1];
        for (var i = 0; i < 10; i++)
        {
            node.Propose(new byte[10]);
        }

        var pages = new List<int>();
        while (node.HasReady)
        {
            var rd = node.GetReady();
            net.Storage[1].Append(rd.Entries);
            if (rd.HardState is { } hs)
            {
                net.Storage[1].SetHardState(hs);
            }

            if (rd.CommittedEntries.Count > 0)
            {
                pages.Add(rd.CommittedEntries.Count);
            }

            node.Advance(rd);
        }

        Assert.Equal(10, pages.Sum());
        Assert.All(pages, p => Assert.InRange(p, 1, 3));
    }

    [Fact]
    public void Restart_with_Applied_does_not_hand_out_applied_entries_again()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Propose(1, "a");
        net.Propose(1, "b");
        net.TickAll(1);
        var applied = net[2].Status.Applied;
        net.Restart(2, (_, c) => c with { Applied = applied });
        net.Propose(1, "c");
        net.TickAll(1);
        Assert.Equal(["c"], net.Applied[2]); // Restart cleared the list; only the new entry was applied again
    }

    [Fact]
    public void ProposeBatch_appends_all_entries_in_one_message_round()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.TickAll(1);
        var before = net.Trace.Count;
        net[1].ProposeBatch([.. Enumerable.Range(0, 50).Select(i => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes($"b{i}"))]);
        net.Process();
        var apps = net.Trace.Skip(before).Where(m => m.Type == MessageType.MsgApp && m.To == 2 && m.Entries.Count > 0).ToList();
        Assert.Equal(50, Assert.Single(apps).Entries.Count);
        net.TickAll(1);
        Assert.Equal(50, net.Applied[3].Count);
    }

    [Fact]
    public void A_new_member_joins_with_empty_storage_and_learns_the_log_and_membership_from_the_leader()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Propose(1, "before-join");
        var joiner = net.Add(4); // empty storage, no bootstrap
        Assert.Empty(joiner.ConfState.Voters);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        net.Process();
        net.TickAll(3);
        Assert.Equal(["before-join"], net.Applied[4]);
        Assert.Equal(new ConfState([1, 2, 3], [4]), joiner.ConfState);
        Assert.Equal(net.LogOf(1), net.LogOf(4));
    }

    [Fact]
    public void Soft_state_is_reported_when_leader_or_role_changes_and_not_otherwise()
    {
        var net = new TestNetwork(3);
        net.Campaign(2);
        Assert.Equal(new SoftState(2, StateRole.Leader), net.SoftStates[2][^1]);
        Assert.Equal(new SoftState(2, StateRole.Follower), net.SoftStates[3][^1]);
        var counts = net.SoftStates.ToDictionary(kv => kv.Key, kv => kv.Value.Count);

        net.TickAll(5);
        net.Propose(2, "x");
        Assert.Equal(counts, net.SoftStates.ToDictionary(kv => kv.Key, kv => kv.Value.Count));

        net.Isolate(2);
        net.TickAll(30);
        Assert.Equal(new SoftState(0, StateRole.Follower), net.SoftStates[2][counts[2]]); // check-quorum stepped it down
    }

    [Fact]
    public void Leader_with_a_slow_disk_commits_through_its_followers_but_applies_only_after_its_own_persist()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.TickAll(1);
        var leader = net[1];
        leader.Propose("slow"u8.ToArray());
        var rd = leader.GetReady(); // the leader's write is "in progress" from here on
        var index = rd.Entries[^1].Index;
        foreach (var m in rd.Messages)
        {
            net.Nodes[m.To].Step(m); // sent in parallel with the leader's fsync
        }

        foreach (var id in new ulong[] { 2, 3 })
        {
            var frd = net[id].GetReady();
            net.Storage[id].Append(frd.Entries);
            net[id].Advance(frd);
            foreach (var m in frd.MessagesAfterPersist)
            {
                leader.Step(m);
            }
        }

        // Two durable copies out of three: committed, although the leader has not persisted its own copy.
        Assert.Equal(index, leader.Commit);
        Assert.False(leader.HasReady); // but nothing is handed out until the outstanding Ready is advanced

        net.Storage[1].Append(rd.Entries);
        leader.Advance(rd);
        var next = leader.GetReady();
        Assert.Equal("slow", Encoding.UTF8.GetString(next.CommittedEntries[^1].Data.Span));
        leader.Advance(next);
    }

    [Fact]
    public void Status_reports_progress_of_every_member_on_the_leader_only()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Propose(1, "x");
        net.TickAll(1);
        var status = net[1].Status;
        Assert.Equal([1UL, 2UL, 3UL], status.Progress.Keys.Order());
        Assert.All(status.Progress.Values, p => Assert.Equal(net[1].LastIndex, p.Match));
        Assert.Equal(new SoftState(1, StateRole.Leader), status.SoftState);
        Assert.Equal(new ConfState([1, 2, 3]), status.ConfState);
        Assert.Empty(net[2].Status.Progress);
        Assert.Equal(net[1].Commit, net[2].Status.Applied);
    }
}
