using System.Net;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RaftKv.Operator.Controllers;
using RaftKv.Operator.Runtime;

namespace RaftKv.Operator;

/// <summary>
/// The running operator, composed on the ASP.NET Core host: options bound from configuration, the
/// controller as a hosted service, and <c>/healthz</c>, <c>/readyz</c>, <c>/metrics</c> on
/// <see cref="OperatorOptions.MetricsAddress"/>. The host stops gracefully on SIGTERM and Ctrl-C: the
/// leader finishes its reconcile in flight, releases the Lease, and exits.
/// </summary>
internal static class OperatorApp
{
    /// <param name="settings">Configuration keys (<c>Operator:Namespace</c>, <c>Logging:LogLevel:Default</c>, ...).</param>
    /// <param name="client">The Kubernetes client to use.</param>
    /// <param name="configure">Replaces services, e.g. the member view in tests (registrations here win over the defaults).</param>
    public static WebApplication Build(IEnumerable<KeyValuePair<string, string?>> settings, IKubernetes client, Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Services.AddOptions<OperatorOptions>()
            .Bind(builder.Configuration.GetSection(OperatorOptions.Section))
            .Validate(o => o.Validate().Count == 0, "invalid operator settings")
            .ValidateOnStart();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));

        configure?.Invoke(builder.Services);
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(client);
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<OperatorOptions>>().Value);
        services.TryAddSingleton<ControllerMetrics>();
        services.TryAddSingleton<IRaftMembers, EtcdRaftMembers>();
        services.TryAddSingleton(sp => new OperatorIdentity(sp.GetRequiredService<OperatorOptions>()));
        services.TryAddSingleton<IEventRecorder>(sp => new EventRecorder(sp.GetRequiredService<IKubernetes>(), Cli.ProgramName,
            sp.GetRequiredService<OperatorIdentity>().Value, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<EventRecorder>>()));
        services.TryAddSingleton(sp => new ClusterInformers(sp.GetRequiredService<IKubernetes>(), sp.GetRequiredService<OperatorOptions>().Namespace,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton(sp => new WorkQueue<string>(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<RaftClusterReconciler>();
        services.TryAddSingleton<RaftClusterController>();
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<OperatorOptions>();
            return new LeaderElector(sp.GetRequiredService<IKubernetes>(), new LeaderElectionOptions
            {
                LeaseName = o.LeaseName,
                LeaseNamespace = LeaseNamespace(o),
                Identity = sp.GetRequiredService<OperatorIdentity>().Value,
                LeaseDuration = o.LeaseDuration,
                RenewDeadline = o.RenewDeadline,
                RetryPeriod = o.RetryPeriod,
            }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<LeaderElector>>());
        });
        services.AddHostedService<OperatorService>();

        var listen = builder.Configuration[$"{OperatorOptions.Section}:{nameof(OperatorOptions.MetricsAddress)}"] ?? new OperatorOptions().MetricsAddress;
        if (!IPEndPoint.TryParse(listen, out var endpoint))
        {
            throw new ArgumentException($"metrics address '{listen}' is not HOST:PORT with a numeric IP, e.g. 0.0.0.0:8080 or 127.0.0.1:0", nameof(settings));
        }

        builder.WebHost.UseKestrel(k => k.Listen(endpoint));
        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (ClusterInformers informers) => informers.HasSynced
            ? Results.Text("ok\n")
            : Results.Text("informers have not synced yet\n", statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapGet("/metrics", async (HttpContext context, ControllerMetrics metrics) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted);
        });
        return app;
    }

    /// <summary>The address the health and metrics server listens on (after start).</summary>
    public static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));

    private static string LeaseNamespace(OperatorOptions o) =>
        !string.IsNullOrEmpty(o.LeaseNamespace) ? o.LeaseNamespace
        : !string.IsNullOrEmpty(o.Namespace) ? o.Namespace
        : Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } podNamespace ? podNamespace
        : "default";
}

/// <summary>This instance's name in the Lease and in Events.</summary>
internal sealed class OperatorIdentity(OperatorOptions options)
{
    public string Value { get; } = !string.IsNullOrEmpty(options.Identity)
        ? options.Identity
        : $"{(Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod ? pod : Environment.MachineName)}_{Guid.NewGuid():N}";
}

/// <summary>Runs the informers for the life of the process and the controller while this instance leads.</summary>
internal sealed partial class OperatorService(
    ClusterInformers informers,
    RaftClusterController controller,
    LeaderElector elector,
    OperatorOptions options,
    ControllerMetrics metrics,
    ILogger<OperatorService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        LogStarting(string.IsNullOrEmpty(options.Namespace) ? "all namespaces" : options.Namespace, options.LeaderElection ? elector.Identity : "(leader election off)");
        var informing = informers.RunAsync(stoppingToken);
        if (options.LeaderElection)
        {
            await elector.RunAsync(async leading =>
            {
                metrics.IsLeader.Set(1);
                try
                {
                    await controller.RunAsync(leading);
                }
                finally
                {
                    metrics.IsLeader.Set(0);
                }
            }, stoppingToken);
        }
        else
        {
            metrics.IsLeader.Set(1);
            await controller.RunAsync(stoppingToken);
        }

        await informing;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "raftkv-operator starting: watching {Scope}, identity {Identity}")]
    private partial void LogStarting(string scope, string identity);
}
