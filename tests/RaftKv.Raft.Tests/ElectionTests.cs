namespace RaftKv.Raft.Tests;

/// <summary>Raft paper §5.2 (leader election) and §5.1 (terms).</summary>
public sealed class ElectionTests
{
    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void S5_2_Candidate_with_votes_from_a_majority_becomes_leader_and_others_follow(int size)
    {
        var net = new TestNetwork(size);
        net.Campaign(1);

        Assert.True(net[1].Role == StateRole.Leader, net.Describe());
        foreach (var n in net.Nodes.Values.Where(n => n.Id != 1))
        {
            Assert.Equal(StateRole.Follower, n.Role);
            Assert.Equal(1UL, n.Leader);
            Assert.Equal(net[1].Term, n.Term);
        }
    }

    [Theory]
    // size, nodes cut off from the candidate, expected role of the candidate
    [InlineData(3, new ulong[] { 2 }, StateRole.Leader)]
    [InlineData(3, new ulong[] { 2, 3 }, StateRole.PreCandidate)]
    [InlineData(5, new ulong[] { 2, 3 }, StateRole.Leader)]
    [InlineData(5, new ulong[] { 2, 3, 4 }, StateRole.PreCandidate)]
    public void S5_2_Candidate_needs_a_majority_of_the_voters(int size, ulong[] unreachable, StateRole expected)
    {
        var net = new TestNetwork(size);
        foreach (var id in unreachable)
        {
            net.Cut(1, id);
        }

        net.Campaign(1);
        Assert.True(expected == net[1].Role, net.Describe());
    }

    [Theory]
    [InlineData(5)]
    [InlineData(10)]
    [InlineData(20)]
    public void S5_2_Election_timeout_is_randomized_in_E_to_2E_ticks(int electionTicks)
    {
        var seen = new HashSet<int>();
        for (var seed = 0; seed < 200; seed++)
        {
            var storage = new MemoryRaftLogStorage();
            var node = new RaftNode(TestNetwork.Config(1, storage, (_, c) => c with { ElectionTicks = electionTicks, Random = new Random(seed) }));
            node.Bootstrap([1, 2, 3]);
            Drain(node);
            var ticks = 0;
            while (node.Role == StateRole.Follower)
            {
                node.Tick();
                ticks++;
                Assert.True(ticks < 10 * electionTicks, "no election started");
            }

            Assert.InRange(ticks, electionTicks, (2 * electionTicks) - 1);
            seen.Add(ticks);
        }

        // Randomized: many distinct timeouts across seeds, so split votes resolve.
        Assert.True(seen.Count >= Math.Min(electionTicks, 5), $"only saw timeouts {string.Join(',', seen)}");
    }

    [Fact]
    public void S5_2_Follower_with_a_live_leader_never_starts_an_election()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        var term = net[1].Term;
        net.TickAll(100);
        Assert.Equal(1UL, net.Leader());
        Assert.Equal(term, net[2].Term);
        Assert.Equal(term, net[3].Term);
    }

    [Fact]
    public void S5_2_Cluster_elects_a_new_leader_when_the_leader_fails()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.Isolate(1);
        net.TickAll(40);
        var leader = net.Leader();
        Assert.True(leader is 2 or 3, net.Describe());
        Assert.True(net[leader].Term > net[1].Term || net[1].Role != StateRole.Leader, net.Describe());
    }

    [Fact]
    public void S5_2_Voter_grants_at_most_one_vote_per_term()
    {
        var (node, _) = SingleNode(1, [1, 2, 3]);
        node.Step(Vote(from: 2, term: 5, lastIndex: 3, lastTerm: 1));
        node.Step(Vote(from: 3, term: 5, lastIndex: 3, lastTerm: 1));
        node.Step(Vote(from: 2, term: 5, lastIndex: 3, lastTerm: 1)); // duplicate request from the same candidate: granted again

        var resps = Drain(node).Where(m => m.Type == MessageType.MsgVoteResp).Select(m => $"{m.To}:{(m.Reject ? "no" : "yes")}");
        Assert.Equal(["2:yes", "3:no", "2:yes"], resps);
        Assert.Equal(2UL, node.Status.HardState.Vote);
    }

    [Fact]
    public void S5_1_Node_seeing_a_higher_term_adopts_it_and_a_leader_steps_down()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        var term = net[1].Term;
        net[1].Step(new Message { Type = MessageType.MsgAppResp, From = 2, To = 1, Term = term + 5, Index = 0 });
        Assert.Equal(StateRole.Follower, net[1].Role);
        Assert.Equal(term + 5, net[1].Term);
        Assert.Equal(0UL, net[1].Leader);
    }

    [Fact]
    public void S5_1_Stale_leader_is_answered_with_the_current_term_so_it_steps_down()
    {
        var (node, _) = SingleNode(1, [1, 2, 3], term: 7);
        node.Step(new Message { Type = MessageType.MsgApp, From = 2, To = 1, Term = 3, Index = 3, LogTerm = 1 });
        var resp = Assert.Single(Drain(node));
        Assert.Equal(MessageType.MsgAppResp, resp.Type);
        Assert.Equal(7UL, resp.Term);
        Assert.Equal(7UL, node.Term);
    }

    [Fact]
    public void S5_2_Candidate_that_sees_a_leader_of_its_term_becomes_follower()
    {
        var net = new TestNetwork(3);
        net.Isolate(1);
        net.Campaign(1); // pre-vote goes nowhere
        Assert.Equal(StateRole.PreCandidate, net[1].Role);
        net.Heal();
        net.Campaign(2);
        Assert.Equal(StateRole.Follower, net[1].Role);
        Assert.Equal(2UL, net[1].Leader);
    }

    internal static Message Vote(ulong from, ulong term, ulong lastIndex, ulong lastTerm, bool pre = false) => new()
    {
        Type = pre ? MessageType.MsgPreVote : MessageType.MsgVote,
        From = from,
        To = 1,
        Term = term,
        Index = lastIndex,
        LogTerm = lastTerm,
    };

    /// <summary>A node whose storage holds <paramref name="logTerms"/> (terms of entries 1..n; default: the bootstrap entries).</summary>
    internal static (RaftNode Node, MemoryRaftLogStorage Storage) SingleNode(
        ulong id, ulong[] voters, ulong term = 1, ulong[]? logTerms = null, ulong commit = 0, Func<ulong, RaftConfig, RaftConfig>? configure = null)
    {
        var storage = TestNetwork.MakeStorage(voters, logTerms ?? [1, 1], term, commit);
        var node = new RaftNode(TestNetwork.Config(id, storage, configure));
        Drain(node);
        return (node, storage);
    }

    /// <summary>Handles all Readies (persisting into nothing) and returns the messages they carried.</summary>
    internal static List<Message> Drain(RaftNode node, MemoryRaftLogStorage? storage = null)
    {
        var msgs = new List<Message>();
        while (node.HasReady)
        {
            var rd = node.GetReady();
            if (storage is not null)
            {
                if (rd.Snapshot is { } s)
                {
                    storage.ApplySnapshot(s);
                }

                storage.Append(rd.Entries);
                if (rd.HardState is { } hs)
                {
                    storage.SetHardState(hs);
                }
            }

            msgs.AddRange(rd.Messages);
            msgs.AddRange(rd.MessagesAfterPersist);
            node.Advance(rd);
        }

        return msgs;
    }
}
