using Grpc.Core;
using RaftKv.Protocol.Admin;
using RaftKv.Server.Node;
using RaftKv.Server.Observability;
using RaftKv.Server.Peers;

namespace RaftKv.Server.Api;

/// <summary>
/// raftkv's own admin service for the operator: measurements, live timing, and (test builds of a run only) peer and disk
/// faults. With auth enabled, the calls that change the member need the root role, as etcd's membership calls do;
/// measurements stay open, as etcd's Status does.
/// </summary>
internal sealed class AdminService : Admin.AdminBase
{
    private readonly RaftMember _member;
    private readonly LatencyWindow _walFsync;
    private readonly DiskFaults _diskFaults;
    private readonly string? _memberDir;
    private readonly bool _testHooksEnabled;
    private readonly Auth.AuthGate? _gate;

    public AdminService(RaftMember member, LatencyWindow walFsync, DiskFaults diskFaults, string? memberDir, bool testHooksEnabled, Auth.AuthGate? gate = null)
    {
        _gate = gate;
        _member = member;
        _walFsync = walFsync;
        _diskFaults = diskFaults;
        _memberDir = memberDir;
        _testHooksEnabled = testHooksEnabled;
    }

    public override Task<MeasurementsResponse> Measurements(MeasurementsRequest request, ServerCallContext context)
    {
        var (heartbeat, election) = _member.Timing;
        var response = new MeasurementsResponse
        {
            MemberId = _member.MemberId,
            Name = _member.Name,
            WalFsync = ToWire(_walFsync.Summarize()),
            Timing = new Timing { HeartbeatIntervalMs = (uint)heartbeat, ElectionTimeoutMs = (uint)election },
            LeaderId = _member.Leader,
        };
        foreach (var peer in _member.Transport.Describe())
        {
            response.Peers.Add(new PeerRtt
            {
                MemberId = peer.Id,
                Name = _member.Membership.Get(peer.Id)?.Name ?? "",
                Rtt = ToWire(peer.Rtt),
                Connected = peer.Connected,
            });
        }

        return Task.FromResult(response);
    }

    public override async Task<SetTimingResponse> SetTiming(SetTimingRequest request, ServerCallContext context)
    {
        if (request.Timing is null)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "timing is required: set heartbeat_interval_ms and election_timeout_ms"));
        }

        await RequireRootAsync(context).ConfigureAwait(false);
        var timing = new TimingSettings((int)Math.Min(request.Timing.HeartbeatIntervalMs, int.MaxValue), (int)Math.Min(request.Timing.ElectionTimeoutMs, int.MaxValue));
        if (timing.Validate() is { } problem)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, problem));
        }

        if (_memberDir is { } dir)
        {
            TimingStore.Save(dir, timing);
        }

        await _member.SetTimingAsync(timing.HeartbeatMs, timing.ElectionMs).ConfigureAwait(false);
        return new SetTimingResponse { Timing = request.Timing };
    }

    public override async Task<PeerFaultResponse> SetPeerFault(PeerFaultRequest request, ServerCallContext context)
    {
        if (!_testHooksEnabled)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"peer fault hooks are for tests only; start the member with {PeerFaults.EnableVariable}=1 to use them"));
        }

        if (request.Loss is < 0 or > 1)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"loss must be between 0 and 1 (got {request.Loss})"));
        }

        await RequireRootAsync(context).ConfigureAwait(false);
        _member.Transport.Faults.Set(request.PeerId, new PeerFault(TimeSpan.FromMilliseconds(request.DelayMs), request.Loss, request.Cut));
        return new PeerFaultResponse();
    }

    public override async Task<DiskFaultResponse> SetDiskFault(DiskFaultRequest request, ServerCallContext context)
    {
        if (!_testHooksEnabled)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"disk fault hooks are for tests only; start the member with {PeerFaults.EnableVariable}=1 to use them"));
        }

        await RequireRootAsync(context).ConfigureAwait(false);
        _diskFaults.FsyncDelay = TimeSpan.FromMilliseconds(request.FsyncDelayMs);
        return new DiskFaultResponse();
    }

    private Task RequireRootAsync(ServerCallContext context) => _gate?.RequireRootAsync(context) ?? Task.CompletedTask;

    private static RaftKv.Protocol.Admin.LatencySummary ToWire(Observability.LatencySummary s) => new()
    {
        Count = (ulong)s.Count,
        P50Seconds = s.P50.TotalSeconds,
        P99Seconds = s.P99.TotalSeconds,
        MaxSeconds = s.Max.TotalSeconds,
    };
}
