using Grpc.Core;
using Microsoft.Extensions.Logging;
using RaftKv.Protocol.Internal;
using RaftKv.Server.Node;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Leases;

/// <summary>
/// Runs lease expiry on each member: follows leadership (promote on becoming leader, demote otherwise) and, while leader,
/// looks for expired leases every <see cref="CheckInterval"/> and proposes their revoke through Raft, so every member deletes
/// the attached keys in the same revision.
/// </summary>
internal sealed partial class LeaseKeeper : IAsyncDisposable
{
    /// <summary>How often the leader looks for expired leases (etcd's lessor checks every 500 ms).</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(500);

    private readonly RaftMember _member;
    private readonly MvccStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    public LeaseKeeper(RaftMember member, MvccStore store, Lessor lessor, TimeProvider time, ILogger logger)
    {
        _member = member;
        _store = store;
        Lessor = lessor;
        _time = time;
        _logger = logger;
        member.LeaderChanged += OnLeaderChanged;
    }

    public Lessor Lessor { get; }

    public void Start() => _loop = Task.Run(RunAsync);

    private void OnLeaderChanged(ulong leader)
    {
        if (leader == _member.MemberId)
        {
            Lessor.Promote();
            LogPromoted(_logger, _member.MemberId);
        }
        else
        {
            Lessor.Demote();
        }
    }

    private async Task RunAsync()
    {
        var ct = _stopping.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(CheckInterval, _time, ct).ConfigureAwait(false);
                if (_member.Leader == _member.MemberId)
                {
                    foreach (var id in Lessor.Expired(_store.Leases()))
                    {
                        LogExpired(_logger, id);
                        _ = RevokeAsync(id, ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    private async Task RevokeAsync(long id, CancellationToken ct)
    {
        try
        {
            await _member.ProposeAsync(new InternalRequest { LeaseRevoke = new RaftKv.Protocol.Etcd.LeaseRevokeRequest { ID = id } }, ct).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            // Not revoked (lost leadership, already gone): the next leader, or the next check after Lessor.RevokeRetry, decides again.
            LogRevokeFailed(_logger, id, e.Status.Detail);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _member.LeaderChanged -= OnLeaderChanged;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "member {Member:x} leads: every lease runs its full TTL from now")]
    private static partial void LogPromoted(ILogger logger, ulong member);

    [LoggerMessage(Level = LogLevel.Information, Message = "lease {Lease:x} expired; revoking it")]
    private static partial void LogExpired(ILogger logger, long lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "revoking expired lease {Lease:x} failed: {Reason}")]
    private static partial void LogRevokeFailed(ILogger logger, long lease, string reason);
}
