using System.Diagnostics;

namespace LocalKube.Tests;

/// <summary>The real kubectl 1.33 against the local API server.</summary>
public sealed class KubectlTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>
{
    private const string Deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: {app: web}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              containers:
              - name: web
                image: raftkv
                ports:
                - containerPort: 2379
                env:
                - name: A
                  value: "1"
                - name: B
                  value: "2"
        """;

    [Fact]
    public async Task Create_then_get_with_jsonpath_and_table_columns()
    {
        var ns = await kube.NewNamespace("create");
        var created = await kube.KubectlOkIn(Deployment, "-n", ns, "create", "-f", "-");
        Assert.Contains("deployment.apps/web created", created, StringComparison.Ordinal);

        var replicas = await kube.KubectlOk("-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}/{.metadata.generation}/{.spec.template.spec.containers[0].env[1].value}");
        Assert.Equal("2/1/2", replicas);

        var table = await kube.KubectlOk("-n", ns, "get", "deployments");
        Assert.Matches(@"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE", table);
        Assert.Matches(@"web\s+0/2\s+0\s+0\s+\d+s", table);

        var again = await kube.KubectlIn(Deployment, "-n", ns, "create", "-f", "-");
        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("AlreadyExists", again.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_side_apply_updates_lists_by_merge_key_and_bumps_generation()
    {
        var ns = await kube.NewNamespace("apply");
        Assert.Contains("created", await kube.KubectlOkIn(Deployment, "-n", ns, "apply", "-f", "-"), StringComparison.Ordinal);
        Assert.Contains("unchanged", await kube.KubectlOkIn(Deployment, "-n", ns, "apply", "-f", "-"), StringComparison.Ordinal);

        // Drop env B, change A, scale: a strategic merge patch computed by kubectl from the last applied configuration.
        var changed = Deployment.Replace("replicas: 2", "replicas: 3", StringComparison.Ordinal)
            .Replace("value: \"1\"", "value: \"9\"", StringComparison.Ordinal)
            .Replace("\n        - name: B\n          value: \"2\"", "", StringComparison.Ordinal);
        Assert.Contains("configured", await kube.KubectlOkIn(changed, "-n", ns, "apply", "-f", "-"), StringComparison.Ordinal);
        var result = await kube.KubectlOk("-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas} {.metadata.generation} {.spec.template.spec.containers[0].env[*].name}={.spec.template.spec.containers[0].env[*].value}");
        Assert.Equal("3 2 A=9", result);
    }

    [Fact]
    public async Task Server_side_apply_creates_updates_and_removes_fields_the_manager_dropped()
    {
        var ns = await kube.NewNamespace("ssa");
        var config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: \"1\", b: \"2\"}\ndata:\n  x: \"1\"\n  y: \"2\"\n";
        Assert.Contains("serverside-applied", await kube.KubectlOkIn(config, "-n", ns, "apply", "--server-side", "-f", "-"), StringComparison.Ordinal);
        var smaller = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: \"1\"}\ndata:\n  x: \"3\"\n";
        await kube.KubectlOkIn(smaller, "-n", ns, "apply", "--server-side", "-f", "-");
        var seen = await kube.KubectlOk("-n", ns, "get", "configmap", "c", "-o", "jsonpath={.data} {.metadata.labels}");
        Assert.Equal("{\"x\":\"3\"} {\"a\":\"1\"}", seen);

        // A second applier that sets a field the first one owns conflicts, unless forced.
        var other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: \"other\"\n";
        var conflict = await kube.KubectlIn(other, "-n", ns, "apply", "--server-side", "--field-manager", "other", "-f", "-");
        Assert.True(conflict.ExitCode != 0 && conflict.Stderr.Contains("conflict", StringComparison.OrdinalIgnoreCase), conflict.ToString());
        await kube.KubectlOkIn(other, "-n", ns, "apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", "-");
        Assert.Equal("other", await kube.KubectlOk("-n", ns, "get", "configmap", "c", "-o", "jsonpath={.data.x}"));
    }

    [Fact]
    public async Task Server_side_apply_removes_list_items_and_args_the_manager_dropped()
    {
        var ns = await kube.NewNamespace("ssa-lists");
        static string Set(string extraVolume, string extraMount, string extraArg) =>
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\nspec:\n  serviceName: s\n  replicas: 0\n  selector: {matchLabels: {app: s}}\n"
            + "  template:\n    metadata: {labels: {app: s}}\n    spec:\n      containers:\n      - name: c\n        image: raftkv\n"
            + $"        args: [\"--a\"{extraArg}]\n        volumeMounts:\n        - {{name: tmp, mountPath: /tmp}}\n{extraMount}"
            + $"      volumes:\n      - {{name: tmp, emptyDir: {{}}}}\n{extraVolume}";
        await kube.KubectlOkIn(Set("      - {name: restore, persistentVolumeClaim: {claimName: backups, readOnly: true}}\n",
            "        - {name: restore, mountPath: /restore, readOnly: true}\n", ", \"--restore\""), "-n", ns, "apply", "--server-side", "-f", "-");
        await kube.KubectlOkIn(Set("", "", ""), "-n", ns, "apply", "--server-side", "-f", "-");

        var seen = await kube.KubectlOk("-n", ns, "get", "statefulset", "s", "-o",
            "jsonpath={.spec.template.spec.volumes[*].name} | {.spec.template.spec.containers[0].volumeMounts[*].name} | {.spec.template.spec.containers[0].args}");
        Assert.Equal("tmp | tmp | [\"--a\"]", seen);
    }

    [Fact]
    public async Task Label_patch_scale_and_delete()
    {
        var ns = await kube.NewNamespace("edit");
        await kube.KubectlOkIn(Deployment, "-n", ns, "create", "-f", "-");
        await kube.KubectlOkIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata: {a: \"1\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n", "-n", ns, "create", "-f", "-");

        await kube.KubectlOk("-n", ns, "label", "configmap", "one", "tier=gold");
        Assert.Equal("configmap/one", (await kube.KubectlOk("-n", ns, "get", "configmaps", "-l", "tier=gold", "-o", "name")).Trim());
        Assert.Equal("configmap/two", (await kube.KubectlOk("-n", ns, "get", "configmaps", "-l", "!tier,kubernetes.io/metadata.name notin (x)", "-o", "name")).Trim());
        Assert.Equal("configmap/two", (await kube.KubectlOk("-n", ns, "get", "configmaps", "--field-selector", "metadata.name!=one", "-o", "name")).Trim());

        await kube.KubectlOk("-n", ns, "patch", "configmap", "one", "-p", "{\"data\":{\"b\":\"2\"}}");
        await kube.KubectlOk("-n", ns, "patch", "configmap", "one", "--type=json", "-p", "[{\"op\":\"remove\",\"path\":\"/data/a\"}]");
        await kube.KubectlOk("-n", ns, "patch", "deployment", "web", "-p", "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"raftkv:2\"}]}}}}");
        Assert.Equal("{\"b\":\"2\"}", await kube.KubectlOk("-n", ns, "get", "configmap", "one", "-o", "jsonpath={.data}"));
        Assert.Equal("raftkv:2 2379", await kube.KubectlOk("-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"));

        Assert.Contains("scaled", await kube.KubectlOk("-n", ns, "scale", "deployment", "web", "--replicas=5"), StringComparison.Ordinal);
        Assert.Equal("5", await kube.KubectlOk("-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"));

        Assert.Contains("deleted", await kube.KubectlOk("-n", ns, "delete", "configmap", "one"), StringComparison.Ordinal);
        var gone = await kube.Kubectl("-n", ns, "get", "configmap", "one");
        Assert.True(gone.ExitCode != 0 && gone.Stderr.Contains("NotFound", StringComparison.Ordinal), gone.ToString());
    }

    [Fact]
    public async Task Deleting_a_namespace_deletes_its_objects_then_the_namespace()
    {
        var ns = await kube.NewNamespace("gone");
        await kube.KubectlOkIn(Deployment, "-n", ns, "create", "-f", "-");
        await kube.KubectlOkIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n", "-n", ns, "create", "-f", "-");
        await kube.KubectlOk("delete", "namespace", ns, "--wait=false");

        // The finalizer holds the configmap, and so the namespace, until removed.
        await LocalKubeFixture.WaitUntil(
            async () => (await kube.Kubectl("-n", ns, "get", "deployment", "web")).ExitCode != 0,
            async () => (await kube.Kubectl("-n", ns, "get", "all,configmaps", "-o", "yaml")).ToString());
        Assert.Equal("Terminating", await kube.KubectlOk("get", "namespace", ns, "-o", "jsonpath={.status.phase}"));
        Assert.NotEqual("", await kube.KubectlOk("-n", ns, "get", "configmap", "held", "-o", "jsonpath={.metadata.deletionTimestamp}"));
        var refused = await kube.KubectlIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n", "-n", ns, "create", "-f", "-");
        Assert.True(refused.ExitCode != 0 && refused.Stderr.Contains("being terminated", StringComparison.Ordinal), refused.ToString());

        await kube.KubectlOk("-n", ns, "patch", "configmap", "held", "--type=merge", "-p", "{\"metadata\":{\"finalizers\":null}}");
        await LocalKubeFixture.WaitUntil(
            async () => (await kube.Kubectl("get", "namespace", ns)).ExitCode != 0,
            async () => (await kube.Kubectl("get", "namespace", ns, "-o", "yaml")).ToString());
    }

    [Fact]
    public async Task Get_watch_prints_changes_as_they_happen()
    {
        var ns = await kube.NewNamespace("watch");
        var psi = new ProcessStartInfo(LocalKubeFixture.KubectlPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--kubeconfig", kube.KubeconfigPath, "--cache-dir", Path.Combine(kube.Directory, "cache"), "-n", ns, "get", "configmaps", "--watch", "--output-watch-events" })
        {
            psi.ArgumentList.Add(a);
        }

        // kubectl prints the header with the first row, so the object exists before the watch starts.
        await kube.KubectlOkIn("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: w\ndata: {a: \"1\"}\n", "-n", ns, "create", "-f", "-");
        using var watcher = Process.Start(psi)!;
        var lines = new List<string>();
        try
        {
            Assert.Matches(@"EVENT\s+NAME\s+DATA\s+AGE", await ReadLine(watcher, lines));
            Assert.Matches(@"ADDED\s+w\s+1\s+", await ReadLine(watcher, lines));
            await kube.KubectlOk("-n", ns, "patch", "configmap", "w", "-p", "{\"data\":{\"b\":\"2\"}}");
            Assert.Matches(@"MODIFIED\s+w\s+2\s+", await ReadLine(watcher, lines));
            await kube.KubectlOk("-n", ns, "delete", "configmap", "w");
            Assert.Matches(@"DELETED\s+w\s+2\s+", await ReadLine(watcher, lines));
        }
        finally
        {
            watcher.Kill();
        }
    }

    private static async Task<string> ReadLine(Process p, List<string> seen)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            var line = await p.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException($"kubectl --watch ended; lines so far:\n{string.Join('\n', seen)}\nstderr: {await p.StandardError.ReadToEndAsync()}");
            seen.Add(line);
            return line;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"kubectl --watch printed nothing new in 20 s; lines so far:\n{string.Join('\n', seen)}");
        }
    }
}
