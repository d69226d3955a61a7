using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>Log compaction and snapshot install (§7), restarts from storage, and live timing changes.</summary>
public sealed class SnapshotAndLifecycleTests
{
    private static TestNetwork ClusterWithLeader(int size = 3)
    {
        var net = new TestNetwork(size);
        net.Campaign(1);
        net.TickAll(1);
        return net;
    }

    /// <summary>Compacts node 1's log at its applied index, with the applied values as snapshot data.</summary>
    private static void CompactLeader(TestNetwork net)
    {
        var applied = net[1].Status.Applied;
        var data = Encoding.UTF8.GetBytes(string.Join('|', net.Applied[1]));
        net.Storage[1].CreateSnapshot(applied, net[1].ConfState, data);
        net.Storage[1].Compact(applied);
    }

    [Fact]
    public void S7_Leader_sends_a_snapshot_to_a_follower_behind_its_first_index_and_the_follower_installs_it()
    {
        var net = ClusterWithLeader();
        net.Isolate(3);
        for (var i = 0; i < 10; i++)
        {
            net.Propose(1, $"v{i}");
        }

        CompactLeader(net);
        Assert.True(net.Storage[1].FirstIndex() > net.Storage[3].LastIndex() + 1);
        net.Heal();
        net.TickAll(3);

        Assert.Contains(net.Trace, m => m.Type == MessageType.MsgSnap && m.To == 3);
        Assert.Equal(net.Storage[1].Snapshot().Metadata.Index, net.Storage[3].Snapshot().Metadata.Index);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"v{i}"), net.Applied[3]);
        Assert.Equal(ProgressState.Replicate, net[1].Status.Progress[3].State);

        // Replication continues normally after the snapshot.
        net.Propose(1, "after");
        net.TickAll(1);
        Assert.Equal("after", net.Applied[3][^1]);
        Assert.Equal(net[1].ConfState, net.Storage[3].InitialState().ConfState);
    }

    [Fact]
    public void S7_Failed_snapshot_is_retried_after_ReportSnapshot_failure()
    {
        var net = ClusterWithLeader();
        net.Isolate(3);
        net.Propose(1, "a");
        CompactLeader(net);
        net.Heal();
        net.ReportSnapshots = false;
        net.Filter = m => m.Type != MessageType.MsgSnap; // the transport loses the snapshot
        net.TickAll(1);
        Assert.Equal(ProgressState.Snapshot, net[1].Status.Progress[3].State);
        net.TickAll(20);
        Assert.Equal(ProgressState.Snapshot, net[1].Status.Progress[3].State); // nothing else goes until reported
        Assert.Empty(net.Applied[3]);

        net[1].ReportSnapshot(3, SnapshotStatus.Failure);
        Assert.Equal(ProgressState.Probe, net[1].Status.Progress[3].State);
        Assert.True(net[1].Status.Progress[3].Paused, "probing must wait for a heartbeat response");
        net.Filter = null;
        net.TickAll(3);
        Assert.Equal(["a"], net.Applied[3]);
    }

    [Fact]
    public void S7_Follower_ignores_a_snapshot_older_than_its_commit_index()
    {
        var net = ClusterWithLeader();
        net.Propose(1, "a");
        net.TickAll(1);
        var commit = net[2].Commit;
        net[2].Step(new Message
        {
            Type = MessageType.MsgSnap,
            From = 1,
            To = 2,
            Term = net[1].Term,
            Snapshot = new Snapshot(new SnapshotMetadata(commit - 1, 1, new ConfState([1, 2, 3])), default),
        });
        var rd = net[2].GetReady();
        Assert.Null(rd.Snapshot);
        Assert.Equal(commit, Assert.Single(rd.MessagesAfterPersist).Index);
        net[2].Advance(rd);
    }

    [Fact]
    public void Restart_restores_term_vote_and_log_and_forgets_what_was_not_persisted()
    {
        var net = ClusterWithLeader();
        net.Propose(1, "a");
        net.TickAll(1);
        var term = net[2].Term;
        var hs = net.Storage[2].HardState;

        // Node 2 receives an entry but "crashes" before persisting it: Ready taken, never persisted.
        net.Filter = m => !(m.To == 2 && m.Type == MessageType.MsgApp);
        net.Propose(1, "b");
        var app = net.Trace.Last(m => m.To == 2 && m.Type == MessageType.MsgApp && m.Entries.Count > 0);
        net[2].Step(app);
        var lost = net[2].GetReady();
        Assert.NotEmpty(lost.Entries);
        net.Restart(2, (_, c) => c with { Applied = 0 });
        Assert.True(net.Storage[2].LastIndex() < lost.Entries[0].Index);
        net.Filter = null;
        Assert.Equal(term, net[2].Term);
        Assert.Equal(hs.Vote, net[2].Status.HardState.Vote);
        Assert.Equal(StateRole.Follower, net[2].Role);

        net.TickAll(2);
        Assert.Equal(net.LogOf(1), net.LogOf(2));
        Assert.Equal(["a", "b"], net.Applied[2]); // re-applied from the log after restart (Applied = 0)
    }

    [Fact]
    public void Bootstrap_twice_is_refused()
    {
        var net = new TestNetwork(1);
        var ex = Assert.Throws<InvalidOperationException>(() => net[1].Bootstrap([1]));
        Assert.Contains("not bootstrap again", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetTiming_changes_the_election_timeout_on_a_live_follower()
    {
        var net = ClusterWithLeader();
        net[3].SetTiming(heartbeatTicks: 2, electionTicks: 30);
        net.Isolate(3);
        var ticks = 0;
        while (net[3].Role == StateRole.Follower)
        {
            net.Tick(3);
            ticks++;
            Assert.True(ticks < 100);
        }

        Assert.InRange(ticks, 30, 59);
        Assert.Equal(30, net[3].Status.ElectionTicks);
    }

    [Fact]
    public void SetTiming_changes_the_heartbeat_interval_on_a_live_leader()
    {
        var net = ClusterWithLeader();
        net[1].SetTiming(heartbeatTicks: 3, electionTicks: 30);
        var before = net.Trace.Count;
        net.Tick(1, 9);
        var heartbeats = net.Trace.Skip(before).Count(m => m.Type == MessageType.MsgHeartbeat && m.To == 2);
        Assert.Equal(3, heartbeats);
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(5, 5)]
    [InlineData(5, 3)]
    public void SetTiming_refuses_an_election_timeout_not_above_the_heartbeat(int heartbeat, int election)
    {
        var net = new TestNetwork(1);
        var ex = Assert.Throws<ArgumentException>(() => net[1].SetTiming(heartbeat, election));
        Assert.Contains("ticks", ex.Message, StringComparison.Ordinal);
        Assert.Equal(10, net[1].Status.ElectionTicks);
    }

    [Fact]
    public void Step_refuses_local_message_kinds()
    {
        var net = new TestNetwork(1);
        Assert.Throws<ArgumentException>(() => net[1].Step(new Message { Type = MessageType.MsgHup }));
    }
}
