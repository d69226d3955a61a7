using Prometheus;

namespace RaftKv.Server.Observability;

/// <summary>
/// The metrics of one member under etcd's names, types and label names (so etcd's Grafana dashboards and alerts work),
/// in a registry of its own (several members may share a process in tests).
/// </summary>
internal sealed class NodeMetrics
{
    public NodeMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var f = Metrics.WithCustomRegistry(Registry);
        HasLeader = f.CreateGauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.");
        IsLeader = f.CreateGauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.");
        LeaderChanges = f.CreateCounter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.");
        ProposalsCommitted = f.CreateGauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.");
        ProposalsApplied = f.CreateGauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.");
        ProposalsPending = f.CreateGauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.");
        ProposalsFailed = f.CreateCounter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.");
        ServerId = f.CreateGauge("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", "server_id");
        ServerVersion = f.CreateGauge("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", "server_version");
        HealthSuccess = f.CreateCounter("etcd_server_health_success", "The total number of successful health checks");
        HealthFailures = f.CreateCounter("etcd_server_health_failures", "The total number of failed health checks");
        SlowApply = f.CreateCounter("etcd_server_slow_apply_total", "The total number of slow apply requests (likely overloaded from slow disk).");
        HeartbeatSendFailures = f.CreateCounter("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).");
        WalFsync = f.CreateHistogram("etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        BackendCommit = f.CreateHistogram("etcd_disk_backend_commit_duration_seconds", "The latency distributions of commit called by backend.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        PeerRoundTrip = f.CreateHistogram("etcd_network_peer_round_trip_time_seconds", "Round-Trip-Time histogram between peers",
            new HistogramConfiguration { LabelNames = ["To"], Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16) });
        PeerSentBytes = f.CreateCounter("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To");
        PeerReceivedBytes = f.CreateCounter("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", "From");
        PeerSentFailures = f.CreateCounter("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", "To");
        PeerReceivedFailures = f.CreateCounter("etcd_network_peer_received_failures_total", "The total number of receive failures from peers.", "From");
        SnapshotSendSuccess = f.CreateCounter("etcd_network_snapshot_send_success", "Total number of successful snapshot sends", "To");
        SnapshotSendFailures = f.CreateCounter("etcd_network_snapshot_send_failures", "Total number of snapshot send failures", "To");
        SnapshotReceiveSuccess = f.CreateCounter("etcd_network_snapshot_receive_success", "Total number of successful snapshot receives", "From");
        SnapshotReceiveFailures = f.CreateCounter("etcd_network_snapshot_receive_failures", "Total number of snapshot receive failures", "From");
        SnapshotSendDuration = f.CreateHistogram("etcd_network_snapshot_send_total_duration_seconds", "Total latency distributions of v3 snapshot sends",
            new HistogramConfiguration { LabelNames = ["To"], Buckets = Histogram.ExponentialBuckets(0.1, 2, 10) });
        SnapshotReceiveDuration = f.CreateHistogram("etcd_network_snapshot_receive_total_duration_seconds", "Total latency distributions of v3 snapshot receives",
            new HistogramConfiguration { LabelNames = ["From"], Buckets = Histogram.ExponentialBuckets(0.1, 2, 10) });
        SnapSave = f.CreateHistogram("etcd_debugging_snap_save_total_duration_seconds", "The total latency distributions of save called by snapshot.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 14) });
        SnapshotApplyInProgress = f.CreateGauge("etcd_server_snapshot_apply_in_progress_total", "1 if the server is applying the incoming snapshot. 0 if none.");
    }

    public CollectorRegistry Registry { get; }

    public Gauge HasLeader { get; }

    public Gauge IsLeader { get; }

    public Counter LeaderChanges { get; }

    public Gauge ProposalsCommitted { get; }

    public Gauge ProposalsApplied { get; }

    public Gauge ProposalsPending { get; }

    public Counter ProposalsFailed { get; }

    public Gauge ServerId { get; }

    public Gauge ServerVersion { get; }

    public Counter HealthSuccess { get; }

    public Counter HealthFailures { get; }

    public Counter SlowApply { get; }

    public Counter HeartbeatSendFailures { get; }

    public Histogram WalFsync { get; }

    public Histogram BackendCommit { get; }

    /// <summary>Drops every series labelled with <paramref name="peer"/> (To or From): the member was removed.</summary>
    public void ForgetPeer(ulong peer)
    {
        var label = IdLabel(peer);
        PeerRoundTrip.RemoveLabelled(label);
        PeerSentBytes.RemoveLabelled(label);
        PeerReceivedBytes.RemoveLabelled(label);
        PeerSentFailures.RemoveLabelled(label);
        PeerReceivedFailures.RemoveLabelled(label);
        SnapshotSendSuccess.RemoveLabelled(label);
        SnapshotSendFailures.RemoveLabelled(label);
        SnapshotReceiveSuccess.RemoveLabelled(label);
        SnapshotReceiveFailures.RemoveLabelled(label);
        SnapshotSendDuration.RemoveLabelled(label);
        SnapshotReceiveDuration.RemoveLabelled(label);
    }

    public Histogram PeerRoundTrip { get; }

    public Counter PeerSentBytes { get; }

    public Counter PeerReceivedBytes { get; }

    public Counter PeerSentFailures { get; }

    public Counter PeerReceivedFailures { get; }

    public Counter SnapshotSendSuccess { get; }

    public Counter SnapshotSendFailures { get; }

    public Counter SnapshotReceiveSuccess { get; }

    public Counter SnapshotReceiveFailures { get; }

    public Histogram SnapshotSendDuration { get; }

    public Histogram SnapshotReceiveDuration { get; }

    public Histogram SnapSave { get; }

    public Gauge SnapshotApplyInProgress { get; }

    /// <summary>etcd formats member ids as 16-digit lowercase hex without padding (%x).</summary>
    public static string IdLabel(ulong id) => id.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
}
