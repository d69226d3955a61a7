using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Tls;
using RaftKv.Protocol.Admin;
using RaftKv.Protocol.Etcd;
using RaftKv.TestPki;

namespace RaftKv.Operator.Tests.Controllers;

/// <summary>EtcdRaftMembers against in-process gRPC members speaking etcd's Maintenance/Cluster API and raftkv's Admin service.</summary>
public sealed class EtcdRaftMembersTests : IAsyncLifetime
{
    private static readonly ClusterNames Names = new("demo", "ns", "cluster.local");
    private readonly List<WebApplication> _apps = [];
    private readonly Dictionary<ulong, FakeMember> _members = [];
    private readonly List<MemberEndpoint> _endpoints = [];

    public async Task InitializeAsync()
    {
        // demo-0 (id 1) leads, demo-1 (id 2) follows, demo-2 (id 3) is a learner whose pod has no address yet.
        var list = new List<Member>
        {
            new() { ID = 1, Name = "demo-0", PeerURLs = { Names.PeerUrl(0) } },
            new() { ID = 2, Name = "demo-1", PeerURLs = { Names.PeerUrl(1) } },
            new() { ID = 3, Name = "", PeerURLs = { Names.PeerUrl(2) }, IsLearner = true },
        };
        for (var i = 0; i < 2; i++)
        {
            var member = new FakeMember((ulong)i + 1, leader: 1, list, raftIndex: i == 0 ? 1000UL : 995UL);
            _members[member.Id] = member;
            _endpoints.Add(new MemberEndpoint(i, await StartAsync(member)));
        }

        _members[1].Peers.Add(new PeerRtt { MemberId = 2, Rtt = new LatencySummary { Count = 10, P50Seconds = 0.002, P99Seconds = 0.004 } });
        _members[1].Peers.Add(new PeerRtt { MemberId = 3, Rtt = new LatencySummary { Count = 10, P50Seconds = 0.003, P99Seconds = 0.009 } });
        _members[2].Peers.Add(new PeerRtt { MemberId = 1, Rtt = new LatencySummary { Count = 10, P50Seconds = 0.005, P99Seconds = 0.006 } });
        _members[2].FsyncP99 = 0.012;
    }

    [Fact]
    public async Task Observe_reports_members_by_ordinal_the_leader_health_catch_up_rtt_measurements_and_timing()
    {
        using var client = new EtcdRaftMembers(NullLogger<EtcdRaftMembers>.Instance, TimeProvider.System);

        var seen = await client.ObserveAsync(new MemberTarget(Names, _endpoints), CancellationToken.None);

        Assert.Equal(1UL, seen.LeaderId);
        Assert.Equal(
            [(0, 1UL, false, true, true), (1, 2UL, false, true, true), (2, 3UL, true, false, false)],
            seen.Members.Select(m => (m.Ordinal!.Value, m.Id, m.IsLearner, m.Healthy, m.CaughtUp)).ToList());
        Assert.Equal(TimeSpan.FromMilliseconds(2), seen.Members[1].Rtt);
        Assert.NotNull(seen.Measurements);
        Assert.Equal(TimeSpan.FromMilliseconds(5), seen.Measurements.RttP50);
        Assert.Equal(TimeSpan.FromMilliseconds(9), seen.Measurements.RttP99);
        Assert.Equal(TimeSpan.FromMilliseconds(12), seen.Measurements.FsyncP99);
        Assert.Equal((TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(1000)), (seen.TimingInForce!.HeartbeatInterval, seen.TimingInForce.ElectionTimeout));
        Assert.Empty(seen.LostVolumes);
    }

    [Fact]
    public async Task A_pod_answering_under_another_id_than_its_listed_member_lost_its_volume()
    {
        _members[2].AnswerAs = 99;
        using var client = new EtcdRaftMembers(NullLogger<EtcdRaftMembers>.Instance, TimeProvider.System);

        var seen = await client.ObserveAsync(new MemberTarget(Names, _endpoints), CancellationToken.None);

        Assert.Equal([1], seen.LostVolumes.Order().ToList());
    }

    [Fact]
    public async Task Changes_go_to_the_leader_and_timing_to_every_member()
    {
        using var client = new EtcdRaftMembers(NullLogger<EtcdRaftMembers>.Instance, TimeProvider.System);
        var target = new MemberTarget(Names, [.. Enumerable.Reverse(_endpoints)]);

        var id = await client.AddLearnerAsync(target, Names.PeerUrl(3), CancellationToken.None);
        await client.PromoteAsync(target, id, CancellationToken.None);
        await client.MoveLeaderAsync(target, 2, CancellationToken.None);
        await client.RemoveAsync(target, 3, CancellationToken.None);
        var applied = await client.SetTimingAsync(target, new Operator.Tuning.RaftTiming(TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(1500)), CancellationToken.None);

        Assert.Equal($"add learner {Names.PeerUrl(3)}; promote 42; move leader to 2; remove 3; timing 150/1500", string.Join("; ", _members[1].Calls));
        Assert.Equal("timing 150/1500", string.Join("; ", _members[2].Calls));
        Assert.Equal(2, applied);
    }

    [Fact]
    public async Task No_reachable_member_is_an_empty_observation_and_a_change_fails_saying_so()
    {
        using var client = new EtcdRaftMembers(NullLogger<EtcdRaftMembers>.Instance, TimeProvider.System) { CallTimeout = TimeSpan.FromSeconds(2) };
        var nowhere = new MemberTarget(Names, [new MemberEndpoint(0, "http://127.0.0.1:1")]);

        var seen = await client.ObserveAsync(nowhere, CancellationToken.None);
        Assert.Empty(seen.Members);
        Assert.Null(seen.LeaderId);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => client.PromoteAsync(nowhere, 3, CancellationToken.None));
        Assert.Contains("no member of demo could be reached", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Over_tls_the_member_must_chain_to_the_cluster_ca_and_name_its_stable_host_and_sees_the_operators_certificate()
    {
        using var ca = new TestCa("cluster CA");
        using var otherCa = new TestCa("another CA");
        var member = new FakeMember(7, leader: 7, [new Member { ID = 7, Name = "demo-0", PeerURLs = { Names.PeerUrl(0) } }], raftIndex: 10);
        var served = ca.Issue("demo-0", ["*.demo-peers.ns.svc.cluster.local"]);
        using var serverCertificate = X509Certificate2.CreateFromPem(served.Certificate, served.Key);
        var trusted = new X509Certificate2Collection();
        trusted.ImportFromPem(ca.CertificatePem);
        var address = (await StartAsync(member, serverCertificate, trusted)).Replace("http://", "https://", StringComparison.Ordinal);
        var clientPair = ca.Issue("raftkv-operator", uses: [TestCa.ClientAuth]);
        using var clientCertificate = X509Certificate2.CreateFromPem(clientPair.Certificate, clientPair.Key);
        var otherTrusted = new X509Certificate2Collection();
        otherTrusted.ImportFromPem(otherCa.CertificatePem);
        using var client = new EtcdRaftMembers(NullLogger<EtcdRaftMembers>.Instance, TimeProvider.System) { CallTimeout = TimeSpan.FromSeconds(5) };

        async Task<ulong?> LeaderSeen(MemberClientCredentials credentials, int ordinal) =>
            (await client.ObserveAsync(new MemberTarget(Names, [new MemberEndpoint(ordinal, address)], credentials), CancellationToken.None)).LeaderId;

        Assert.Equal(7UL, await LeaderSeen(new MemberClientCredentials(trusted, clientCertificate, "v1"), 0));
        // A member certificate from another CA, or one that does not name the member called, is not trusted.
        Assert.Null(await LeaderSeen(new MemberClientCredentials(otherTrusted, clientCertificate, "v2"), 0));
        var otherNames = new ClusterNames("other", "ns", "cluster.local", clientTls: true);
        Assert.Null((await client.ObserveAsync(new MemberTarget(otherNames, [new MemberEndpoint(0, address)], new MemberClientCredentials(trusted, clientCertificate, "v4")), CancellationToken.None)).LeaderId);
        // Without its client certificate the member refuses the operator.
        Assert.Null(await LeaderSeen(new MemberClientCredentials(trusted, null, "v5"), 0));
        // With it again (a new version: a rotated Secret), the same address is reachable again.
        Assert.Equal(7UL, await LeaderSeen(new MemberClientCredentials(trusted, clientCertificate, "v6"), 0));
    }

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private async Task<string> StartAsync(FakeMember member, X509Certificate2? serverCertificate = null, X509Certificate2Collection? clientCa = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            if (serverCertificate is not null)
            {
                // As a member with --client-cert-auth: a client certificate chaining to the CA is required.
                o.UseHttps(serverCertificate, https =>
                {
                    https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                    https.ClientCertificateValidation = (certificate, _, _) =>
                    {
                        using var chain = new X509Chain();
                        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                        chain.ChainPolicy.CustomTrustStore.AddRange(clientCa!);
                        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                        return chain.Build(certificate);
                    };
                });
            }
        }));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(member);
        builder.Services.AddSingleton(member.Maintenance);
        builder.Services.AddSingleton(member.Cluster);
        builder.Services.AddSingleton(member.Admin);
        var app = builder.Build();
        app.MapGrpcService<FakeMember.MaintenanceService>();
        app.MapGrpcService<FakeMember.ClusterService>();
        app.MapGrpcService<FakeMember.AdminService>();
        await app.StartAsync();
        _apps.Add(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    private sealed class FakeMember
    {
        public FakeMember(ulong id, ulong leader, List<Member> list, ulong raftIndex)
        {
            Id = id;
            Maintenance = new MaintenanceService(this);
            Cluster = new ClusterService(this);
            Admin = new AdminService(this);
            Leader = leader;
            List = list;
            RaftIndex = raftIndex;
        }

        public ulong Id { get; }

        public ulong? AnswerAs { get; set; }

        public ulong Leader { get; }

        public List<Member> List { get; }

        public ulong RaftIndex { get; }

        public List<PeerRtt> Peers { get; } = [];

        public double FsyncP99 { get; set; } = 0.001;

        public List<string> Calls { get; } = [];

        public MaintenanceService Maintenance { get; }

        public ClusterService Cluster { get; }

        public AdminService Admin { get; }

        private ResponseHeader Header() => new() { MemberId = AnswerAs ?? Id };

        public sealed class MaintenanceService(FakeMember m) : RaftKv.Protocol.Etcd.Maintenance.MaintenanceBase
        {
            public override Task<StatusResponse> Status(StatusRequest request, ServerCallContext context) =>
                Task.FromResult(new StatusResponse { Header = m.Header(), Leader = m.Leader, RaftIndex = m.RaftIndex, RaftAppliedIndex = m.RaftIndex });

            public override Task<MoveLeaderResponse> MoveLeader(MoveLeaderRequest request, ServerCallContext context)
            {
                m.Calls.Add($"move leader to {request.TargetID}");
                return Task.FromResult(new MoveLeaderResponse { Header = m.Header() });
            }
        }

        public sealed class ClusterService(FakeMember m) : RaftKv.Protocol.Etcd.Cluster.ClusterBase
        {
            public override Task<MemberListResponse> MemberList(MemberListRequest request, ServerCallContext context) =>
                Task.FromResult(new MemberListResponse { Header = m.Header(), Members = { m.List } });

            public override Task<MemberAddResponse> MemberAdd(MemberAddRequest request, ServerCallContext context)
            {
                m.Calls.Add($"add {(request.IsLearner ? "learner" : "voter")} {string.Join(",", request.PeerURLs)}");
                return Task.FromResult(new MemberAddResponse { Header = m.Header(), Member = new Member { ID = 42, PeerURLs = { request.PeerURLs }, IsLearner = request.IsLearner } });
            }

            public override Task<MemberPromoteResponse> MemberPromote(MemberPromoteRequest request, ServerCallContext context)
            {
                m.Calls.Add($"promote {request.ID}");
                return Task.FromResult(new MemberPromoteResponse { Header = m.Header() });
            }

            public override Task<MemberRemoveResponse> MemberRemove(MemberRemoveRequest request, ServerCallContext context)
            {
                m.Calls.Add($"remove {request.ID}");
                return Task.FromResult(new MemberRemoveResponse { Header = m.Header() });
            }
        }

        public sealed class AdminService(FakeMember m) : Admin.AdminBase
        {
            public override Task<MeasurementsResponse> Measurements(MeasurementsRequest request, ServerCallContext context) => Task.FromResult(new MeasurementsResponse
            {
                MemberId = m.Id,
                LeaderId = m.Leader,
                Peers = { m.Peers },
                WalFsync = new LatencySummary { Count = 100, P50Seconds = 0.0005, P99Seconds = m.FsyncP99 },
                Timing = new Timing { HeartbeatIntervalMs = 100, ElectionTimeoutMs = 1000 },
            });

            public override Task<SetTimingResponse> SetTiming(SetTimingRequest request, ServerCallContext context)
            {
                m.Calls.Add($"timing {request.Timing.HeartbeatIntervalMs}/{request.Timing.ElectionTimeoutMs}");
                return Task.FromResult(new SetTimingResponse { Timing = request.Timing });
            }
        }
    }
}
