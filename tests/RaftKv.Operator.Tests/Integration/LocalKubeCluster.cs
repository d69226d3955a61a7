using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using LocalKube;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tests.Runtime;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>
/// An in-process local control plane (LocalKube's API server and its controllers, no pod runtime) on a
/// free loopback port, with the RaftCluster CRD from config/crd applied. Shared by a test class; each
/// test works in a namespace of its own.
/// </summary>
public class LocalKubeCluster : IAsyncLifetime
{
    private LocalKubeServer? _server;
    private int _namespaces;

    public string Directory { get; } = Path.Combine(Path.GetTempPath(), "raftkv-operator-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public string KubeconfigPath => Path.Combine(Directory, "kubeconfig");

    /// <summary>Changes the API server keeps for watches; older resourceVersions get 410 Gone.</summary>
    protected virtual int WatchHistory => 20_000;

    public Kubernetes Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        System.IO.Directory.CreateDirectory(Directory);
        _server = await LocalKubeServer.StartAsync(new LocalKubeOptions
        {
            KubeconfigPath = KubeconfigPath,
            BookmarkInterval = TimeSpan.FromMilliseconds(300),
            WatchHistory = WatchHistory,
        });
        Client = NewClient();
        var crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(await File.ReadAllTextAsync(RepositoryFiles.PathOf("config/crd/raftkv.io_raftclusters.yaml")));
        await Client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd);
        await Eventually.Until(
            async () => await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(crd.Metadata.Name),
            c => c.Status?.Conditions?.Any(x => x.Type == "Established" && x.Status == "True") == true,
            c => KubernetesJson.Serialize(c.Status));
    }

    /// <summary>A client of its own (tests that cut connections need one the others do not share).</summary>
    public Kubernetes NewClient(params DelegatingHandler[] handlers) =>
        new(KubernetesClientConfiguration.BuildConfigFromConfigFile(KubeconfigPath), handlers);

    /// <summary>A fresh namespace for one test.</summary>
    public async Task<string> NewNamespaceAsync(string prefix)
    {
        var name = $"{prefix}-{Interlocked.Increment(ref _namespaces)}";
        await Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = name } });
        return name;
    }

    internal async Task<RaftCluster> CreateClusterAsync(string ns, string name, int replicas = 3, Action<RaftClusterSpec>? edit = null)
    {
        var cluster = new RaftCluster
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
            Spec = new RaftClusterSpec { Replicas = replicas, Storage = new RaftClusterStorage { StorageClassName = "local-ssd", Size = "1Gi" } },
        };
        edit?.Invoke(cluster.Spec);
        return await Client.CustomObjects.CreateNamespacedCustomObjectAsync<RaftCluster>(cluster, RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural);
    }

    internal async Task<RaftCluster?> GetClusterAsync(string ns, string name)
    {
        try
        {
            return await Client.CustomObjects.GetNamespacedCustomObjectAsync<RaftCluster>(RaftCluster.Group, RaftCluster.Version, ns, RaftCluster.Plural, name);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }
    }
}
