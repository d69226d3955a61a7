namespace RaftKv.Packaging.Tests;

/// <summary>Runs helm on the repository's chart.</summary>
internal static class Chart
{
    /// <summary>Every optional part switched on.</summary>
    public static readonly string[] AllOptions =
    [
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.podMonitor.enabled=true",
        "--set", "metrics.prometheusRule.enabled=true",
        "--set", "grafanaDashboard.enabled=true",
        "--set", "localStorageClass.create=true",
        "--set", "imagePullSecrets[0].name=registry",
        "--set", "priorityClassName=system-cluster-critical",
        "--set", "nodeSelector.kubernetes\\.io/os=linux",
        "--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
        "--set", "operator.extraEnv[0].name=DOTNET_gcServer,operator.extraEnv[0].value=0",
        "--set", "operator.extraArgs[0]=--workers=4",
    ];

    public static Task<ToolResult> Template(params string[] args) =>
        Repo.Run(Repo.Helm, ["template", "rk", Repo.ChartDir, "--namespace", "raftkv-system", .. args]);

    public static async Task<List<Manifest>> Render(params string[] args)
    {
        var r = await Template(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return Manifests.Split(r.Stdout);
    }
}
