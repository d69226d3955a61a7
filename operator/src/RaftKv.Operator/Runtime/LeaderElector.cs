using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace RaftKv.Operator.Runtime;

/// <summary>Leader election settings (client-go's defaults: 15 s lease, renew within 10 s, retry every 2 s).</summary>
internal sealed record LeaderElectionOptions
{
    public required string LeaseName { get; init; }

    public required string LeaseNamespace { get; init; }

    /// <summary>This instance's identity in the Lease's holderIdentity (the pod name, plus a unique suffix).</summary>
    public required string Identity { get; init; }

    /// <summary>How long a Lease holds without renewal; others take over after it lapses.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The leader stops leading if it could not renew for this long (must be below LeaseDuration).</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often to try to acquire or renew.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Leader election on a <c>coordination.k8s.io/v1</c> Lease. Invariant: <see cref="RunAsync"/> calls its
/// lead function only while this instance holds the Lease, and cancels it as soon as the Lease cannot be
/// renewed before <see cref="LeaderElectionOptions.RenewDeadline"/> (well before another instance may take
/// it, at LeaseDuration). Writes use the Lease's resourceVersion, so two candidates never both win a
/// round. On shutdown the leader releases the Lease (empties holderIdentity) so a successor need not wait.
/// Expiry is judged by this instance's clock from when it last saw the record change, never by comparing
/// clocks with the writer (as client-go does).
/// </summary>
internal sealed partial class LeaderElector(IKubernetes client, LeaderElectionOptions options, TimeProvider time, ILogger<LeaderElector> logger)
{
    private string? _observedRecord;
    private string? _observedHolder;
    private DateTimeOffset _observedAt;
    private volatile bool _isLeader;

    public bool IsLeader => _isLeader;

    public string Identity => options.Identity;

    /// <summary>Campaign until <paramref name="cancellationToken"/> ends; while leading, run <paramref name="lead"/> with a token cancelled when leadership ends.</summary>
    public async Task RunAsync(Func<CancellationToken, Task> lead, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (!await TryAcquireOrRenewAsync(cancellationToken))
            {
                if (!await DelayAsync(options.RetryPeriod, cancellationToken))
                {
                    return;
                }

                continue;
            }

            LogAcquired(options.Identity, options.LeaseNamespace, options.LeaseName);
            _isLeader = true;
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var work = Task.Run(() => lead(leading.Token), CancellationToken.None);
            var lastRenew = time.GetUtcNow();
            while (!cancellationToken.IsCancellationRequested && !work.IsCompleted)
            {
                // WhenAny never throws: a cancelled delay just ends the wait.
                await Task.WhenAny(work, Task.Delay(options.RetryPeriod, time, cancellationToken));
                if (cancellationToken.IsCancellationRequested || work.IsCompleted)
                {
                    break;
                }

                if (await TryAcquireOrRenewAsync(cancellationToken))
                {
                    lastRenew = time.GetUtcNow();
                }
                else if (time.GetUtcNow() - lastRenew >= options.RenewDeadline || _observedHolder != options.Identity)
                {
                    LogLost(options.Identity, _observedHolder);
                    break;
                }
            }

            _isLeader = false;
            await leading.CancelAsync();
            try
            {
                await work;
            }
            catch (OperationCanceledException)
            {
                // The lead function stopped because leadership ended.
            }

            if (cancellationToken.IsCancellationRequested)
            {
                await ReleaseAsync();
                return;
            }
        }
    }

    /// <summary>One round: create the Lease, renew ours, or take an expired one. True when we hold it after.</summary>
    private async Task<bool> TryAcquireOrRenewAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        try
        {
            V1Lease? lease;
            try
            {
                lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(options.LeaseName, options.LeaseNamespace, cancellationToken: cancellationToken);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                lease = null;
            }

            if (lease is null)
            {
                await client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
                {
                    Metadata = new V1ObjectMeta { Name = options.LeaseName, NamespaceProperty = options.LeaseNamespace },
                    Spec = NewSpec(now, acquired: true, transitions: 0),
                }, options.LeaseNamespace, cancellationToken: cancellationToken);
                Observe(options.Identity, $"{options.Identity}@new", now);
                return true;
            }

            var spec = lease.Spec ?? new V1LeaseSpec();
            var holder = string.IsNullOrEmpty(spec.HolderIdentity) ? null : spec.HolderIdentity;
            var record = $"{holder}@{spec.RenewTime:O}@{spec.LeaseTransitions}";
            if (record != _observedRecord)
            {
                Observe(holder, record, now);
            }

            var duration = TimeSpan.FromSeconds(spec.LeaseDurationSeconds ?? (int)options.LeaseDuration.TotalSeconds);
            var ours = holder == options.Identity;
            if (!ours && holder is not null && now - _observedAt < duration)
            {
                return false;
            }

            lease.Spec = ours
                ? NewSpec(now, acquired: false, transitions: spec.LeaseTransitions ?? 0, acquireTime: spec.AcquireTime)
                : NewSpec(now, acquired: true, transitions: (spec.LeaseTransitions ?? 0) + 1);
            var written = await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, options.LeaseName, options.LeaseNamespace, cancellationToken: cancellationToken);
            var writtenSpec = written.Spec;
            Observe(options.Identity, $"{options.Identity}@{writtenSpec.RenewTime:O}@{writtenSpec.LeaseTransitions}", now);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Someone else wrote the Lease between our read and write: they won this round.
            return false;
        }
#pragma warning disable CA1031 // An unreachable API server is a lost round, not a crash: the loop retries.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRoundFailed(e, options.LeaseNamespace, options.LeaseName);
            return false;
        }
    }

    private void Observe(string? holder, string record, DateTimeOffset now)
    {
        _observedHolder = holder;
        _observedRecord = record;
        _observedAt = now;
    }

    private V1LeaseSpec NewSpec(DateTimeOffset now, bool acquired, int transitions, DateTime? acquireTime = null) => new()
    {
        HolderIdentity = options.Identity,
        LeaseDurationSeconds = (int)Math.Ceiling(options.LeaseDuration.TotalSeconds),
        AcquireTime = acquired ? now.UtcDateTime : acquireTime ?? now.UtcDateTime,
        RenewTime = now.UtcDateTime,
        LeaseTransitions = transitions,
    };

    /// <summary>Give the Lease up so another instance takes over at once rather than after it lapses.</summary>
    private async Task ReleaseAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        try
        {
            var lease = await client.CoordinationV1.ReadNamespacedLeaseAsync(options.LeaseName, options.LeaseNamespace, cancellationToken: timeout.Token);
            if (lease.Spec?.HolderIdentity != options.Identity)
            {
                return;
            }

            lease.Spec.HolderIdentity = null;
            lease.Spec.LeaseDurationSeconds = 1;
            lease.Spec.RenewTime = time.GetUtcNow().UtcDateTime;
            await client.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, options.LeaseName, options.LeaseNamespace, cancellationToken: timeout.Token);
            LogReleased(options.Identity, options.LeaseNamespace, options.LeaseName);
        }
#pragma warning disable CA1031 // Best effort: if the release fails, the Lease lapses after its duration.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogRoundFailed(e, options.LeaseNamespace, options.LeaseName);
        }
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, time, cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Identity} became the leader (Lease {Namespace}/{Name})")]
    private partial void LogAcquired(string identity, string @namespace, string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Identity} lost leadership (Lease holder now {Holder}); reconciling stops")]
    private partial void LogLost(string identity, string? holder);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Identity} released the Lease {Namespace}/{Name}")]
    private partial void LogReleased(string identity, string @namespace, string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Leader election round on Lease {Namespace}/{Name} failed")]
    private partial void LogRoundFailed(Exception exception, string @namespace, string name);
}
