namespace LocalKube.Tests;

/// <summary>The real helm 4 against the local API server: server-side apply of the chart's objects and release
/// records kept in Secrets (which helm writes in protobuf).</summary>
public sealed class HelmTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>
{
    private string WriteChart()
    {
        var chart = Path.Combine(kube.Directory, "chart-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(chart, "templates"));
        File.WriteAllText(Path.Combine(chart, "Chart.yaml"), "apiVersion: v2\nname: demo\nversion: 0.1.0\n");
        File.WriteAllText(Path.Combine(chart, "values.yaml"), "replicas: 1\ngreeting: hello\n");
        File.WriteAllText(Path.Combine(chart, "templates", "objects.yaml"), """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-cfg
            data:
              greeting: {{ .Values.greeting | quote }}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ .Release.Name }}-web
            spec:
              replicas: {{ .Values.replicas }}
              selector:
                matchLabels: {app: {{ .Release.Name }}}
              template:
                metadata:
                  labels: {app: {{ .Release.Name }}}
                spec:
                  containers:
                  - name: web
                    image: raftkv
            """);
        return chart;
    }

    private Task<ToolResult> Helm(params string[] args)
    {
        var all = new List<string> { "--kubeconfig", kube.KubeconfigPath };
        all.AddRange(args);
        return LocalKubeFixture.Run(LocalKubeFixture.HelmPath, all, null, TimeSpan.FromSeconds(90));
    }

    private async Task<string> HelmOk(params string[] args)
    {
        var r = await Helm(args);
        Assert.True(r.ExitCode == 0, $"helm {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    [Fact]
    public async Task Install_upgrade_list_and_uninstall_a_chart()
    {
        var chart = WriteChart();
        var ns = await kube.NewNamespace("helm");
        Assert.Contains("STATUS: deployed", await HelmOk("install", "demo", chart, "-n", ns), StringComparison.Ordinal);
        Assert.Equal("1 hello", await kube.KubectlOk("-n", ns, "get", "deployment/demo-web", "configmap/demo-cfg", "-o", "jsonpath={.items[0].spec.replicas} {.items[1].data.greeting}"));

        await HelmOk("upgrade", "demo", chart, "-n", ns, "--set", "replicas=3", "--set", "greeting=hi");
        Assert.Equal("3 hi", await kube.KubectlOk("-n", ns, "get", "deployment/demo-web", "configmap/demo-cfg", "-o", "jsonpath={.items[0].spec.replicas} {.items[1].data.greeting}"));
        Assert.Matches(@"demo\s+" + ns + @"\s+2\s+.*deployed\s+demo-0\.1\.0", await HelmOk("list", "-n", ns));

        Assert.Contains("uninstalled", await HelmOk("uninstall", "demo", "-n", ns), StringComparison.Ordinal);
        Assert.Equal("", await kube.KubectlOk("-n", ns, "get", "deployments,configmaps,secrets", "-o", "name"));
    }

    [Fact]
    public async Task Kubectl_imperative_create_of_namespace_configmap_secret_and_serviceaccount()
    {
        // kubectl's typed clients send these in protobuf.
        var ns = $"imp-{Guid.NewGuid().ToString("N")[..6]}";
        await kube.KubectlOk("create", "namespace", ns);
        await kube.KubectlOk("-n", ns, "create", "configmap", "c", "--from-literal=k=v");
        await kube.KubectlOk("-n", ns, "create", "secret", "generic", "s", "--from-literal=password=p4ss");
        await kube.KubectlOk("-n", ns, "create", "serviceaccount", "bot");
        Assert.Equal("v cDRzcw== Opaque bot", await kube.KubectlOk("-n", ns, "get", "configmap/c", "secret/s", "serviceaccount/bot", "-o", "jsonpath={.items[0].data.k} {.items[1].data.password} {.items[1].type} {.items[2].metadata.name}"));
    }
}
