using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>Raft thesis: §6.4 ReadIndex, §9.6 pre-vote, check-quorum and leader lease, §3.10 leadership transfer.</summary>
public sealed class ThesisTests
{
    private static TestNetwork ClusterWithLeader(int size = 3)
    {
        var net = new TestNetwork(size);
        net.Campaign(1);
        net.TickAll(1);
        return net;
    }

    private static byte[] Ctx(string s) => Encoding.UTF8.GetBytes(s);

    private static string Str(ReadOnlyMemory<byte> b) => Encoding.UTF8.GetString(b.Span);

    [Fact]
    public void T6_4_ReadIndex_on_the_leader_answers_the_commit_index_after_a_heartbeat_quorum()
    {
        var net = ClusterWithLeader();
        net.Propose(1, "a");
        var before = net.Trace.Count;
        net[1].ReadIndex(Ctx("r1"));
        net.Process();
        var rs = Assert.Single(net.ReadStates[1]);
        Assert.Equal("r1", Str(rs.Context));
        Assert.Equal(net[1].Commit, rs.Index);
        // Leadership was confirmed by a heartbeat round carrying the request context.
        Assert.Contains(net.Trace.Skip(before), m => m.Type == MessageType.MsgHeartbeatResp && Str(m.Context) == "r1");
    }

    [Fact]
    public void T6_4_ReadIndex_is_not_answered_by_a_leader_cut_off_from_the_quorum()
    {
        var net = ClusterWithLeader();
        net.Isolate(1);
        net[1].ReadIndex(Ctx("stale?"));
        net.Process();
        net.TickAll(3);
        Assert.Empty(net.ReadStates[1]);
    }

    [Fact]
    public void T6_4_ReadIndex_waits_until_the_leader_committed_an_entry_of_its_term()
    {
        var net = new TestNetwork(3);
        net.Filter = m => m.Type != MessageType.MsgAppResp; // the new leader's empty entry cannot commit
        net.Campaign(1);
        Assert.Equal(StateRole.Leader, net[1].Role);
        net[1].ReadIndex(Ctx("early"));
        net.Process();
        net.TickAll(1);
        Assert.Empty(net.ReadStates[1]);

        net.Filter = null;
        net.TickAll(1);
        var rs = Assert.Single(net.ReadStates[1]);
        Assert.Equal("early", Str(rs.Context));
        Assert.Equal(net[1].Term, net.Storage[1].Term(rs.Index));
    }

    [Fact]
    public void T6_4_ReadIndex_on_a_follower_is_forwarded_and_answered_to_the_follower()
    {
        var net = ClusterWithLeader();
        net.Propose(1, "a");
        net[2].ReadIndex(Ctx("f1"));
        net.Process();
        var rs = Assert.Single(net.ReadStates[2]);
        Assert.Equal("f1", Str(rs.Context));
        Assert.Equal(net[1].Commit, rs.Index);
        Assert.Empty(net.ReadStates[1]);
    }

    [Fact]
    public void T6_4_ReadIndex_without_a_leader_fails_with_no_leader()
    {
        var net = new TestNetwork(3);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[2].ReadIndex(Ctx("x")));
        Assert.Equal(ProposalDropReason.NoLeader, ex.Reason);
    }

    [Fact]
    public void T6_4_ReadIndex_on_a_single_voter_answers_at_once()
    {
        var net = new TestNetwork(1);
        net.Campaign(1);
        net[1].ReadIndex(Ctx("solo"));
        net.Process();
        Assert.Equal(net[1].Commit, Assert.Single(net.ReadStates[1]).Index);
    }

    [Fact]
    public void T9_6_PreVote_keeps_a_partitioned_node_from_raising_its_term_and_disrupting_the_leader()
    {
        var net = ClusterWithLeader();
        var term = net[1].Term;
        net.Isolate(3);
        net.TickAll(100); // 3 keeps timing out
        Assert.Equal(term, net[3].Term);
        Assert.Equal(StateRole.PreCandidate, net[3].Role);

        net.Heal();
        net.TickAll(5);
        Assert.Equal(1UL, net.Leader());
        Assert.Equal(term, net[1].Term);
        Assert.Equal(1UL, net[3].Leader);
    }

    [Fact]
    public void T9_6_PreVote_does_not_change_the_voters_term_or_vote()
    {
        var (node, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 2);
        node.Step(ElectionTests.Vote(from: 2, term: 3, lastIndex: 5, lastTerm: 2, pre: true));
        var resp = Assert.Single(ElectionTests.Drain(node));
        Assert.Equal(MessageType.MsgPreVoteResp, resp.Type);
        Assert.False(resp.Reject);
        Assert.Equal(3UL, resp.Term);
        Assert.Equal(2UL, node.Term);
        Assert.Equal(0UL, node.Status.HardState.Vote);
    }

    [Fact]
    public void T9_6_Losing_the_pre_vote_leaves_the_term_unchanged()
    {
        var (node, _) = ElectionTests.SingleNode(1, [1, 2, 3], term: 2);
        node.Campaign();
        ElectionTests.Drain(node);
        Assert.Equal(StateRole.PreCandidate, node.Role);
        node.Step(new Message { Type = MessageType.MsgPreVoteResp, From = 2, To = 1, Term = 2, Reject = true });
        node.Step(new Message { Type = MessageType.MsgPreVoteResp, From = 3, To = 1, Term = 2, Reject = true });
        Assert.Equal(StateRole.Follower, node.Role);
        Assert.Equal(2UL, node.Term);
    }

    [Fact]
    public void CheckQuorum_leader_without_an_active_quorum_steps_down_within_an_election_timeout()
    {
        var net = ClusterWithLeader();
        net.Isolate(1);
        for (var i = 0; i < 10; i++)
        {
            net.Tick(1);
        }

        // After at most 2 election timeouts without hearing from a quorum the leader is a follower again.
        net.Tick(1, 10);
        Assert.Equal(StateRole.Follower, net[1].Role);
        Assert.Equal(0UL, net[1].Leader);
    }

    [Fact]
    public void CheckQuorum_leader_with_an_active_quorum_stays_leader()
    {
        var net = ClusterWithLeader(5);
        net.Isolate(4);
        net.Isolate(5);
        net.TickAll(100);
        Assert.Equal(1UL, net.Leader());
    }

    [Fact]
    public void CheckQuorum_follower_that_heard_from_the_leader_recently_ignores_vote_requests_leader_lease()
    {
        var net = ClusterWithLeader();
        var term = net[2].Term;
        net[2].Step(ElectionTests.Vote(from: 3, term: term + 1, lastIndex: 100, lastTerm: term) with { To = 2 });
        net[2].Step(ElectionTests.Vote(from: 3, term: term + 1, lastIndex: 100, lastTerm: term, pre: true) with { To = 2 });
        var msgs = ElectionTests.Drain(net[2]);
        Assert.DoesNotContain(msgs, m => m.Type is MessageType.MsgVoteResp or MessageType.MsgPreVoteResp);
        Assert.Equal(term, net[2].Term);
        Assert.Equal(1UL, net[2].Leader);
    }

    [Fact]
    public void T3_10_Leadership_transfer_to_an_up_to_date_follower_completes_with_TimeoutNow()
    {
        var net = ClusterWithLeader();
        net.Propose(1, "a");
        var term = net[1].Term;
        net[1].TransferLeadership(2);
        net.Process();
        Assert.Equal(2UL, net.Leader());
        Assert.Equal(term + 1, net[2].Term);
        Assert.Equal(2UL, net[1].Leader);
        Assert.Contains(net.Trace, m => m.Type == MessageType.MsgTimeoutNow && m.From == 1 && m.To == 2);
    }

    [Fact]
    public void T3_10_Leadership_transfer_first_catches_the_target_up()
    {
        var net = ClusterWithLeader();
        net.Isolate(3);
        for (var i = 0; i < 5; i++)
        {
            net.Propose(1, $"v{i}");
        }

        net.Heal();
        net[1].TransferLeadership(3);
        net.Process();
        net.TickAll(2);
        Assert.True(net.Leader() == 3, net.Describe());
        var timeoutNow = net.Trace.FindIndex(m => m.Type == MessageType.MsgTimeoutNow);
        var lastAppendTo3 = net.Trace.FindLastIndex(timeoutNow, m => m.Type == MessageType.MsgAppResp && m.From == 3 && !m.Reject);
        Assert.True(lastAppendTo3 >= 0 && lastAppendTo3 < timeoutNow, "TimeoutNow was sent before the target caught up");
        Assert.Equal(5, net.Applied[3].Count);
    }

    [Fact]
    public void T3_10_Proposals_are_refused_while_a_transfer_is_in_progress_and_the_transfer_aborts_after_an_election_timeout()
    {
        var net = ClusterWithLeader();
        net.Isolate(3); // the target cannot catch up
        net.Propose(1, "a");
        net[1].TransferLeadership(3);
        net.Process();
        Assert.Equal(3UL, net[1].Status.LeadTransferee);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].Propose("b"u8.ToArray()));
        Assert.Equal(ProposalDropReason.LeadershipTransferInProgress, ex.Reason);

        net.Tick(1, 10); // one election timeout
        Assert.Equal(0UL, net[1].Status.LeadTransferee);
        Assert.Equal(StateRole.Leader, net[1].Role);
        net.Propose(1, "c");
        Assert.Contains("c", net.Applied[1]);
    }

    [Fact]
    public void T3_10_Transfer_requested_on_a_follower_is_forwarded_to_the_leader()
    {
        var net = ClusterWithLeader();
        net[2].TransferLeadership(2);
        net.Process();
        Assert.Equal(2UL, net.Leader());
    }

    [Fact]
    public void T3_10_Transfer_to_a_learner_is_ignored()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        net.Process();
        net.TickAll(2);
        net[1].TransferLeadership(4);
        net.Process();
        Assert.Equal(0UL, net[1].Status.LeadTransferee);
        Assert.Equal(1UL, net.Leader());
    }

    [Fact]
    public void T6_4_Several_pending_reads_are_answered_by_one_heartbeat_quorum_in_order()
    {
        var net = ClusterWithLeader();
        net.Filter = m => m.Type != MessageType.MsgHeartbeatResp; // hold confirmations back
        net[1].ReadIndex(Ctx("a"));
        net[1].ReadIndex(Ctx("b"));
        net[1].ReadIndex(Ctx("b")); // duplicate context: one request
        net.Process();
        Assert.Empty(net.ReadStates[1]);

        net.Filter = null;
        net.Tick(1); // the next heartbeat carries the newest context; acknowledging it confirms all earlier ones
        Assert.Equal(["a", "b"], net.ReadStates[1].Select(r => Str(r.Context)));
        Assert.All(net.ReadStates[1], r => Assert.Equal(net[1].Commit, r.Index));
    }

    [Fact]
    public void T3_10_Transfer_is_aborted_when_the_target_is_removed()
    {
        var net = ClusterWithLeader(5);
        net.Isolate(5); // cannot catch up, so the transfer stays pending
        net.Propose(1, "a");
        net[1].TransferLeadership(5);
        net.Process();
        Assert.Equal(5UL, net[1].Status.LeadTransferee);
        // The removal of 5 was committed earlier (proposals are refused during a transfer); the host applies it now.
        net[1].ApplyConfChange(new ConfChange(ConfChangeType.RemoveNode, 5));
        Assert.Equal(0UL, net[1].Status.LeadTransferee);
        Assert.Equal(StateRole.Leader, net[1].Role);
    }

    [Fact]
    public void Unreachable_report_does_not_disturb_a_snapshot_in_flight()
    {
        var net = ClusterWithLeader();
        net.Isolate(3);
        net.Propose(1, "a");
        var applied = net[1].Status.Applied;
        net.Storage[1].CreateSnapshot(applied, net[1].ConfState, Encoding.UTF8.GetBytes(string.Join('|', net.Applied[1])));
        net.Storage[1].Compact(applied);
        net.Heal();
        net.ReportSnapshots = false;
        net.Filter = m => m.Type != MessageType.MsgSnap;
        net.TickAll(1);
        Assert.Equal(ProgressState.Snapshot, net[1].Status.Progress[3].State);
        net[1].ReportUnreachable(3);
        Assert.Equal(ProgressState.Snapshot, net[1].Status.Progress[3].State);
    }
}
