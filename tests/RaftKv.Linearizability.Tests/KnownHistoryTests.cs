namespace RaftKv.Linearizability.Tests;

public sealed class KnownHistoryTests
{
    private static void AssertOk(CheckResult result) =>
        Assert.True(result.Outcome == CheckOutcome.Ok, $"expected linearizable, checker said: {result}");

    private static void AssertIllegal(CheckResult result) =>
        Assert.True(result.Outcome == CheckOutcome.Illegal, $"expected a violation, checker said: {result}");

    [Fact]
    public void Empty_history_is_linearizable() => AssertOk(new HistoryBuilder().Check());

    [Fact]
    public void Sequential_writes_and_reads_that_agree_are_linearizable() =>
        AssertOk(new HistoryBuilder()
            .Get(1, 0, 1, "x", null, 0)
            .Put(1, 2, 3, "x", "a")
            .Get(2, 4, 5, "x", "a", 1)
            .Put(2, 6, 7, "x", "b")
            .Get(1, 8, 9, "x", "b", 2)
            .Delete(1, 10, 11, "x", 1)
            .Get(2, 12, 13, "x", null, 0)
            .Delete(2, 14, 15, "x", 0)
            .Check());

    [Fact]
    public void Stale_read_after_a_newer_write_completed_is_not_linearizable() =>
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, 10, "x", "1")
            .Put(1, 20, 30, "x", "2")
            .Get(2, 40, 50, "x", "1")
            .Check());

    [Fact]
    public void Lost_write_is_not_linearizable() =>
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, 10, "x", "1")
            .Get(2, 20, 30, "x", null)
            .Check());

    [Fact]
    public void Client_not_reading_its_own_completed_write_is_not_linearizable() =>
        AssertIllegal(new HistoryBuilder()
            .Put(2, 0, 5, "x", "old")
            .Put(1, 10, 20, "x", "mine")
            .Get(1, 21, 25, "x", "old")
            .Check());

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    public void Concurrent_writes_may_take_effect_in_either_order(string seen) =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, 10, "x", "1")
            .Put(2, 5, 15, "x", "2")
            .Get(3, 20, 25, "x", seen)
            .Get(3, 26, 30, "x", seen)
            .Check());

    [Fact]
    public void Reads_concurrent_with_a_write_may_see_old_then_new_but_not_new_then_old()
    {
        AssertOk(new HistoryBuilder()
            .Put(1, 0, 100, "x", "new")
            .Get(2, 10, 20, "x", null)
            .Get(2, 30, 40, "x", "new")
            .Check());
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, 100, "x", "new")
            .Get(2, 10, 20, "x", "new")
            .Get(2, 30, 40, "x", null)
            .Check());
    }

    [Fact]
    public void Operations_touching_at_an_instant_count_as_concurrent() =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, 10, "x", "1")
            .Get(2, 10, 12, "x", null)
            .Check());

    [Fact]
    public void Unknown_write_that_took_effect_is_linearizable() =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, null, "x", "1")
            .Get(2, 1000, 1010, "x", "1")
            .Check());

    [Fact]
    public void Unknown_write_that_never_took_effect_is_linearizable() =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, null, "x", "1")
            .Get(2, 1000, 1010, "x", null)
            .Get(2, 2000, 2010, "x", null)
            .Check());

    [Fact]
    public void Unknown_write_may_take_effect_late_but_not_be_undone() =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, null, "x", "1")
            .Get(2, 1000, 1010, "x", null)
            .Get(2, 2000, 2010, "x", "1")
            .Check());

    [Fact]
    public void Unknown_write_seen_then_unseen_is_not_linearizable() =>
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, null, "x", "1")
            .Get(2, 1000, 1010, "x", "1")
            .Get(2, 2000, 2010, "x", null)
            .Check());

    [Fact]
    public void Unknown_write_cannot_take_effect_before_it_was_called() =>
        AssertIllegal(new HistoryBuilder()
            .Get(2, 0, 5, "x", "1")
            .Put(1, 10, null, "x", "1")
            .Check());

    [Fact]
    public void Unknown_reads_constrain_nothing() =>
        AssertOk(new HistoryBuilder()
            .Get(3, 0, null, "x", null)
            .Put(1, 1, 2, "x", "1")
            .Get(3, 3, null, "x", null)
            .Check());

    [Fact]
    public void Two_compare_and_sets_from_absent_cannot_both_succeed()
    {
        AssertIllegal(new HistoryBuilder()
            .Cas(1, 0, 10, "lock", null, "a", true)
            .Cas(2, 0, 10, "lock", null, "b", true)
            .Check());
        AssertOk(new HistoryBuilder()
            .Cas(1, 0, 10, "lock", null, "a", true)
            .Cas(2, 0, 10, "lock", null, "b", false)
            .Get(3, 20, 30, "lock", "a", 1)
            .Check());
    }

    [Fact]
    public void Failed_compare_and_set_must_have_seen_a_different_value() =>
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, 10, "x", "a")
            .Cas(2, 20, 30, "x", "a", "b", false)
            .Check());

    [Fact]
    public void Compare_and_set_can_delete() =>
        AssertOk(new HistoryBuilder()
            .Put(1, 0, 10, "x", "a")
            .Cas(2, 20, 30, "x", "a", null, true)
            .Get(1, 40, 50, "x", null, 0)
            .Delete(1, 60, 70, "x", 0)
            .Check());

    [Fact]
    public void Delete_count_must_match_whether_the_key_existed() =>
        AssertIllegal(new HistoryBuilder()
            .Delete(1, 0, 10, "x", 1)
            .Check());

    [Fact]
    public void Versions_count_writes_since_creation_and_are_checked_when_given()
    {
        AssertOk(new HistoryBuilder()
            .Put(1, 0, 1, "x", "a")
            .Put(1, 2, 3, "x", "a")
            .Get(1, 4, 5, "x", "a", 2)
            .Delete(1, 6, 7, "x")
            .Put(1, 8, 9, "x", "a")
            .Get(1, 10, 11, "x", "a", 1)
            .Check());
        // Same value, but the version shows the second write was lost.
        AssertIllegal(new HistoryBuilder()
            .Put(1, 0, 1, "x", "a")
            .Put(1, 2, 3, "x", "a")
            .Get(1, 4, 5, "x", "a", 1)
            .Check());
    }

    [Fact]
    public void A_violation_on_one_key_is_found_among_many_keys_and_named()
    {
        var builder = new HistoryBuilder();
        for (var k = 0; k < 50; k++)
        {
            builder.Put(1, k * 10, (k * 10) + 5, $"k{k}", "v");
            builder.Get(2, (k * 10) + 6, (k * 10) + 8, $"k{k}", k == 37 ? null : "v");
        }

        var result = builder.Check();

        AssertIllegal(result);
        Assert.Equal("key k37", result.FailedPart);
    }

    [Fact]
    public void Illegal_explanation_shows_the_prefix_and_the_operation_that_could_not_be_placed()
    {
        var result = new HistoryBuilder()
            .Put(1, 0, 10, "x", "1")
            .Put(1, 20, 30, "x", "2")
            .Get(2, 40, 50, "x", "1")
            .Check();

        AssertIllegal(result);
        var text = result.Explanation;
        Assert.Contains("part 'key x'", text, StringComparison.Ordinal);
        Assert.Contains("longest linearizable prefix found: 2 operations", text, StringComparison.Ordinal);
        Assert.Contains("1. client 1 [0..10] put x=1 -> ok", text, StringComparison.Ordinal);
        Assert.Contains("2. client 1 [20..30] put x=2 -> ok", text, StringComparison.Ordinal);
        Assert.Contains("state after the prefix: \"2\"", text, StringComparison.Ordinal);
        Assert.Contains("cannot place next: client 2 [40..50] get x -> \"1\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Step_budget_turns_a_long_search_into_unknown()
    {
        var builder = new HistoryBuilder();
        for (var i = 0; i < 30; i++)
        {
            builder.Put(i, 0, 100, "x", $"v{i}");
        }

        builder.Get(99, 200, 210, "x", "never written");

        var result = builder.Check(new CheckOptions { MaxSteps = 100 });

        Assert.True(result.Outcome == CheckOutcome.Unknown, result.ToString());
        Assert.Equal("key x", result.FailedPart);
    }

    [Fact]
    public void Time_budget_turns_a_long_search_into_unknown()
    {
        var builder = new HistoryBuilder();
        for (var i = 0; i < 30; i++)
        {
            builder.Put(i, 0, 100, "x", $"v{i}");
        }

        builder.Get(99, 200, 210, "x", "never written");
        var clock = new SteppingClock(TimeSpan.FromMilliseconds(1));

        var result = builder.Check(new CheckOptions { Timeout = TimeSpan.FromMilliseconds(50), TimeProvider = clock });

        Assert.True(result.Outcome == CheckOutcome.Unknown, result.ToString());
        Assert.InRange(result.Steps, 1024, 1024 * 60);
    }

    /// <summary>A clock that moves forward a fixed amount every time it is read.</summary>
    private sealed class SteppingClock(TimeSpan step) : TimeProvider
    {
        private long _now;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _now += step.Ticks;
    }

    [Fact]
    public void Many_concurrent_writes_then_an_impossible_read_is_refuted_thanks_to_memoization()
    {
        // 12 concurrent puts have 12! (479 million) orders; the memo table of (linearized set, state)
        // collapses them to at most 12 * 2^11 configurations (state = the last value written).
        var builder = new HistoryBuilder();
        for (var i = 0; i < 12; i++)
        {
            builder.Put(i, 0, 100, "x", $"v{i}");
        }

        builder.Get(99, 200, 210, "x", "never written");

        var result = builder.Check(new CheckOptions { MaxSteps = 1_000_000 });

        AssertIllegal(result);
    }

    [Fact]
    public void Operation_requires_output_and_return_time_together_and_in_order()
    {
        Assert.Throws<ArgumentException>(() => new Operation<KvInput, KvOutput>(1, new KvGet("x"), new KvGetResult(null), 0, null));
        Assert.Throws<ArgumentException>(() => new Operation<KvInput, KvOutput>(1, new KvGet("x"), null, 0, 5));
        Assert.Throws<ArgumentException>(() => new Operation<KvInput, KvOutput>(1, new KvGet("x"), new KvGetResult(null), 10, 5));
    }

    [Fact]
    public void History_recorder_turns_unfinished_operations_into_unknown_outcomes()
    {
        var history = new History<KvInput, KvOutput>();
        var put = history.Invoke(1, new KvPut("x", "1"), 0);
        var get = history.Invoke(2, new KvGet("x"), 5);
        history.Complete(get, new KvGetResult("1"), 9);

        var ops = history.ToOperations();

        Assert.False(ops[put].Completed);
        Assert.True(ops[get].Completed);
        Assert.Throws<InvalidOperationException>(() => history.Complete(get, new KvGetResult("1"), 10));
        AssertOk(LinearizabilityChecker.Check(KvModel.Instance, ops));
    }
}
