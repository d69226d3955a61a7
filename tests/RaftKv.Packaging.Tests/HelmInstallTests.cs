using System.Text.Json;
using LocalKube;
using LocalKube.Runtime;

namespace RaftKv.Packaging.Tests;

/// <summary>
/// The chart on the local control plane (tests/LocalKube, in-process, pods as local processes) with the
/// operator image mapped to bin/raftkv-operator: install → the operator Deployment becomes ready (its
/// /readyz probe: informers synced against the installed CRD); upgrade → the new pods roll out ready;
/// uninstall → the operator's objects go, the CRD stays (helm.sh/resource-policy: keep).
/// </summary>
public sealed class HelmInstallTests : IAsyncLifetime
{
    // Not under /tmp: the chart mounts an emptyDir at /tmp, and localkube rewrites that mount path in
    // container arguments, which would move the kubeconfig path given by flag into the pod's volume.
    private readonly string _dir = Path.Combine(AppContext.BaseDirectory, "helm-install-" + Guid.NewGuid().ToString("N")[..8]);
    private LocalKubeServer? _server;

    private string Kubeconfig => Path.Combine(_dir, "kubeconfig");

    public async Task InitializeAsync()
    {
        var program = Repo.PathOf("bin/raftkv-operator");
        if (!File.Exists(program))
        {
            throw new InvalidOperationException($"{program} is missing: run `make build` (it publishes bin/raftkv-operator, the program behind the operator image here)");
        }

        Directory.CreateDirectory(_dir);
        _server = await LocalKubeServer.StartAsync(new LocalKubeOptions
        {
            KubeconfigPath = Kubeconfig,
            BookmarkInterval = TimeSpan.FromMilliseconds(300),
            Runtime = new RuntimeOptions
            {
                Root = Path.Combine(_dir, "root"),
                Images = new Dictionary<string, string>(StringComparer.Ordinal) { ["raftkv-operator"] = program },
                MaxRestartBackoff = TimeSpan.FromSeconds(1),
            },
        });
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
    }

    private Task<ToolResult> Helm(params string[] args) => Repo.Run(Repo.Helm, ["--kubeconfig", Kubeconfig, .. args], TimeSpan.FromSeconds(120));

    private async Task<string> HelmOk(params string[] args)
    {
        var r = await Helm(args);
        Assert.True(r.ExitCode == 0, r.ToString() + await OperatorLogs());
        return r.Stdout;
    }

    private Task<ToolResult> Kubectl(params string[] args) =>
        Repo.Run(Repo.Kubectl, ["--kubeconfig", Kubeconfig, "--cache-dir", Path.Combine(_dir, "kubectl-cache"), .. args]);

    private async Task<string> KubectlOk(params string[] args)
    {
        var r = await Kubectl(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.Stdout;
    }

    /// <summary>The operator pods' logs, for failure messages.</summary>
    private Task<string> OperatorLogs()
    {
        var pods = Path.Combine(_dir, "root", "pods");
        if (!Directory.Exists(pods))
        {
            return Task.FromResult("\n(no pod logs)");
        }

        var logs = Directory.EnumerateFiles(pods, "*.log", SearchOption.AllDirectories)
            .Select(f => $"\n--- {Path.GetRelativePath(pods, f)}\n{string.Join('\n', File.ReadLines(f).TakeLast(20))}");
        return Task.FromResult(string.Concat(logs));
    }

    private async Task<JsonElement> Deployment(string ns, string name)
    {
        var json = await KubectlOk("-n", ns, "get", "deployment", name, "-o", "json");
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    private static int Int(JsonElement e, params string[] path)
    {
        foreach (var p in path)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(p, out e))
            {
                return 0;
            }
        }

        return e.ValueKind == JsonValueKind.Number ? e.GetInt32() : 0;
    }

    /// <summary>Every wanted replica of the current generation is updated and ready.</summary>
    private async Task WaitRolledOut(string ns, string name, int replicas)
    {
        JsonElement last = default;
        await Repo.WaitUntil(async () =>
        {
            last = await Deployment(ns, name);
            return Int(last, "status", "observedGeneration") == Int(last, "metadata", "generation")
                && Int(last, "spec", "replicas") == replicas
                && Int(last, "status", "updatedReplicas") == replicas
                && Int(last, "status", "readyReplicas") == replicas
                && Int(last, "status", "replicas") == replicas;
        }, async () => $"deployment status: {(last.ValueKind == JsonValueKind.Undefined ? "none" : last.GetProperty("status").ToString())}\n"
            + $"pods:\n{(await Kubectl("-n", ns, "get", "pods", "-o", "wide")).Stdout}{await OperatorLogs()}", TimeSpan.FromSeconds(90));
    }

    [Fact]
    public async Task Install_upgrade_and_uninstall_keep_the_CRD_and_run_a_ready_operator()
    {
        const string ns = "raftkv-system";
        // Pods here are processes without a service account token: the operator gets the kubeconfig by flag.
        string[] common = ["--namespace", ns, "--set", $"operator.extraArgs[0]=--kubeconfig={Kubeconfig}"];

        var install = await HelmOk(["install", "raftkv-operator", Repo.ChartDir, "--create-namespace", .. common]);
        Assert.Contains("STATUS: deployed", install, StringComparison.Ordinal);
        Assert.Contains("kind: RaftCluster", install, StringComparison.Ordinal);
        await WaitRolledOut(ns, "raftkv-operator", 2);
        Assert.Equal("True", await KubectlOk("get", "crd", "raftclusters.raftkv.io", "-o", "jsonpath={.status.conditions[?(@.type==\"Established\")].status}"));

        // One instance holds the Lease the chart named, in the release namespace.
        var holder = "";
        await Repo.WaitUntil(async () =>
        {
            var r = await Kubectl("-n", ns, "get", "lease", "raftkv-operator", "-o", "jsonpath={.spec.holderIdentity}");
            holder = r.Stdout;
            return r.ExitCode == 0 && holder.StartsWith("raftkv-operator-", StringComparison.Ordinal);
        }, async () => $"lease holder '{holder}'{await OperatorLogs()}", TimeSpan.FromSeconds(60));

        // Upgrade: one instance, another log level; the Deployment rolls to a ready pod of the new template.
        await HelmOk(["upgrade", "raftkv-operator", Repo.ChartDir, .. common, "--set", "replicaCount=1", "--set", "operator.logLevel=Debug"]);
        await WaitRolledOut(ns, "raftkv-operator", 1);
        Assert.Contains("--log-level=Debug", await KubectlOk("-n", ns, "get", "deployment", "raftkv-operator", "-o", "jsonpath={.spec.template.spec.containers[0].args}"), StringComparison.Ordinal);
        Assert.Matches(@"raftkv-operator\s+raftkv-system\s+2\s+.*deployed\s+raftkv-operator-0\.1\.0\s+0\.1\.0", await HelmOk("list", "-n", ns));

        Assert.Contains("uninstalled", await HelmOk("uninstall", "raftkv-operator", "-n", ns), StringComparison.Ordinal);
        await Repo.WaitUntil(async () => (await KubectlOk("-n", ns, "get", "deployments,services,serviceaccounts,roles,rolebindings", "-l", "app.kubernetes.io/instance=raftkv-operator", "-o", "name")).Length == 0,
            async () => await KubectlOk("-n", ns, "get", "deployments,services,serviceaccounts,roles,rolebindings", "-o", "name"), TimeSpan.FromSeconds(30));
        Assert.Equal("", await KubectlOk("get", "clusterroles,clusterrolebindings", "-l", "app.kubernetes.io/instance=raftkv-operator", "-o", "name"));
        Assert.Equal("customresourcedefinition.apiextensions.k8s.io/raftclusters.raftkv.io", (await KubectlOk("get", "crd", "raftclusters.raftkv.io", "-o", "name")).Trim());
    }
}
