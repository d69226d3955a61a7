namespace RaftKv.Raft.Tests;

/// <summary>Raft paper §5.4: election restriction, commitment rule (figure 8), and the effect of the unsafe test switches.</summary>
public sealed class SafetyTests
{
    [Theory]
    // Voter's log ends at (index 3, term 2). Candidate's last entry → vote granted?
    [InlineData(3UL, 2UL, true)]  // same: at least as up to date
    [InlineData(4UL, 2UL, true)]  // longer, same term
    [InlineData(1UL, 3UL, true)]  // later last term wins even if shorter
    [InlineData(2UL, 2UL, false)] // shorter, same term
    [InlineData(9UL, 1UL, false)] // longer but older last term
    public void S5_4_1_Voter_rejects_candidate_with_less_up_to_date_log(ulong candidateLastIndex, ulong candidateLastTerm, bool granted)
    {
        foreach (var pre in new[] { false, true })
        {
            var (node, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 2, logTerms: [1, 1, 2]);
            node.Step(ElectionTests.Vote(from: 2, term: 3, lastIndex: candidateLastIndex, lastTerm: candidateLastTerm, pre: pre));
            var resp = Assert.Single(ElectionTests.Drain(node), m => m.Type is MessageType.MsgVoteResp or MessageType.MsgPreVoteResp);
            Assert.True(granted == !resp.Reject, $"pre-vote={pre}: expected granted={granted}, got {resp}");
        }
    }

    [Fact]
    public void S5_4_1_Unsafe_switch_grants_votes_without_the_log_check()
    {
        var (node, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 2, logTerms: [1, 1, 2],
            configure: (_, c) => c with { UnsafeGrantVoteWithoutLogCheck = true });
        node.Step(ElectionTests.Vote(from: 2, term: 3, lastIndex: 1, lastTerm: 1));
        var resp = Assert.Single(ElectionTests.Drain(node), m => m.Type == MessageType.MsgVoteResp);
        Assert.False(resp.Reject);
    }

    [Fact]
    public void S5_4_1_Candidate_with_a_stale_log_cannot_win_so_committed_entries_survive_leader_changes()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Isolate(3);
        net.Propose(1, "committed");
        Assert.Equal(["committed"], net.Applied[2]);

        // Node 3 missed the entry; with 1 down it cannot become leader: 2 refuses it.
        net.Heal();
        net.Isolate(1);
        net.Campaign(3);
        Assert.NotEqual(StateRole.Leader, net[3].Role);
        net.Campaign(2);
        Assert.True(net[2].Role == StateRole.Leader, net.Describe());
        net.TickAll(2);
        Assert.Equal(["committed"], net.Applied[3]);
    }

    [Theory]
    [InlineData(false, 1UL)]
    [InlineData(true, 2UL)]
    public void S5_4_2_Leader_does_not_commit_an_entry_of_a_previous_term_by_counting_replicas_figure_8(bool unsafeCounting, ulong expectedCommit)
    {
        // Figure 8 (c): the new leader (term 3) has entry 2 from term 2, and learns that a majority stores it.
        // It must not commit it by counting (it could still be overwritten, figure 8 (d)); only its own term's entry
        // being committed commits entry 2 indirectly.
        var storage = TestNetwork.MakeStorage([1, 2, 3], [1, 2], term: 2);
        var node = new RaftNode(TestNetwork.Config(1, storage, (_, c) => c with { UnsafeCommitPreviousTermByCounting = unsafeCounting }));
        node.Campaign();
        ElectionTests.Drain(node, storage);
        node.Step(new Message { Type = MessageType.MsgPreVoteResp, From = 2, To = 1, Term = 3 });
        ElectionTests.Drain(node, storage);
        node.Step(new Message { Type = MessageType.MsgVoteResp, From = 2, To = 1, Term = 3 });
        ElectionTests.Drain(node, storage);
        Assert.Equal(StateRole.Leader, node.Role);
        Assert.Equal(3UL, node.LastIndex); // the leader's empty entry of term 3

        node.Step(new Message { Type = MessageType.MsgAppResp, From = 2, To = 1, Term = 3, Index = 2 });
        ElectionTests.Drain(node, storage);
        Assert.Equal(expectedCommit, node.Commit);

        node.Step(new Message { Type = MessageType.MsgAppResp, From = 2, To = 1, Term = 3, Index = 3 });
        ElectionTests.Drain(node, storage);
        Assert.Equal(3UL, node.Commit);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void S5_4_2_Figure_8_on_a_network_old_term_entry_on_a_majority_stays_uncommitted(bool unsafeCounting)
    {
        // One entry per MsgApp so the test can let the old-term entry through while holding back the new one.
        var net = new TestNetwork(5, (_, c) => c with { MaxSizePerMessage = 0, UnsafeCommitPreviousTermByCounting = unsafeCounting });
        net.Campaign(1);
        net.TickAll(1);

        // (a) S1 leads term 2 and stores entry x on S1 and S2 only.
        net.Filter = m => !(m.Type == MessageType.MsgApp && m.From == 1 && m.To is 3 or 4 or 5);
        net.Propose(1, "x");
        var x = net[1].LastIndex;
        Assert.True(net[1].Commit < x);

        // (b) S5 is elected for term 3 by S3, S4, S5 and appends an entry at x's index that nobody else receives.
        net.Heal();
        net.Isolate(1);
        net.Isolate(2);
        net.Filter = m => !(m.Type == MessageType.MsgApp && m.From == 5 && m.Entries.Count > 0);
        net.Send(new Message { Type = MessageType.MsgTimeoutNow, From = 3, To = 5, Term = net[5].Term });
        Assert.True(net[5].Role == StateRole.Leader, net.Describe());
        Assert.Equal(3UL, net.Storage[5].Term(x));

        // (c) S5 is down; S1 is elected for term 4 and replicates x (term 2) to S3: x is now on a majority.
        net.Heal();
        net.Isolate(5);
        net.Rewrite = m => m.Type == MessageType.MsgApp && m.From == 1
            ? m with { Entries = [.. m.Entries.TakeWhile(e => e.Term != 4)] }
            : m;
        net.Send(new Message { Type = MessageType.MsgTimeoutNow, From = 2, To = 1, Term = net[1].Term + 1 });
        Assert.True(net[1].Role == StateRole.Leader && net[1].Term == 4, net.Describe());
        net.TickAll(1);
        Assert.Equal(2UL, net.Storage[3].Term(x));

        if (unsafeCounting)
        {
            // The broken rule commits x here; S5 could still be elected (its log is more up to date than S2-S4's)
            // and overwrite x: figure 8 (d). The simulator's teeth tests rely on this difference.
            Assert.True(net[1].Commit >= x, net.Describe());
            return;
        }

        Assert.True(net[1].Commit < x, "an entry of a previous term was committed by counting replicas\n" + net.Describe());

        // (e) Once an entry of term 4 reaches a majority, it and x before it are committed.
        net.Rewrite = null;
        net.TickAll(2);
        Assert.True(net[1].Commit > x, net.Describe());
        Assert.Equal(4UL, net.Storage[1].Term(net[1].Commit));
        Assert.Contains("x", net.Applied[3]);
    }
}
