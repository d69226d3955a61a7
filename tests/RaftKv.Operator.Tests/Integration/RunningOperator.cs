using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>A raftkv-operator composed exactly as the program composes it, with a model member view, started in-process.</summary>
internal sealed class RunningOperator : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _stopped;

    private RunningOperator(WebApplication app, string identity)
    {
        _app = app;
        Identity = identity;
    }

    public string Identity { get; }

    public Uri Address => OperatorApp.Address(_app);

    public RaftClusterController Controller => _app.Services.GetRequiredService<RaftClusterController>();

    public LeaderElector Elector => _app.Services.GetRequiredService<LeaderElector>();

    public ClusterInformers Informers => _app.Services.GetRequiredService<ClusterInformers>();

    /// <summary>Short leases, so a takeover happens within seconds; the defaults are client-go's.</summary>
    public static async Task<RunningOperator> StartAsync(IKubernetes client, IRaftMembers members, string watchNamespace, string identity,
        string leaseNamespace, string leaseName = "raftkv-operator")
    {
        var app = OperatorApp.Build(new Dictionary<string, string?>
        {
            ["Operator:Namespace"] = watchNamespace,
            ["Operator:MetricsAddress"] = "127.0.0.1:0",
            ["Operator:Identity"] = identity,
            ["Operator:LeaseName"] = leaseName,
            ["Operator:LeaseNamespace"] = leaseNamespace,
            ["Operator:LeaseDuration"] = "00:00:04",
            ["Operator:RenewDeadline"] = "00:00:03",
            ["Operator:RetryPeriod"] = "00:00:00.250",
            ["Operator:ProgressRequeue"] = "00:00:00.200",
            ["Operator:ResyncPeriod"] = "00:00:05",
            ["Logging:LogLevel:Default"] = "Warning",
        }, client, services => services.AddSingleton(members));
        await app.StartAsync();
        return new RunningOperator(app, identity);
    }

    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _app.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }
}
