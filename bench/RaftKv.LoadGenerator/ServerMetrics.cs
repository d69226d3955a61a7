using System.Globalization;

namespace RaftKv.LoadGenerator;

/// <summary>The few server-side counters the comparison reads from a member's /metrics (etcd's names, kept by raftkv).</summary>
internal sealed record ServerMetrics(double WalFsyncs, double WalFsyncSeconds, double BackendCommits, double BackendCommitSeconds, double ProposalsCommitted)
{
    public static readonly ServerMetrics Zero = new(0, 0, 0, 0, 0);

    public static ServerMetrics Parse(string prometheusText) => new(
        Sum(prometheusText, "etcd_disk_wal_fsync_duration_seconds_count"),
        Sum(prometheusText, "etcd_disk_wal_fsync_duration_seconds_sum"),
        Sum(prometheusText, "etcd_disk_backend_commit_duration_seconds_count"),
        Sum(prometheusText, "etcd_disk_backend_commit_duration_seconds_sum"),
        Sum(prometheusText, "etcd_server_proposals_committed_total"));

    public ServerMetrics Minus(ServerMetrics before)
    {
        ArgumentNullException.ThrowIfNull(before);
        return new(WalFsyncs - before.WalFsyncs, WalFsyncSeconds - before.WalFsyncSeconds, BackendCommits - before.BackendCommits,
            BackendCommitSeconds - before.BackendCommitSeconds, ProposalsCommitted - before.ProposalsCommitted);
    }

    /// <summary>Sum of every sample of one metric name (all label sets) in the Prometheus text format; 0 when absent.</summary>
    public static double Sum(string prometheusText, string name)
    {
        ArgumentNullException.ThrowIfNull(prometheusText);
        double total = 0;
        foreach (var raw in prometheusText.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#' || !line.StartsWith(name, StringComparison.Ordinal))
            {
                continue;
            }

            var rest = line[name.Length..];
            if (rest.Length == 0 || (rest[0] != ' ' && rest[0] != '{'))
            {
                continue; // a longer name with this prefix
            }

            var valueText = rest[0] == '{' ? rest[(rest.LastIndexOf('}') + 1)..].Trim() : rest.Trim();
            valueText = valueText.Split(' ')[0];
            if (double.TryParse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                total += value;
            }
        }

        return total;
    }

    public static async Task<ServerMetrics> ScrapeAsync(HttpClient http, string endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        try
        {
            var text = await http.GetStringAsync(new Uri($"http://{endpoint}/metrics"), cancellationToken);
            return Parse(text);
        }
        catch (HttpRequestException)
        {
            return Zero;
        }
    }
}
