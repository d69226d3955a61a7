using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>
/// A proposal a follower forwards and the receiver drops (a leader handing over, a former leader that knows none now, the
/// uncommitted-size limit) comes back to the proposer at once as a DroppedProposal, instead of vanishing until its
/// client times out. It was never appended anywhere.
/// </summary>
public sealed class ForwardedProposalTests
{
    public static TheoryData<string> Cases => ["leader handing over", "former leader without a leader", "uncommitted-size limit"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_forwarded_proposal_the_receiver_drops_is_reported_back_to_the_proposer_and_never_appended(string scenario)
    {
        var (net, expected) = Arrange(scenario);
        var proposerLeader = net[2].Leader;
        var proposerTerm = net[2].Term;

        net.Propose(2, "x");

        var dropped = Assert.Single(net.Dropped[2]);
        Assert.True(dropped.By == 1 && dropped.Reason == expected, $"{scenario}: expected dropped by 1 for {expected}, got {dropped}\n{net.Describe()}");
        Assert.Equal(["x"], dropped.Entries.Select(e => Encoding.UTF8.GetString(e.Data.Span)));
        // The refusal is term-less: the proposer keeps its leader and term.
        Assert.Equal((proposerLeader, proposerTerm), (net[2].Leader, net[2].Term));

        // Nothing holds the entry, and after healing and a fresh election round nobody ever applies it.
        net.Heal();
        net.TickAll(40);
        Assert.All(net.Nodes.Keys, id => Assert.DoesNotContain("x", LogData(net, id)));
        Assert.All(net.Nodes.Keys, id => Assert.DoesNotContain("x", net.Applied[id]));
    }

    [Fact]
    public void A_forwarded_proposal_the_leader_accepts_is_not_reported_dropped()
    {
        var net = new TestNetwork(3);
        net.Campaign(1);
        net.TickAll(1);

        net.Propose(2, "y");

        Assert.Empty(net.Dropped[2]);
        Assert.All(net.Nodes.Keys, id => Assert.Contains("y", net.Applied[id]));
    }

    private static (TestNetwork Net, ProposalDropReason Expected) Arrange(string scenario)
    {
        switch (scenario)
        {
            case "leader handing over":
                {
                    var net = new TestNetwork(3);
                    net.Campaign(1);
                    net.TickAll(1);
                    net.Isolate(3); // the transfer target cannot catch up, so the hand-over stays in progress
                    net[1].TransferLeadership(3);
                    net.Process();
                    Assert.Equal(3UL, net[1].Status.LeadTransferee);
                    return (net, ProposalDropReason.LeadershipTransferInProgress);
                }

            case "former leader without a leader":
                {
                    var net = new TestNetwork(3);
                    net.Campaign(1);
                    net.TickAll(1);
                    net.Isolate(1);
                    net.Tick(1, 30); // check-quorum: the cut-off leader steps down; 2 and 3 have not noticed yet
                    Assert.True(net[1].Role != StateRole.Leader && net[1].Leader == 0 && net[2].Leader == 1, net.Describe());
                    net.Heal();
                    return (net, ProposalDropReason.NoLeader);
                }

            case "uncommitted-size limit":
                {
                    var net = new TestNetwork(3, (_, c) => c with { MaxUncommittedEntriesSize = 64 });
                    net.Campaign(1);
                    net.TickAll(1);
                    net.Filter = m => m.Type != MessageType.MsgAppResp; // nothing commits any more
                    net.Propose(1, new string('a', 100)); // admitted: nothing was uncommitted
                    return (net, ProposalDropReason.UncommittedSizeLimit);
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(scenario), scenario, "unknown scenario");
        }
    }

    private static List<string> LogData(TestNetwork net, ulong id)
    {
        var storage = net.Storage[id];
        return storage.LastIndex() < storage.FirstIndex()
            ? []
            : [.. storage.Entries(storage.FirstIndex(), storage.LastIndex() + 1, ulong.MaxValue).Select(e => Encoding.UTF8.GetString(e.Data.Span))];
    }
}
