using System.Globalization;

namespace RaftKv.Chaos.Tests;

/// <summary>
/// The bounded scenario set of <c>make chaos</c>, one test per scenario, against the raftkv program built next to the
/// tests. The seed is CHAOS_SEED when set, else the day's number (the same all day, so a red run replays). A failure
/// says what was seen and keeps the schedule, history and member logs under chaos-results/.
/// </summary>
public sealed class ScenarioTests
{
    public static TheoryData<string> Bounded => [.. Scenarios.All.Where(s => s.Bounded).Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(Bounded))]
    public async Task Scenario_passes(string name)
    {
        var seed = Environment.GetEnvironmentVariable("CHAOS_SEED") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : (int)(DateTime.UtcNow.Date - DateTime.UnixEpoch).TotalDays;
        var options = new ChaosOptions
        {
            Binary = Path.Combine(AppContext.BaseDirectory, "raftkv"),
            ResultsDir = Path.Combine(RepositoryRoot(), "chaos-results"),
            Duration = TimeSpan.FromSeconds(4),
        };

        var result = await Runner.RunAsync(Scenarios.All.Single(x => x.Name == name), seed, options, CancellationToken.None);

        Assert.True(result.Passed, result.ToString());
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Operator.sln")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
