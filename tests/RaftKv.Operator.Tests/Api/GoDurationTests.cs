
namespace RaftKv.Operator.Tests.Api;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("0s", 0)]
    [InlineData("100ms", 100 * TimeSpan.TicksPerMillisecond)]
    [InlineData("1.5s", 1500 * TimeSpan.TicksPerMillisecond)]
    [InlineData("1m30s", 90 * TimeSpan.TicksPerSecond)]
    [InlineData("2h", 2 * TimeSpan.TicksPerHour)]
    [InlineData("1h2m3.25s", TimeSpan.TicksPerHour + 2 * TimeSpan.TicksPerMinute + 3250 * TimeSpan.TicksPerMillisecond)]
    [InlineData("250us", 2500)]
    [InlineData("250µs", 2500)]
    [InlineData("250μs", 2500)]
    [InlineData("1500ns", 15)]
    [InlineData("0.5ms", 5000)]
    [InlineData("50s", 50 * TimeSpan.TicksPerSecond)]
    public void Parses_what_Go_and_CEL_accept(string text, long expectedTicks)
    {
        Assert.True(GoDuration.TryParse(text, out var value, out var error), $"\"{text}\" rejected: {error}");
        Assert.Equal(TimeSpan.FromTicks(expectedTicks), value);
    }

    [Theory]
    [InlineData("", "required")]
    [InlineData("100", "has no unit")]
    [InlineData("1d", "unknown unit \"d\"")]
    [InlineData("-1s", "must not be signed")]
    [InlineData("+1s", "must not be signed")]
    [InlineData(".5s", "not a valid duration")]
    [InlineData("5.s", "not a valid duration")]
    [InlineData("1.2.3s", "not a valid duration")]
    [InlineData("ms", "not a valid duration")]
    [InlineData("1 s", "unknown unit")]
    [InlineData("99999999999h", "too long")]
    public void Rejects_malformed_text_with_a_reason(string text, string expectedReason)
    {
        Assert.False(GoDuration.TryParse(text, out _, out var error), $"\"{text}\" was accepted");
        Assert.Contains(expectedReason, error, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => GoDuration.Parse(text));
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(100 * TimeSpan.TicksPerMillisecond, "100ms")]
    [InlineData(1500 * TimeSpan.TicksPerMillisecond, "1.5s")]
    [InlineData(1000 * TimeSpan.TicksPerMillisecond, "1s")]
    [InlineData(90 * TimeSpan.TicksPerSecond, "1m30s")]
    [InlineData(2 * TimeSpan.TicksPerMinute, "2m0s")]
    [InlineData(2 * TimeSpan.TicksPerHour, "2h0m0s")]
    [InlineData(2500L, "250µs")]
    [InlineData(15L, "1.5µs")]
    [InlineData(1L, "100ns")]
    [InlineData(12345L, "1.2345ms")]
    [InlineData(1234567L, "123.4567ms")]
    [InlineData(50 * TimeSpan.TicksPerSecond + 1, "50.0000001s")]
    public void Formats_as_Go_does(long ticks, string expected)
    {
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromTicks(ticks)));
    }

    [Fact]
    public void Formatting_round_trips_through_parsing()
    {
        var random = new Random(7);
        for (var i = 0; i < 2000; i++)
        {
            var value = TimeSpan.FromTicks(random.NextInt64(0, 3 * TimeSpan.TicksPerHour) >> random.Next(0, 30));
            var text = GoDuration.Format(value);
            Assert.True(GoDuration.TryParse(text, out var back, out var error), $"{value.Ticks} ticks formatted as \"{text}\" does not parse: {error}");
            Assert.True(value == back, $"{value.Ticks} ticks -> \"{text}\" -> {back.Ticks} ticks");
            Assert.Matches(GoDuration.Pattern, text);
        }
    }

    [Fact]
    public void Negative_values_cannot_be_formatted()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GoDuration.Format(TimeSpan.FromSeconds(-1)));
    }

    [Theory]
    [InlineData("100ms", true)]
    [InlineData("1h2m3.5s", true)]
    [InlineData("0", true)]
    [InlineData("100", false)]
    [InlineData("-1s", false)]
    [InlineData("1d", false)]
    [InlineData("", false)]
    public void The_CRD_pattern_agrees_with_the_parser(string text, bool valid)
    {
        Assert.Equal(valid, System.Text.RegularExpressions.Regex.IsMatch(text, GoDuration.Pattern));
        Assert.Equal(valid, GoDuration.TryParse(text, out _, out _));
    }
}
