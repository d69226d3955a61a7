using RaftKv.Linearizability;

namespace RaftKv.Chaos.Tests;

/// <summary>The suite's own checks find what they are meant to find (a check that cannot fail proves nothing).</summary>
public sealed class CheckTests
{
    private static Operation<KvInput, KvOutput> Op(int client, KvInput input, KvOutput? output, long call, long? ret) => new(client, input, output, call, ret);

    [Fact]
    public void A_final_read_of_a_value_older_than_an_acknowledged_write_is_a_lost_write()
    {
        var history = new[]
        {
            Op(0, new KvPut("k", "a"), new KvPutResult(), 1, 2),
            Op(1, new KvPut("k", "b"), new KvPutResult(), 3, 4),
            Op(-1, new KvGet("k"), new KvGetResult("a"), 10, 11),
        };

        var lost = Runner.LostWrites(history).ToList();

        Assert.Single(lost);
        Assert.Contains("put k=b", lost[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Overlapping_writes_and_an_absent_key_without_acknowledged_writes_are_not_lost()
    {
        var history = new[]
        {
            Op(0, new KvPut("k", "a"), new KvPutResult(), 1, 5),
            Op(1, new KvPut("k", "b"), new KvPutResult(), 2, 4),
            Op(2, new KvPut("j", "x"), null, 2, null),
            Op(-1, new KvGet("k"), new KvGetResult("a"), 10, 11),
            Op(-1, new KvGet("j"), new KvGetResult(null), 10, 11),
        };

        Assert.Empty(Runner.LostWrites(history));
    }

    [Fact]
    public void An_acknowledged_write_missing_from_the_watch_and_a_revision_gap_are_reported()
    {
        var history = new[]
        {
            Op(0, new KvPut("k", "a"), new KvPutResult(), 1, 2),
            Op(0, new KvPut("k", "b"), new KvPutResult(), 3, 4),
            Op(0, new KvPut("k", "c"), new KvPutResult(), 5, 6),
        };
        WatchedEvent[] events = [new(2, "k", "a", false, null, 0), new(4, "k", "c", false, "a", 2)];

        var problems = Runner.CheckWatchAgainstHistory(events, history, onlyWorkloadWrites: true).ToList();

        Assert.Contains(problems, p => p.Contains("never seen by the watch", StringComparison.Ordinal) && p.Contains("put k=b", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("skipped from revision 2 to 4", StringComparison.Ordinal));
    }

    [Fact]
    public void A_stale_read_makes_the_history_not_linearizable()
    {
        var history = new[]
        {
            Op(0, new KvPut("k", "a"), new KvPutResult(), 1, 2),
            Op(1, new KvPut("k", "b"), new KvPutResult(), 3, 4),
            Op(2, new KvGet("k"), new KvGetResult("a"), 5, 6),
        };

        Assert.Equal(CheckOutcome.Illegal, Runner.CheckLinearizable(history).Outcome);
    }
}
