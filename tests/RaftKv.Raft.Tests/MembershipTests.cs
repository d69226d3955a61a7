using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>Raft paper §6 and thesis §4: single-server membership changes, learners, removal of the leader.</summary>
public sealed class MembershipTests
{
    private static TestNetwork ClusterWithLeader(int size = 3)
    {
        var net = new TestNetwork(size);
        net.Campaign(1);
        net.TickAll(1); // the leader's empty entry is committed and applied everywhere
        return net;
    }

    [Fact]
    public void T4_Learner_receives_the_log_but_neither_votes_nor_counts_for_commitment()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        net.Process();
        net.TickAll(3);
        Assert.Equal(new ConfState([1, 2, 3], [4]), net[1].ConfState);
        net.Propose(1, "a");
        net.TickAll(1);
        Assert.Contains("a", net.Applied[4]);

        // Commitment ignores the learner: with 2 and 3 down, 1 + learner 4 do not commit.
        net.Isolate(2);
        net.Isolate(3);
        var commit = net[1].Commit;
        net.Propose(1, "b");
        Assert.Equal(commit, net[1].Commit);

        // A learner never campaigns, and its vote does not count.
        net.Heal();
        net.Isolate(1);
        net.Tick(4, 100);
        Assert.Equal(StateRole.Follower, net[4].Role);
        Assert.DoesNotContain(net.Trace, m => m.From == 4 && m.Type is MessageType.MsgPreVote or MessageType.MsgVote);
    }

    [Fact]
    public void T4_2_Learner_is_promoted_to_voter_after_catching_up_and_then_counts_for_quorum()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        net.Process();
        net.TickAll(2);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddNode, 4));
        net.Process();
        net.TickAll(2);
        Assert.Equal(new ConfState([1, 2, 3, 4]), net[1].ConfState);
        Assert.Equal(new ConfState([1, 2, 3, 4]), net[4].ConfState);

        // Quorum of 4 voters is 3: leader + 4 + 2 commit with 3 down; leader + 4 alone do not.
        net.Isolate(3);
        net.Propose(1, "with-3-of-4");
        Assert.Contains("with-3-of-4", net.Applied[4]);
        net.Isolate(2);
        var commit = net[1].Commit;
        net.Propose(1, "with-2-of-4");
        Assert.Equal(commit, net[1].Commit);
    }

    [Fact]
    public void T4_1_Only_one_membership_change_at_a_time()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net.Add(5);
        net.Isolate(2);
        net.Isolate(3); // the first change cannot commit
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 5)));
        Assert.Equal(ProposalDropReason.ConfChangePending, ex.Reason);
        Assert.Contains("pending", ex.Message, StringComparison.Ordinal);

        net.Heal();
        net.TickAll(2);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 5)); // accepted once the first is applied
        net.Process();
        net.TickAll(2);
        Assert.Equal(new ConfState([1, 2, 3], [4, 5]), net[1].ConfState);
    }

    [Fact]
    public void T4_1_No_membership_change_before_the_new_leader_commits_an_entry_of_its_term()
    {
        var net = ClusterWithLeader();
        net.Isolate(2);
        net.Isolate(3);
        net.TickAll(30); // 1 steps down (check-quorum); no one can win
        net.Heal();
        net.Isolate(3);
        // 1 becomes leader again but its empty entry is not committed yet: hold the acknowledgements back.
        net.Filter = m => m.Type != MessageType.MsgAppResp;
        net.Campaign(1);
        Assert.Equal(StateRole.Leader, net[1].Role);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4)));
        Assert.Equal(ProposalDropReason.ConfChangePending, ex.Reason);
        net.Filter = null;
        net.TickAll(2);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
    }

    [Fact]
    public void T4_Forwarded_conf_change_while_one_is_pending_becomes_an_empty_entry()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net.Add(5);
        net.Filter = m => m.Type != MessageType.MsgAppResp; // keep the first change from committing
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4));
        net.Process();
        net[2].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 5)); // forwarded to 1
        net.Process();
        net.Filter = null;
        net.TickAll(3);
        Assert.Equal(new ConfState([1, 2, 3], [4]), net[1].ConfState);
        var s = net.Storage[1];
        var last = s.Entries(s.LastIndex(), s.LastIndex() + 1, ulong.MaxValue)[0];
        Assert.Equal(EntryType.Normal, last.Type);
        Assert.True(last.Data.IsEmpty);
    }

    [Theory]
    [InlineData(ConfChangeType.AddNode, 2UL, "already a voter")]
    [InlineData(ConfChangeType.AddLearnerNode, 2UL, "is a voter")]
    [InlineData(ConfChangeType.RemoveNode, 9UL, "not a member")]
    public void T4_Invalid_membership_change_is_refused_with_a_reason(ConfChangeType type, ulong node, string reason)
    {
        var net = ClusterWithLeader();
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].ProposeConfChange(new ConfChange(type, node)));
        Assert.Equal(ProposalDropReason.InvalidConfChange, ex.Reason);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void T4_Last_voter_cannot_be_removed()
    {
        var net = new TestNetwork(1);
        net.Campaign(1);
        var ex = Assert.Throws<ProposalDroppedException>(() => net[1].ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 1)));
        Assert.Contains("last voter", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void S6_Removed_leader_steps_down_and_the_rest_elect_a_leader()
    {
        var net = ClusterWithLeader();
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 1));
        net.Process();
        net.TickAll(1);
        Assert.NotEqual(StateRole.Leader, net[1].Role);
        Assert.Equal(new ConfState([2, 3]), net[2].ConfState);
        net.TickAll(40);
        var leader = net.Leader();
        Assert.True(leader is 2 or 3, net.Describe());
        net.Propose(leader, "after-removal");
        Assert.Contains("after-removal", net.Applied[leader is 2 ? 3UL : 2UL]);
        // The removed node does not campaign.
        Assert.Equal(StateRole.Follower, net[1].Role);
    }

    [Fact]
    public void S6_Removing_a_follower_shrinks_the_quorum()
    {
        var net = ClusterWithLeader(5);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 5));
        net.Process();
        net.TickAll(1);
        Assert.Equal(new ConfState([1, 2, 3, 4]), net[1].ConfState);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 4));
        net.Process();
        net.TickAll(1);
        // 3 voters now: 1 + 2 commit without 3, 4, 5.
        net.Isolate(3);
        net.Isolate(4);
        net.Isolate(5);
        net.Propose(1, "two-of-three");
        Assert.Contains("two-of-three", net.Applied[2]);
    }

    [Fact]
    public void ConfChange_entries_carry_their_context_to_every_member()
    {
        var net = ClusterWithLeader();
        net.Add(4);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.AddLearnerNode, 4, Encoding.UTF8.GetBytes("http://n4:2380")));
        net.Process();
        net.TickAll(1);
        var s = net.Storage[2];
        var entries = s.Entries(s.FirstIndex(), s.LastIndex() + 1, ulong.MaxValue);
        var cc = ConfChange.Decode(entries.Last(e => e.Type == EntryType.ConfChange).Data);
        Assert.Equal("http://n4:2380", Encoding.UTF8.GetString(cc.Context.Span));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    public void S6_Leader_removing_itself_from_two_voters_steps_down_only_once_the_survivor_knows_the_commit(int lostCommitMessages)
    {
        var net = new TestNetwork(2);
        net.Campaign(1);
        net.TickAll(1);
        net[1].ProposeConfChange(new ConfChange(ConfChangeType.RemoveNode, 1));
        var removal = net[1].LastIndex;

        // The first messages from 1 that carry the commit of the removal are lost.
        var lost = 0;
        net.Filter = m => !(m.From == 1 && m.Commit >= removal && lost++ < lostCommitMessages);
        net.Process();
        for (var i = 0; i < 10 && net[1].Role == StateRole.Leader; i++)
        {
            net.TickAll(1);
        }

        Assert.True(net[1].Role != StateRole.Leader, "the removed leader never stepped down\n" + net.Describe());
        Assert.True(net[2].Commit >= removal, "the removed leader stepped down before the survivor learned the commit\n" + net.Describe());

        // 1 shuts down as a removed member does; 2 carries on alone.
        net.Isolate(1);
        net.Tick(2, 40);
        Assert.Equal(StateRole.Leader, net[2].Role);
        Assert.Equal(new ConfState([2]), net[2].ConfState);
        net.Propose(2, "alone");
        Assert.Contains("alone", net.Applied[2]);
    }
}
