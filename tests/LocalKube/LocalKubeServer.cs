using System.Net;
using System.Text.Json.Nodes;
using LocalKube.Api;
using LocalKube.Controllers;
using LocalKube.Runtime;
using LocalKube.Storage;
using LocalKube.Validation;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace LocalKube;

/// <summary>Settings of a local control plane.</summary>
public sealed record LocalKubeOptions
{
    /// <summary>Loopback address to listen on (127.0.0.0/8 only).</summary>
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>Port; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Where to write a kubeconfig for kubectl and clients; null writes none.</summary>
    public string? KubeconfigPath { get; init; }

    /// <summary>How often watches that allow bookmarks receive one.</summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many past changes the store keeps for watches that resume from a resourceVersion; older
    /// resourceVersions get 410 Gone.</summary>
    public int WatchHistory { get; init; } = 20_000;

    /// <summary>The pod runtime (nodes, scheduler, workload controllers, kubelet, endpoints); null runs the API
    /// server and its own controllers only.</summary>
    public RuntimeOptions? Runtime { get; init; }

    /// <summary>Minimum log level of the server's own logs.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;
}

/// <summary>A running local control plane: the API server on a loopback port and its controllers (garbage
/// collector, namespaces, CRD cleanup). Start with <see cref="StartAsync"/>, stop by disposing.</summary>
public sealed class LocalKubeServer : IAsyncDisposable
{
    private readonly LocalKubeOptions _options;
    private readonly ApiEndpoints _endpoints;
    private readonly InMemoryObjectStore _store;
    private readonly SemaphoreSlim _restart = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private WebApplication _app;
    private readonly List<Task> _controllers = [];
    private Kubelet? _kubelet;
    private ServiceProxy? _proxy;
    private PodLinks? _links;

    private LocalKubeServer(LocalKubeOptions options, WebApplication app, ApiEndpoints endpoints, InMemoryObjectStore store, ResourceService service, Uri url, string? kubeconfig)
    {
        _options = options;
        _app = app;
        _endpoints = endpoints;
        _store = store;
        Service = service;
        Url = url;
        KubeconfigPath = kubeconfig;
    }

    /// <summary>The API server's base address, e.g. http://127.0.0.1:41234.</summary>
    public Uri Url { get; }

    /// <summary>The kubeconfig written at start, if any.</summary>
    public string? KubeconfigPath { get; }

    internal ResourceService Service { get; }

    public static async Task<LocalKubeServer> StartAsync(LocalKubeOptions options, CancellationToken cancellationToken = default)
    {
        var bytes = options.Address.GetAddressBytes();
        if (bytes.Length != 4 || bytes[0] != 127)
        {
            throw new ArgumentException($"localkube listens on loopback only (127.0.0.0/8), not {options.Address}", nameof(options));
        }

        var store = new InMemoryObjectStore(options.WatchHistory);
        var registry = new ResourceRegistry();
        var service = new ResourceService(store, registry, TimeProvider.System, new Random());
        var defaults = new BuiltInDefaults(service);
        service.AddAdmission(defaults);
        service.AddAdmission(new CustomResourceDefinitions(service));
        service.AddAdmission(new CustomResourceValidation());
        var endpoints = new ApiEndpoints(service, new ApiServerOptions { BookmarkInterval = options.BookmarkInterval });
        var app = BuildApp(options, options.Port, endpoints);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        defaults.ClusterIpBlock = PodAddressBlock(url.Port);

        var nsType = registry.Find("", "v1", "namespaces")!;
        foreach (var ns in new[] { "default", "kube-system", "kube-public", "kube-node-lease" })
        {
            service.Create(nsType, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } }, new WriteOptions());
        }

        if (options.KubeconfigPath is { } path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            await File.WriteAllTextAsync(path, Kubeconfig(url), cancellationToken);
        }

        var server = new LocalKubeServer(options, app, endpoints, store, service, url, options.KubeconfigPath);
        var loggerFactory = app.Services.GetRequiredService<ILoggerFactory>();
        server.Run(new GarbageCollector(service, loggerFactory.CreateLogger<GarbageCollector>()));
        server.Run(new NamespaceController(service, loggerFactory.CreateLogger<NamespaceController>()));
        server.Run(new CustomResourceDefinitions.Cleanup(service, loggerFactory.CreateLogger<CustomResourceDefinitions.Cleanup>()));
        if (options.Runtime is { } runtime)
        {
            Nodes.Create(service, runtime.NodeCount, runtime.Zones);
            var network = new PodNetwork(runtime.Root, PodAddressBlock(url.Port));
            var kubelet = new Kubelet(service, runtime, network, loggerFactory.CreateLogger<Kubelet>());
            service.GracefulDeletion = kubelet.NeedsGracefulDeletion;
            service.PodLogPath = (ns, name, uid, container) => PodWorker.LogPath(runtime.Root, ns, name, uid, container);
            server._kubelet = kubelet;
            server.Run(new Scheduler(service, loggerFactory.CreateLogger<Scheduler>()));
            server.Run(new ReplicaSetController(service, loggerFactory.CreateLogger<ReplicaSetController>()));
            server.Run(new DeploymentController(service, loggerFactory.CreateLogger<DeploymentController>()));
            server.Run(new StatefulSetController(service, loggerFactory.CreateLogger<StatefulSetController>()));
            server.Run(new EndpointsController(service, loggerFactory.CreateLogger<EndpointsController>()));
            server._proxy = new ServiceProxy(service, loggerFactory.CreateLogger<ServiceProxy>());
            server.Run(server._proxy);
            server._links = new PodLinks(service, network, runtime, loggerFactory.CreateLogger<PodLinks>());
            server.Run(server._links);
            server.Run(kubelet);
        }

        return server;
    }

    private static WebApplication BuildApp(LocalKubeOptions options, int port, ApiEndpoints endpoints)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.WebHost.UseKestrel(k => k.Listen(options.Address, port));
        var app = builder.Build();
        app.Run(endpoints.HandleAsync);
        return app;
    }

    /// <summary>
    /// Restarts the API server as a kube-apiserver restart looks to its clients: every connection (watches included)
    /// is cut, the port refuses connections for <paramref name="downtime"/>, then the server listens again on the same
    /// address and port with the same objects and resourceVersions (they live in etcd in a real cluster). The
    /// controllers and pods of this control plane keep running, as kubelets and running containers do. With
    /// <paramref name="forgetWatchHistory"/> the restarted server keeps no past changes (a fresh watch cache): a watch
    /// resumed from a resourceVersion older than the restart gets 410 Gone, so informers must list again.
    /// </summary>
    public async Task RestartApiServerAsync(TimeSpan downtime, bool forgetWatchHistory, CancellationToken cancellationToken = default)
    {
        await _restart.WaitAsync(cancellationToken);
        try
        {
            // No grace: open watches are aborted at once, as when the process dies.
            using (var now = new CancellationTokenSource())
            {
                await now.CancelAsync();
                await _app.StopAsync(now.Token);
            }

            await _app.DisposeAsync();
            if (forgetWatchHistory)
            {
                _store.ForgetHistory();
            }

            await Task.Delay(downtime, cancellationToken);
            _app = BuildApp(_options, Url.Port, _endpoints);
            await _app.StartAsync(cancellationToken);
        }
        finally
        {
            _restart.Release();
        }
    }

    /// <summary>The second octet of pod addresses: 2..251, from the API server's port.</summary>
    internal static int PodAddressBlock(int port) => 2 + (port % 250);

    private void Run(ControllerLoop controller) => _controllers.Add(Task.Run(() => controller.RunAsync(_stop.Token)));

    /// <summary>A kubeconfig for this server: one cluster, one user with a placeholder token (the server checks no
    /// credentials, but KubernetesClient insists on having some), one context.</summary>
    public static string Kubeconfig(Uri url) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: localkube
          cluster:
            server: {url.GetLeftPart(UriPartial.Authority)}
        users:
        - name: localkube
          user:
            token: localkube
        contexts:
        - name: localkube
          context:
            cluster: localkube
            user: localkube
            namespace: default
        current-context: localkube

        """;

    /// <summary>Server-side applies (field manager <c>localkube</c>, forced) every object of a YAML file, or of the
    /// .yaml/.yml/.json files of a directory, CustomResourceDefinitions first. Returns one line per object, as
    /// kubectl prints them; throws <see cref="InvalidOperationException"/> naming the object that failed.</summary>
    public IReadOnlyList<string> Apply(string path)
    {
        var files = Directory.Exists(path)
            ? Directory.GetFiles(path).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList()
            : [path];
        var objects = new List<JsonObject>();
        foreach (var file in files)
        {
            foreach (var doc in Yaml.ParseAll(File.ReadAllText(file)).OfType<JsonObject>())
            {
                objects.AddRange(Meta.Str(doc["kind"]) == "List" ? (doc["items"] as JsonArray ?? []).OfType<JsonObject>() : [doc]);
            }
        }

        var lines = new List<string>();
        foreach (var obj in objects.OrderBy(o => Meta.Str(o["kind"]) == "CustomResourceDefinition" ? 0 : Meta.Str(o["kind"]) == "Namespace" ? 1 : 2))
        {
            var apiVersion = Meta.Str(obj["apiVersion"]) ?? "";
            var kind = Meta.Str(obj["kind"]) ?? "";
            var name = Meta.Name(obj) ?? "";
            var type = Service.Registry.FindByKind(apiVersion, kind)
                ?? throw new InvalidOperationException($"{path}: no resource serves {apiVersion} {kind} (object \"{name}\"); is its CRD applied?");
            try
            {
                var (_, created) = Service.Patch(type, type.Namespaced ? Meta.Namespace(obj) ?? "default" : null, name, "application/apply-patch+yaml", obj.ToJsonString(), new WriteOptions(FieldManager: "localkube", Force: true));
                lines.Add($"{type.Kind.ToLowerInvariant()}{(type.Group.Length > 0 ? "." + type.Group : "")}/{name} {(created ? "created" : "configured")}");
            }
            catch (ApiException e)
            {
                throw new InvalidOperationException($"{path}: {kind} \"{name}\": {e.Message}", e);
            }
        }

        return lines;
    }

    /// <summary>Completes when the process is asked to stop (Ctrl-C, SIGTERM).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_controllers);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }

        if (_proxy is not null)
        {
            await _proxy.StopAsync();
        }

        if (_links is not null)
        {
            await _links.StopAsync();
        }

        if (_kubelet is not null)
        {
            // Every pod process this control plane started goes with it.
            await _kubelet.StopAllAsync();
        }

        await _restart.WaitAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stop.Dispose();
        _restart.Dispose();
    }
}
