using RaftKv.Linearizability;
using RaftKv.Raft;

namespace RaftKv.Simulator.Tests;

/// <summary>Each safety check on its own, fed a hand-made violation.</summary>
public sealed class SafetyMonitorTests
{
    private static Entry Put(ulong index, ulong term, string value) =>
        Entry.Normal(index, term, new KvCommand((long)index, new KvPut("k", value)).Encode());

    private static SimNode NodeWithLog(ulong id, params Entry[] entries)
    {
        var node = new SimNode(id);
        node.Disk.Append(entries);
        return node;
    }

    [Fact]
    public void Log_matching_accepts_logs_that_agree_up_to_their_last_common_entry()
    {
        var a = NodeWithLog(1, Put(1, 1, "x"), Put(2, 1, "y"), Put(3, 2, "z"));
        var b = NodeWithLog(2, Put(1, 1, "x"), Put(2, 1, "y"), Put(3, 3, "other"));

        SafetyMonitor.CheckLogMatching([a, b]); // they differ only after the last (index, term) they share
    }

    [Fact]
    public void Log_matching_rejects_logs_that_share_an_entry_but_differ_before_it()
    {
        var a = NodeWithLog(1, Put(1, 1, "x"), Put(2, 1, "y"), Put(3, 2, "z"));
        var b = NodeWithLog(2, Put(1, 1, "x"), Put(2, 1, "DIFFERENT"), Put(3, 2, "z"));

        var e = Assert.Throws<InvariantViolationException>(() => SafetyMonitor.CheckLogMatching([a, b]));

        Assert.StartsWith("log matching: n1 and n2 agree on index 3 term 2, but differ at index 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void State_machine_safety_rejects_a_different_entry_applied_at_the_same_index()
    {
        var monitor = new SafetyMonitor();
        monitor.ObserveApply(new SimNode(1), Put(5, 2, "x"));
        monitor.ObserveApply(new SimNode(2), Put(5, 2, "x"));

        var e = Assert.Throws<InvariantViolationException>(() => monitor.ObserveApply(new SimNode(3), Put(5, 3, "y")));

        Assert.StartsWith("state machine safety: n3 applied [5 t3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Leader_completeness_rejects_a_leader_missing_an_entry_committed_in_an_earlier_term()
    {
        var monitor = new SafetyMonitor();
        var committed = Put(3, 2, "committed");
        monitor.ObserveApply(new SimNode(1), Put(1, 1, "a"));
        monitor.ObserveApply(new SimNode(1), Put(2, 1, "b"));
        monitor.ObserveApply(new SimNode(1), committed);
        monitor.ObserveHardState(new HardState(Term: 2, Vote: 1, Commit: 3));

        var complete = NodeWithLog(2, Put(1, 1, "a"), Put(2, 1, "b"), committed, Put(4, 3, "new"));
        var overwritten = NodeWithLog(3, Put(1, 1, "a"), Put(2, 1, "b"), Put(3, 3, "rival"));
        var shortLog = NodeWithLog(4, Put(1, 1, "a"), Put(2, 1, "b"));

        monitor.CheckLeaderCompleteness(complete, term: 3);
        monitor.CheckLeaderCompleteness(shortLog, term: 2); // commit 3 happened in term 2: no claim on a term-2 leader
        var e1 = Assert.Throws<InvariantViolationException>(() => monitor.CheckLeaderCompleteness(overwritten, term: 3));
        var e2 = Assert.Throws<InvariantViolationException>(() => monitor.CheckLeaderCompleteness(shortLog, term: 3));

        Assert.StartsWith("leader completeness: n3 leads term 3 with an entry of term 3 at index 3", e1.Message, StringComparison.Ordinal);
        Assert.StartsWith("leader completeness: n4 leads term 3 with a log ending at 2", e2.Message, StringComparison.Ordinal);
    }
}
