using RaftKv.Raft;
using RaftKv.Server.Node;

namespace RaftKv.Server.Tests.Node;

public sealed class LeadershipHandoverTests
{
    private const ulong Self = 1;

    private static ProgressStatus Voter(ulong match, bool active = true) =>
        new(match, match + 1, ProgressState.Replicate, IsLearner: false, RecentActive: active, Paused: false, InflightMessages: 0, PendingSnapshot: 0);

    private static RaftStatus Status(StateRole role, ulong leader, Dictionary<ulong, ProgressStatus> progress) =>
        new(Self, default, new SoftState(leader, role), Applied: 10, LastIndex: 10, new ConfState(progress.Keys), LeadTransferee: 0,
            HeartbeatTicks: 1, ElectionTicks: 10, progress);

    public static TheoryData<string, StateRole, Dictionary<ulong, ProgressStatus>, ulong[], ulong> Cases => new()
    {
        { "the voter whose log matches furthest", StateRole.Leader, new() { [Self] = Voter(10), [2] = Voter(8), [3] = Voter(10) }, [2, 3], 3 },
        { "a tie goes to the lowest id", StateRole.Leader, new() { [Self] = Voter(10), [2] = Voter(10), [3] = Voter(10) }, [2, 3], 2 },
        { "not a learner, however far it is", StateRole.Leader,
            new() { [Self] = Voter(10), [2] = Voter(5), [3] = new(10, 11, ProgressState.Replicate, true, true, false, 0, 0) }, [2, 3], 2 },
        { "not a voter the leader has not heard from", StateRole.Leader, new() { [Self] = Voter(10), [2] = Voter(5), [3] = Voter(10, active: false) }, [2, 3], 2 },
        { "not a voter without a peer connection", StateRole.Leader, new() { [Self] = Voter(10), [2] = Voter(5), [3] = Voter(10) }, [2], 2 },
        { "nobody when no voter qualifies", StateRole.Leader, new() { [Self] = Voter(10), [2] = Voter(10, active: false) }, [2], 0 },
        { "nobody when alone", StateRole.Leader, new() { [Self] = Voter(10) }, [], 0 },
        { "nobody when this member is a follower", StateRole.Follower, new() { [Self] = Voter(10), [2] = Voter(10) }, [2], 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_stopping_leader_hands_over_to(string rule, StateRole role, Dictionary<ulong, ProgressStatus> progress, ulong[] connected, ulong expected)
    {
        var leader = role == StateRole.Leader ? Self : 2;
        var chosen = LeadershipHandover.ChooseTransferee(Status(role, leader, progress), Self, connected.ToHashSet());
        Assert.True(expected == chosen, $"{rule}: expected {expected}, chose {chosen}");
    }
}
