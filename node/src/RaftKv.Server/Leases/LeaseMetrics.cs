using Prometheus;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Leases;

/// <summary>etcd's lease counters (etcd_debugging_lease_*), in the member's own registry.</summary>
internal sealed class LeaseMetrics
{
    public LeaseMetrics(CollectorRegistry registry)
    {
        var f = Metrics.WithCustomRegistry(registry);
        Granted = f.CreateCounter("etcd_debugging_lease_granted_total", "The total number of granted leases.");
        Revoked = f.CreateCounter("etcd_debugging_lease_revoked_total", "The total number of revoked leases.");
        Renewed = f.CreateCounter("etcd_debugging_lease_renewed_total", "The number of renewed leases seen by the leader.");
        Ttl = f.CreateHistogram("etcd_debugging_lease_ttl_total", "Bucketed histogram of lease TTLs.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 14) });
    }

    public Counter Granted { get; }

    public Counter Revoked { get; }

    public Counter Renewed { get; }

    public Histogram Ttl { get; }

    /// <summary>Counts an applied grant or revoke (every member counts what it applies, as etcd's lessor does).</summary>
    public void Applied(object? response)
    {
        switch (response)
        {
            case LeaseGrantResponse g:
                Granted.Inc();
                Ttl.Observe(g.Ttl);
                break;
            case LeaseRevokeResponse:
                Revoked.Inc();
                break;
        }
    }
}
