using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>Raft paper §5.3 (log replication), flow control and the Ready contract.</summary>
public sealed class ReplicationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public void S5_3_Leader_replicates_proposals_and_every_member_applies_them_in_order(int size)
    {
        var net = new TestNetwork(size);
        net.Campaign(1);
        for (var i = 0; i < 10; i++)
        {
            net.Propose(1, $"v{i}");
        }

        net.TickAll(2); // heartbeats carry the final commit index to followers
        var expected = Enumerable.Range(0, 10).Select(i => $"v{i}").ToList();
        foreach (var id in net.Nodes.Keys)
        {
            Assert.True(expected.SequenceEqual(net.Applied[id]), $"node {id} applied [{string.Join(',', net.Applied[id])}]\n{net.Describe()}");
        }
    }

    [Fact]
    public void S5_3_Entry_commits_once_a_majority_stores_it_and_not_before()
    {
        var net = new TestNetwork(5);
        net.Campaign(1);
        var commitBefore = net[1].Commit;
        net.Cut(1, 3);
        net.Cut(1, 4);
        net.Cut(1, 5);
        net.Propose(1, "x");
        Assert.True(net[1].Commit == commitBefore, "committed with 2 of 5 copies\n" + net.Describe());

        net.Heal();
        net.Cut(1, 4);
        net.Cut(1, 5);
        net.TickAll(1); // heartbeat response from 3 triggers the append
        Assert.True(net[1].Commit == net[1].LastIndex, "not committed with 3 of 5 copies\n" + net.Describe());
        Assert.Equal(["x"], net.Applied[1]);
    }

    [Theory]
    // Follower log: entries 1..3 of term 1. MsgApp (prevIndex, prevTerm) → accepted?
    [InlineData(3UL, 1UL, true)]
    [InlineData(2UL, 1UL, true)]
    [InlineData(3UL, 2UL, false)] // term mismatch at 3
    [InlineData(4UL, 1UL, false)] // we do not have index 4
    [InlineData(0UL, 0UL, true)]  // below commit: answered with the commit index
    public void S5_3_Follower_rejects_append_whose_previous_entry_does_not_match(ulong prevIndex, ulong prevTerm, bool accepted)
    {
        var (node, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 2, logTerms: [1, 1, 1]);
        node.Step(new Message
        {
            Type = MessageType.MsgApp,
            From = 2,
            To = 1,
            Term = 2,
            Index = prevIndex,
            LogTerm = prevTerm,
            Entries = [Entry.Normal(prevIndex + 1, 2, default)],
        });
        var resp = Assert.Single(ElectionTests.Drain(node), m => m.Type == MessageType.MsgAppResp);
        Assert.Equal(!accepted, resp.Reject);
    }

    [Theory]
    // Follower has 1/1 2/1 3/2 4/2; leader (term 3) sends entries after (prevIndex, prevTerm).
    [InlineData(1UL, 1UL, new ulong[] { 3, 3 }, "1/1 2/3 3/3")]          // conflict at 2: suffix replaced
    [InlineData(2UL, 1UL, new ulong[] { 2, 2 }, "1/1 2/1 3/2 4/2")]      // same entries: nothing changes
    [InlineData(2UL, 1UL, new ulong[] { 2 }, "1/1 2/1 3/2 4/2")]         // a prefix of what we have: keep the rest
    [InlineData(4UL, 2UL, new ulong[] { 3, 3 }, "1/1 2/1 3/2 4/2 5/3 6/3")] // extends
    [InlineData(3UL, 2UL, new ulong[] { 3 }, "1/1 2/1 3/2 4/3")]         // conflict at 4
    public void S5_3_Follower_deletes_a_conflicting_suffix_and_appends_the_leaders_entries(ulong prevIndex, ulong prevTerm, ulong[] terms, string expected)
    {
        var (node, storage) = ElectionTests.SingleNode(1, [1, 2, 3], term: 3, logTerms: [1, 1, 2, 2]);
        node.Step(new Message
        {
            Type = MessageType.MsgApp,
            From = 2,
            To = 1,
            Term = 3,
            Index = prevIndex,
            LogTerm = prevTerm,
            Entries = [.. terms.Select((t, i) => Entry.Normal(prevIndex + 1 + (ulong)i, t, default))],
        });
        ElectionTests.Drain(node, storage);
        var got = string.Join(' ', Enumerable.Range(1, (int)storage.LastIndex()).Select(i => $"{i}/{storage.Term((ulong)i)}"));
        Assert.Equal(expected, got);
    }

    public static TheoryData<string, ulong[]> Figure7Followers => new()
    {
        // Raft paper figure 7: follower logs (terms of entries 1..n) facing a leader of term 8 with 1 1 1 4 4 5 5 6 6 6.
        { "a: missing entries", [1, 1, 1, 4, 4, 5, 5, 6, 6] },
        { "b: missing many entries", [1, 1, 1, 4] },
        { "c: an extra uncommitted entry", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6] },
        { "d: extra entries of a later term", [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7] },
        { "e: missing and extra entries", [1, 1, 1, 4, 4, 4, 4] },
        { "f: many extra entries of old terms", [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3] },
    };

    [Theory]
    [MemberData(nameof(Figure7Followers))]
    public void S5_3_Leader_brings_divergent_follower_logs_to_its_own_figure_7(string scenario, ulong[] followerLog)
    {
        ulong[] leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
        var net = new TestNetwork(new Dictionary<ulong, MemoryRaftLogStorage>
        {
            [1] = TestNetwork.MakeStorage([1, 2, 3], leaderLog, term: 7),
            [2] = TestNetwork.MakeStorage([1, 2, 3], followerLog, term: 7),
            // A third voter with a short log, so the leader wins even when the follower's log is more up to date (d).
            [3] = TestNetwork.MakeStorage([1, 2, 3], [1], term: 7),
        });
        net.Campaign(1);
        Assert.True(net[1].Role == StateRole.Leader, scenario + "\n" + net.Describe());
        net.TickAll(3);
        Assert.True(net.LogOf(1) == net.LogOf(2), $"{scenario}\n{net.Describe()}");
        Assert.Equal(net[1].LastIndex, net[2].Commit);
    }

    [Fact]
    public void S5_3_Follower_forwards_proposals_to_the_leader()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Propose(2, "from-follower");
        net.TickAll(1);
        Assert.Contains(net.Trace, m => m.Type == MessageType.MsgProp && m.From == 2 && m.To == 1);
        Assert.Equal(["from-follower"], net.Applied[3]);
    }

    [Fact]
    public void Proposal_without_a_leader_fails_with_no_leader()
    {
        var net = new TestNetwork(3);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].Propose("x"u8.ToArray()));
        Assert.Equal(ProposalDropReason.NoLeader, ex.Reason);
        Assert.Contains("no leader", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Leader_counts_its_own_entry_only_after_persisting_it()
    {
        var storage = new MemoryRaftLogStorage();
        var node = new RaftNode(TestNetwork.Config(1, storage));
        node.Bootstrap([1]);
        ElectionTests.Drain(node, storage);
        node.Campaign();
        ElectionTests.Drain(node, storage);
        Assert.Equal(StateRole.Leader, node.Role);

        node.Propose("x"u8.ToArray());
        var rd = node.GetReady();
        Assert.Single(rd.Entries);
        Assert.Empty(rd.CommittedEntries);
        Assert.True(node.Commit < rd.Entries[0].Index, "committed before the leader's own write was persisted");
        storage.Append(rd.Entries);
        node.Advance(rd);
        Assert.Equal(rd.Entries[0].Index, node.Commit);
        var next = node.GetReady();
        Assert.Equal("x", Encoding.UTF8.GetString(Assert.Single(next.CommittedEntries).Data.Span));
        node.Advance(next);
    }

    [Fact]
    public void Ready_puts_acknowledgements_and_votes_after_persistence_and_leader_appends_before()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net[1].Propose("x"u8.ToArray());
        var leaderReady = net[1].GetReady();
        Assert.Contains(leaderReady.Messages, m => m.Type == MessageType.MsgApp);
        Assert.DoesNotContain(leaderReady.MessagesAfterPersist, m => m.Type == MessageType.MsgApp);
        Assert.True(leaderReady.MustSync);

        var app = leaderReady.Messages.First(m => m.Type == MessageType.MsgApp && m.To == 2);
        net[2].Step(app);
        var followerReady = net[2].GetReady();
        Assert.Contains(followerReady.MessagesAfterPersist, m => m.Type == MessageType.MsgAppResp);
        Assert.DoesNotContain(followerReady.Messages, m => m.Type == MessageType.MsgAppResp);
        Assert.NotEmpty(followerReady.Entries);

        // Votes, too, wait for the hard state to be durable.
        var (voter, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 1);
        voter.Step(ElectionTests.Vote(from: 2, term: 5, lastIndex: 5, lastTerm: 1));
        var vr = voter.GetReady();
        Assert.Equal(new HardState(5, 2, 1), vr.HardState);
        Assert.Contains(vr.MessagesAfterPersist, m => m.Type == MessageType.MsgVoteResp && !m.Reject);
        Assert.Empty(vr.Messages);
    }

    [Fact]
    public void GetReady_refuses_a_second_Ready_before_Advance()
    {
        var net = new TestNetwork(1);
        net.Campaign(1);
        net[1].Propose("x"u8.ToArray());
        var rd = net[1].GetReady();
        Assert.False(net[1].HasReady);
        Assert.Throws<InvalidOperationException>(() => net[1].GetReady());
        net[1].Advance(rd);
        Assert.Throws<InvalidOperationException>(() => net[1].Advance(rd));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(4, 4)]
    public void Flow_control_limits_unacknowledged_MsgApp_to_the_inflight_window(int window, int expectedInFlight)
    {
        var net = new TestNetwork(3, (_, c) => c with { MaxInflightMessages = window });
        net.Campaign(1);
        net.TickAll(1);
        // Followers stop acknowledging: the leader may only have `window` appends outstanding per follower.
        net.Filter = m => m.Type != MessageType.MsgAppResp;
        var before = net.Trace.Count;
        for (var i = 0; i < 10; i++)
        {
            net.Propose(1, $"v{i}");
        }

        var sentTo2 = net.Trace.Skip(before).Count(m => m.Type == MessageType.MsgApp && m.To == 2 && m.Entries.Count > 0);
        Assert.Equal(expectedInFlight, sentTo2);
        Assert.Equal(ProgressState.Replicate, net[1].Status.Progress[2].State);
        Assert.True(net[1].Status.Progress[2].Paused);

        net.Heal();
        net.TickAll(2);
        Assert.Equal(10, net.Applied[2].Count);
    }

    [Fact]
    public void Flow_control_limits_bytes_in_flight()
    {
        // Each entry: 100 data bytes + overhead; a 300-byte budget admits 3 single-entry messages.
        var net = new TestNetwork(3, (_, c) => c with { MaxInflightBytes = 300, MaxSizePerMessage = 0 });
        net.Campaign(1);
        net.TickAll(1);
        net.Filter = m => m.Type != MessageType.MsgAppResp;
        var before = net.Trace.Count;
        for (var i = 0; i < 10; i++)
        {
            net[1].Propose(new byte[100]);
            net.Process();
        }

        var sentTo2 = net.Trace.Skip(before).Count(m => m.Type == MessageType.MsgApp && m.To == 2 && m.Entries.Count > 0);
        Assert.Equal(3, sentTo2);
    }

    [Fact]
    public void Max_size_per_message_splits_appends_but_always_sends_one_entry()
    {
        var net = new TestNetwork(3, (_, c) => c with { MaxSizePerMessage = 2 * (64 + Entry.OverheadBytes) });
        net.Campaign(1);
        net.TickAll(1);
        net.Isolate(2);
        for (var i = 0; i < 6; i++)
        {
            net[1].Propose(new byte[64]);
        }

        net.Process();
        net.Heal();
        var before = net.Trace.Count;
        net.TickAll(3);
        var appends = net.Trace.Skip(before).Where(m => m.Type == MessageType.MsgApp && m.To == 2 && m.Entries.Count > 0).ToList();
        Assert.NotEmpty(appends);
        Assert.All(appends, m => Assert.InRange(m.Entries.Count, 1, 2));
        Assert.Equal(net.LogOf(1), net.LogOf(2));
    }

    [Fact]
    public void Uncommitted_size_limit_drops_proposals_until_entries_commit()
    {
        var net = new TestNetwork(3, (_, c) => c with { MaxUncommittedEntriesSize = 1000 });
        net.Campaign(1);
        net.Isolate(1); // nothing commits
        net[1].Propose(new byte[600]);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].Propose(new byte[600]));
        Assert.Equal(ProposalDropReason.UncommittedSizeLimit, ex.Reason);
        net.Heal();
        net.TickAll(2);
        net[1].Propose(new byte[600]); // accepted again once the first one committed
    }

    [Fact]
    public void Unreachable_follower_goes_back_to_probing()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Propose(1, "x");
        Assert.Equal(ProgressState.Replicate, net[1].Status.Progress[2].State);
        net[1].ReportUnreachable(2);
        Assert.Equal(ProgressState.Probe, net[1].Status.Progress[2].State);
    }
}
