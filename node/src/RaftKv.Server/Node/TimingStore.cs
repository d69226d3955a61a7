using System.Text.Json;
using System.Text.Json.Serialization;

namespace RaftKv.Server.Node;

/// <summary>Heartbeat interval and election timeout set live through the admin RPC.</summary>
internal sealed record TimingSettings(
    [property: JsonPropertyName("heartbeatIntervalMs")] int HeartbeatMs,
    [property: JsonPropertyName("electionTimeoutMs")] int ElectionMs)
{
    public const int MaxElectionMs = 50_000;

    /// <summary>etcd's rules for the two flags; returns a message saying what to change, or null when valid.</summary>
    public string? Validate()
    {
        if (HeartbeatMs <= 0)
        {
            return $"heartbeat interval must be at least 1ms (got {HeartbeatMs}ms)";
        }

        if (ElectionMs < 5 * HeartbeatMs)
        {
            return $"election timeout[{ElectionMs}ms] should be at least as 5 times as heartbeat interval[{HeartbeatMs}ms]";
        }

        if (ElectionMs > MaxElectionMs)
        {
            return $"election timeout[{ElectionMs}ms] is too long, and should be set less than {MaxElectionMs}ms";
        }

        return null;
    }
}

/// <summary>
/// Keeps live-set timing in <c>DATA_DIR/member/raftkv-timing.json</c> so it survives restarts; when present it takes
/// precedence over <c>--heartbeat-interval</c>/<c>--election-timeout</c> (delete the file to go back to the flags).
/// </summary>
internal static class TimingStore
{
    public const string FileName = "raftkv-timing.json";

    public static TimingSettings? Load(string memberDir)
    {
        var path = Path.Combine(memberDir, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        TimingSettings? timing;
        try
        {
            timing = JsonSerializer.Deserialize<TimingSettings>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new IOException($"'{path}' is not valid timing JSON ({e.Message}); fix or delete it to use the command-line timing.", e);
        }

        if (timing?.Validate() is { } problem || timing is null)
        {
            throw new IOException($"'{path}' holds invalid timing ({timing?.Validate() ?? "empty"}); fix or delete it to use the command-line timing.");
        }

        return timing;
    }

    public static void Save(string memberDir, TimingSettings timing)
    {
        Directory.CreateDirectory(memberDir);
        var path = Path.Combine(memberDir, FileName);
        var temp = path + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(f, timing);
            f.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }
}
