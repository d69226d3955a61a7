using System.Text.Json;
using System.Text.RegularExpressions;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Runtime;
using YamlDotNet.RepresentationModel;

namespace RaftKv.Packaging.Tests;

/// <summary>The alert rules and the Grafana dashboard: their shape, that the chart ships them unchanged, and
/// that every metric they use is one raftkv or the operator exports.</summary>
public sealed partial class MonitoringTests
{
    private const string RulesPath = "charts/raftkv-operator/files/prometheus-rules.yaml";
    private const string DashboardPath = "charts/raftkv-operator/files/raftkv-dashboard.json";

    private static List<YamlMappingNode> Rules()
    {
        var root = Manifests.Mapping(Repo.Read(RulesPath));
        return ((YamlSequenceNode)root["groups"]).Cast<YamlMappingNode>()
            .SelectMany(g => ((YamlSequenceNode)g["rules"]).Cast<YamlMappingNode>()).ToList();
    }

    private static string Text(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value ?? "" : "";

    [Fact]
    public void The_alerts_cover_etcd_mixin_failures_and_the_operator()
    {
        var rules = Rules();
        var names = rules.Select(r => Text(r, "alert")).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        foreach (var wanted in new[]
        {
            "RaftKvNoLeader", "RaftKvFrequentLeaderChanges", "RaftKvHighFailedProposals", "RaftKvSlowWalFsync", "RaftKvSlowBackendCommit",
            "RaftKvSlowPeerRoundTrip", "RaftKvOperatorReconcileErrors", "RaftKvClusterDegraded", "RaftKvTuningChangedOften",
        })
        {
            Assert.Contains(wanted, names);
        }

        foreach (var rule in rules)
        {
            var alert = Text(rule, "alert");
            Assert.False(string.IsNullOrWhiteSpace(Text(rule, "expr")), $"{alert} has no expr");
            var labels = (YamlMappingNode)rule["labels"];
            Assert.Contains(Text(labels, "severity"), new[] { "critical", "warning", "info" });
            var annotations = (YamlMappingNode)rule["annotations"];
            Assert.False(string.IsNullOrWhiteSpace(Text(annotations, "summary")), $"{alert} has no summary");
            Assert.False(string.IsNullOrWhiteSpace(Text(annotations, "description")), $"{alert} has no description");
            Assert.Equal(Text(rule, "expr").Count(c => c == '('), Text(rule, "expr").Count(c => c == ')'));
        }
    }

    [Fact]
    public void The_dashboard_is_Grafana_JSON_with_the_panels_the_issue_asks_for()
    {
        using var doc = JsonDocument.Parse(Repo.Read(DashboardPath));
        var root = doc.RootElement;
        Assert.Equal("raftkv-overview", root.GetProperty("uid").GetString());
        var panels = root.GetProperty("panels").EnumerateArray().ToList();
        var ids = panels.Select(p => p.GetProperty("id").GetInt32()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var exprs = Exprs(root).ToList();
        foreach (var metric in new[]
        {
            "etcd_server_has_leader", "etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total", "etcd_server_proposals_failed_total",
            "etcd_disk_wal_fsync_duration_seconds_bucket", "etcd_disk_backend_commit_duration_seconds_bucket", "etcd_network_peer_round_trip_time_seconds_bucket",
            "raftkv_operator_cluster_heartbeat_interval_seconds", "raftkv_operator_cluster_election_timeout_seconds", "raftkv_operator_cluster_peer_rtt_p99_seconds",
            "raftkv_operator_reconcile_total",
        })
        {
            Assert.True(exprs.Any(e => e.Contains(metric, StringComparison.Ordinal)), $"no dashboard panel queries {metric}");
        }

        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().Select(v => v.GetProperty("name").GetString()).ToList();
        Assert.Equal(new[] { "datasource", "namespace", "raftcluster" }, variables);
    }

    [Fact]
    public async Task Every_metric_the_alerts_and_dashboard_use_is_exported()
    {
        // The operator's: export a registry that has seen a reconcile's status and a timing change.
        var metrics = new ControllerMetrics();
        metrics.RecordStatus("ns", "demo", new RaftClusterStatus
        {
            Conditions = [new V1Condition { Type = ConditionTypes.Degraded, Status = "True", Reason = ConditionReasons.SlowDisk, Message = "m", LastTransitionTime = DateTime.UnixEpoch }],
            Tuning = new RaftClusterTuningStatus { HeartbeatInterval = "100ms", ElectionTimeout = "1s", RttP99 = "2ms", FsyncP99 = "12ms" },
        });
        metrics.TuningChanges.WithLabels("ns", "demo").Inc();
        metrics.Reconciles.WithLabels("raftcluster", "success").Inc();
        metrics.Errors.WithLabels("raftcluster").Inc();
        metrics.Duration.WithLabels("raftcluster").Observe(0.01);
        metrics.Steps.WithLabels("UpdateTuning").Inc();
        using var exported = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(exported);
        var operatorText = System.Text.Encoding.UTF8.GetString(exported.ToArray());

        // raftkv's: etcd's names, declared in its metrics class.
        var nodeSource = Repo.Read("node/src/RaftKv.Server/Observability/NodeMetrics.cs");

        var used = MetricName().Matches(Repo.Read(RulesPath) + Repo.Read(DashboardPath)).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(used);
        foreach (var name in used)
        {
            var family = Regex.Replace(name, "_(bucket|sum|count)$", "");
            var found = name.StartsWith("raftkv_operator_", StringComparison.Ordinal)
                ? Regex.IsMatch(operatorText, $"(?m)^{Regex.Escape(name)}[{{ ]")
                : nodeSource.Contains($"\"{family}\"", StringComparison.Ordinal);
            Assert.True(found, $"{name} is used by the alerts or the dashboard but neither raftkv nor the operator exports it");
        }

        Assert.Contains("raftkv_operator_cluster_condition{namespace=\"ns\",raftcluster=\"demo\",type=\"Degraded\",reason=\"SlowDisk\"} 1", operatorText, StringComparison.Ordinal);
        Assert.Contains("raftkv_operator_cluster_election_timeout_seconds{namespace=\"ns\",raftcluster=\"demo\"} 1", operatorText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_condition_whose_reason_changed_leaves_no_stale_series_and_a_deleted_cluster_none()
    {
        var metrics = new ControllerMetrics();
        RaftClusterStatus Degraded(string status, string reason) => new()
        {
            Conditions = [new V1Condition { Type = ConditionTypes.Degraded, Status = status, Reason = reason, Message = "m", LastTransitionTime = DateTime.UnixEpoch }],
            Tuning = new RaftClusterTuningStatus { HeartbeatInterval = "100ms", ElectionTimeout = "1s" },
        };
        async Task<string> Export()
        {
            using var stream = new MemoryStream();
            await metrics.Registry.CollectAndExportAsTextAsync(stream);
            return System.Text.Encoding.UTF8.GetString(stream.ToArray());
        }

        metrics.RecordStatus("ns", "demo", Degraded("True", ConditionReasons.SlowDisk));
        metrics.RecordStatus("ns", "demo", Degraded("False", ConditionReasons.AsExpected));
        var text = await Export();
        Assert.DoesNotContain("SlowDisk", text, StringComparison.Ordinal);
        Assert.Contains("reason=\"AsExpected\"} 0", text, StringComparison.Ordinal);

        metrics.ForgetCluster("ns", "demo");
        Assert.DoesNotContain("raftcluster=\"demo\"", await Export(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_chart_ships_the_rules_and_the_dashboard_unchanged()
    {
        var all = await Chart.Render(Chart.AllOptions);
        var rule = Manifests.Mapping(all.Single(m => m.Kind == "PrometheusRule").Yaml);
        var shipped = Yaml((YamlMappingNode)rule["spec"]);
        Assert.Equal(Yaml(Manifests.Mapping(Repo.Read(RulesPath))), shipped);

        var configMap = (V1ConfigMap)Manifests.Strict(all.Single(m => m is { Kind: "ConfigMap" } && m.Name.EndsWith("-dashboard", StringComparison.Ordinal)));
        Assert.Equal(Repo.Read(DashboardPath).TrimEnd('\n'), configMap.Data["raftkv-dashboard.json"]);
        Assert.Equal("1", configMap.Metadata.Labels["grafana_dashboard"]);
    }

    private static string Yaml(YamlNode node)
    {
        var writer = new StringWriter();
        new YamlStream(new YamlDocument(node)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    private static IEnumerable<string> Exprs(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in element.EnumerateObject())
                {
                    if (p.Name == "expr" && p.Value.ValueKind == JsonValueKind.String)
                    {
                        yield return p.Value.GetString()!;
                    }

                    foreach (var e in Exprs(p.Value))
                    {
                        yield return e;
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    foreach (var e in Exprs(item))
                    {
                        yield return e;
                    }
                }

                break;
        }
    }

    [GeneratedRegex(@"\b(etcd|raftkv_operator)_[a-z0-9_]+\b")]
    private static partial Regex MetricName();
}
