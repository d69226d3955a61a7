namespace RaftKv.Server.Tests;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("100ms", 100)]
    [InlineData("1.5s", 1500)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("2m0s", 120_000)]
    [InlineData("250us", 0.25)]
    [InlineData("-3s", -3000)]
    public void Parses_gos_duration_syntax(string text, double expectedMs)
    {
        Assert.True(GoDuration.TryParse(text, out var duration), $"'{text}' was refused");
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("10 s")]
    [InlineData("1d")]
    [InlineData("ms")]
    [InlineData("1..5s")]
    public void Refuses_what_go_refuses(string text)
    {
        Assert.False(GoDuration.TryParse(text, out var duration), $"'{text}' was accepted as {duration}");
    }

    [Theory]
    [InlineData(100, "100ms")]
    [InlineData(1500, "1.5s")]
    [InlineData(120_000, "2m0s")]
    [InlineData(3_600_000, "1h0m0s")]
    [InlineData(0, "0s")]
    [InlineData(0.5, "0.5ms")]
    public void Formats_as_go_does(double ms, string expected)
    {
        var text = GoDuration.Format(TimeSpan.FromMilliseconds(ms));

        Assert.Equal(expected, text);
        Assert.True(GoDuration.TryParse(text, out var back));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), back);
    }
}
