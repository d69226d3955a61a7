using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace LocalKube.Tests;

/// <summary>The pod runtime: scheduling, StatefulSets and Deployments, pods as processes, probes, restarts,
/// graceful termination, volumes, endpoints and names.</summary>
public sealed class RuntimeTests(LocalKubeRuntimeFixture kube, ITestOutputHelper output) : IClassFixture<LocalKubeRuntimeFixture>
{
    private static string StatefulSet(string name, int replicas, string podManagement = "OrderedReady") => """
        apiVersion: v1
        kind: Service
        metadata: {name: __NAME__-peers}
        spec:
          clusterIP: None
          publishNotReadyAddresses: true
          selector: {app: __NAME__}
          ports: [{name: http, port: 8080}]
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: __NAME__-config}
        data: {greeting: hello}
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: __NAME__}
        spec:
          replicas: __REPLICAS__
          serviceName: __NAME__-peers
          podManagementPolicy: __POLICY__
          selector: {matchLabels: {app: __NAME__}}
          template:
            metadata: {labels: {app: __NAME__}}
            spec:
              terminationGracePeriodSeconds: 10
              affinity:
                podAntiAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                  - labelSelector: {matchLabels: {app: __NAME__}}
                    topologyKey: kubernetes.io/hostname
              containers:
              - name: main
                image: localkube/testpod:latest
                args: ["--port", "8080", "--ready-dir", "/data"]
                env:
                - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
                - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
                - {name: GREETING, valueFrom: {configMapKeyRef: {name: __NAME__-config, key: greeting}}}
                - {name: CONFIG_DIR, value: /config}
                - {name: DATA_DIR, value: /data}
                ports: [{name: http, containerPort: 8080}]
                readinessProbe:
                  httpGet: {path: /readyz, port: http}
                  periodSeconds: 1
                  failureThreshold: 1
                volumeMounts:
                - {name: data, mountPath: /data}
                - {name: config, mountPath: /config}
              volumes:
              - {name: config, configMap: {name: __NAME__-config}}
          volumeClaimTemplates:
          - metadata: {name: data}
            spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
        """.Replace("__NAME__", name, StringComparison.Ordinal).Replace("__REPLICAS__", replicas.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal).Replace("__POLICY__", podManagement, StringComparison.Ordinal);

    private async Task<string> Get(string ns, string what, string jsonpath) =>
        await kube.KubectlOk("-n", ns, "get", what, "-o", $"jsonpath={jsonpath}");

    private static async Task<string> Http(string url)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return await client.GetStringAsync(new Uri(url));
    }

    private Task WaitFor(string ns, string what, string jsonpath, string expected) =>
        LocalKubeFixture.WaitUntil(
            async () => (await kube.Kubectl("-n", ns, "get", what, "-o", $"jsonpath={jsonpath}")).Stdout == expected,
            async () => $"waiting for {what} {jsonpath} == {expected}; now: {(await kube.Kubectl("-n", ns, "get", what, "-o", $"jsonpath={jsonpath}")).Stdout}\n{(await kube.Kubectl("-n", ns, "get", "pods", "-o", "wide")).Stdout}",
            TimeSpan.FromSeconds(60));

    [Fact]
    public async Task StatefulSet_pods_run_in_order_with_stable_names_addresses_claims_and_environment()
    {
        var ns = await kube.NewNamespace("sts");
        await kube.KubectlOkIn(StatefulSet("db", 3), "-n", ns, "apply", "-f", "-");
        await kube.KubectlOk("-n", ns, "rollout", "status", "statefulset/db", "--timeout=60s");

        Assert.Equal("db-0 db-1 db-2", await Get(ns, "pods", "{.items[*].metadata.name}"));
        Assert.Equal("node-1 node-2 node-3", string.Join(' ', (await Get(ns, "pods", "{.items[*].spec.nodeName}")).Split(' ').Order(StringComparer.Ordinal)));
        Assert.Equal("data-db-0 data-db-1 data-db-2", await Get(ns, "pvc", "{.items[*].metadata.name}"));
        var created = (await Get(ns, "pods", "{.items[*].metadata.creationTimestamp}")).Split(' ');
        Assert.True(string.CompareOrdinal(created[0], created[2]) <= 0, "OrderedReady creates db-0 before db-2");

        var ip = await Get(ns, "pod/db-1", "{.status.podIP}");
        Assert.StartsWith("127.", ip, StringComparison.Ordinal);
        Assert.Equal("db-1", await Http($"http://{ip}:8080/env/POD_NAME"));
        Assert.Equal(ip, await Http($"http://{ip}:8080/env/POD_IP"));
        Assert.Equal("hello", await Http($"http://{ip}:8080/env/GREETING"));
        var dataDir = await Http($"http://{ip}:8080/env/DATA_DIR");
        Assert.Equal(Path.Combine(kube.Root, "volumes", ns, "data-db-1"), dataDir);

        // Names: the hosts file maps the stable names to the pods' addresses.
        var hosts = await File.ReadAllTextAsync(Path.Combine(kube.Root, "hosts"));
        Assert.Contains($"{ip} db-1.db-peers.{ns}.svc.cluster.local", hosts, StringComparison.Ordinal);
        Assert.Equal(ip, await Http($"http://{ip}:8080/env/LOCALKUBE_POD_IP"));

        // Endpoints of the headless service list all three.
        await WaitFor(ns, "endpoints/db-peers", "{.subsets[0].addresses[*].hostname}", "db-0 db-1 db-2");

        // A ConfigMap change reaches the mounted file.
        var configDir = await Http($"http://{ip}:8080/env/CONFIG_DIR");
        Assert.Equal("hello", await Http($"http://{ip}:8080/file?path={Uri.EscapeDataString(Path.Combine(configDir, "greeting"))}"));
        await kube.KubectlOk("-n", ns, "patch", "configmap", "db-config", "-p", "{\"data\":{\"greeting\":\"bonjour\"}}");
        await LocalKubeFixture.WaitUntil(
            async () => await Http($"http://{ip}:8080/file?path={Uri.EscapeDataString(Path.Combine(configDir, "greeting"))}") == "bonjour",
            async () => await File.ReadAllTextAsync(Path.Combine(configDir, "greeting")));
    }

    [Fact]
    public async Task Readiness_follows_the_probe_and_endpoints_follow_readiness()
    {
        var ns = await kube.NewNamespace("ready");
        await kube.KubectlOkIn(StatefulSet("r", 1), "-n", ns, "apply", "-f", "-");
        await WaitFor(ns, "pod/r-0", "{.status.conditions[?(@.type==\"Ready\")].status}", "True");
        Assert.Contains("testpod: serving on", await kube.KubectlOk("-n", ns, "logs", "r-0"), StringComparison.Ordinal);
        Assert.StartsWith("testpod: serving on", await kube.KubectlOk("-n", ns, "logs", "r-0", "-c", "main", "--tail=1"), StringComparison.Ordinal);
        var claim = Path.Combine(kube.Root, "volumes", ns, "data-r-0");
        await File.WriteAllTextAsync(Path.Combine(claim, "not-ready"), "");
        await WaitFor(ns, "pod/r-0", "{.status.conditions[?(@.type==\"Ready\")].status}", "False");
        await WaitFor(ns, "statefulset/r", "{.status.readyReplicas}", "0");
        File.Delete(Path.Combine(claim, "not-ready"));
        await WaitFor(ns, "pod/r-0", "{.status.conditions[?(@.type==\"Ready\")].status}", "True");
    }

    [Fact]
    public async Task A_scale_down_with_whenScaled_Delete_removes_the_claim_and_its_data_so_a_scale_up_starts_empty()
    {
        // Found by the fault suite's random-specs scenario: raftkv-operator asks for whenScaled: Delete, LocalKube kept
        // the claim and its directory, and a member added again after a scale-down started on the removed member's data
        // (it refused to run: a crash loop).
        var ns = await kube.NewNamespace("scaled");
        var manifest = StatefulSet("s", 2, "Parallel").Replace("  serviceName: s-peers", "  serviceName: s-peers\n  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Delete}", StringComparison.Ordinal);
        Assert.Contains("whenScaled: Delete", manifest, StringComparison.Ordinal);
        await kube.KubectlOkIn(manifest, "-n", ns, "apply", "-f", "-");
        await WaitFor(ns, "pod/s-1", "{.status.conditions[?(@.type==\"Ready\")].status}", "True");
        var claim = Path.Combine(kube.Root, "volumes", ns, "data-s-1");
        await File.WriteAllTextAsync(Path.Combine(claim, "old-member"), "yes");

        await kube.KubectlOk("-n", ns, "scale", "statefulset", "s", "--replicas=1");
        await LocalKubeFixture.WaitUntil(
            async () => !(await kube.Kubectl("-n", ns, "get", "pvc", "-o", "name")).Stdout.Contains("data-s-1", StringComparison.Ordinal) && !Directory.Exists(claim),
            async () => (await kube.Kubectl("-n", ns, "get", "pods,pvc")).Stdout + $" directory exists: {Directory.Exists(claim)}",
            TimeSpan.FromSeconds(60));
        Assert.Contains("data-s-0", (await kube.KubectlOk("-n", ns, "get", "pvc", "-o", "name")), StringComparison.Ordinal);

        await kube.KubectlOk("-n", ns, "scale", "statefulset", "s", "--replicas=2");
        await WaitFor(ns, "pod/s-1", "{.status.conditions[?(@.type==\"Ready\")].status}", "True");
        Assert.False(File.Exists(Path.Combine(claim, "old-member")), "the new s-1 got the old claim's data");
    }

    [Fact]
    public async Task A_killed_process_is_restarted_and_a_deleted_pod_comes_back_with_its_address_and_data()
    {
        var ns = await kube.NewNamespace("heal");
        await kube.KubectlOkIn(StatefulSet("h", 1), "-n", ns, "apply", "-f", "-");
        await WaitFor(ns, "pod/h-0", "{.status.conditions[?(@.type==\"Ready\")].status}", "True");
        var ip = await Get(ns, "pod/h-0", "{.status.podIP}");
        var pid = int.Parse((await Get(ns, "pod/h-0", "{.status.containerStatuses[0].containerID}"))["localkube://".Length..], CultureInfo.InvariantCulture);
        System.Diagnostics.Process.GetProcessById(pid).Kill();
        await WaitFor(ns, "pod/h-0", "{.status.containerStatuses[0].restartCount}/{.status.containerStatuses[0].ready}", "1/true");

        // Graceful deletion: SIGTERM reaches the program, the pod is recreated with the same address and claim.
        var claim = Path.Combine(kube.Root, "volumes", ns, "data-h-0");
        await File.WriteAllTextAsync(Path.Combine(claim, "kept"), "yes");
        var uid = await Get(ns, "pod/h-0", "{.metadata.uid}");
        var log = Directory.GetFiles(Path.Combine(kube.Root, "pods"), "main.log", SearchOption.AllDirectories).Single(f => f.Contains($"{ns}_h-0_{uid[..8]}", StringComparison.Ordinal));
        await kube.KubectlOk("-n", ns, "delete", "pod", "h-0", "--wait=true", "--timeout=40s");
        Assert.Contains("testpod: stopping", await File.ReadAllTextAsync(log), StringComparison.Ordinal);
        await LocalKubeFixture.WaitUntil(
            async () => (await kube.Kubectl("-n", ns, "get", "pod", "h-0", "-o", "jsonpath={.metadata.uid} {.status.conditions[?(@.type==\"Ready\")].status}")).Stdout is var s && !s.StartsWith(uid, StringComparison.Ordinal) && s.EndsWith("True", StringComparison.Ordinal),
            async () => (await kube.Kubectl("-n", ns, "get", "pods", "-o", "wide")).Stdout,
            TimeSpan.FromSeconds(60));
        Assert.Equal(ip, await Get(ns, "pod/h-0", "{.status.podIP}"));
        Assert.Equal("yes", await File.ReadAllTextAsync(Path.Combine(claim, "kept")));
    }

    [Fact]
    public async Task A_pod_that_fits_no_node_stays_pending_with_the_reason()
    {
        var ns = await kube.NewNamespace("pending");
        await kube.KubectlOkIn(StatefulSet("p", 4, "Parallel"), "-n", ns, "apply", "-f", "-");
        await LocalKubeFixture.WaitUntil(
            async () => (await kube.Kubectl("-n", ns, "get", "pods", "-o", "jsonpath={.items[*].status.conditions[?(@.type==\"PodScheduled\")].message}")).Stdout.Contains("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.", StringComparison.Ordinal),
            async () => (await kube.Kubectl("-n", ns, "get", "pods", "-o", "yaml")).Stdout,
            TimeSpan.FromSeconds(30));
        Assert.Equal(3, (await Get(ns, "pods", "{.items[*].spec.nodeName}")).Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        await LocalKubeFixture.WaitUntil(
            async () => await kube.KubectlOk("-n", ns, "get", "events") is var events
                && System.Text.RegularExpressions.Regex.IsMatch(events, @"Warning\s+FailedScheduling\s+pod/p-\d\s+0/3 nodes are available")
                && System.Text.RegularExpressions.Regex.IsMatch(events, @"Normal\s+Started\s+pod/p-\d\s+Started container main"),
            async () => await kube.KubectlOk("-n", ns, "get", "events"));
    }

    [Fact]
    public async Task Deployment_rolls_to_a_new_ReplicaSet_and_becomes_available()
    {
        var ns = await kube.NewNamespace("deploy");
        var deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers:
                  - name: main
                    image: localkube/testpod
                    args: ["--port", "8080"]
                    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
            """;
        await kube.KubectlOkIn(deployment, "-n", ns, "apply", "-f", "-");
        await kube.KubectlOk("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s");
        Assert.Equal("True", await Get(ns, "deployment/web", "{.status.conditions[?(@.type==\"Available\")].status}"));
        var firstRs = await Get(ns, "replicasets", "{.items[*].metadata.name}");

        await kube.KubectlOkIn(deployment.Replace("\"8080\"]", "\"8080\", \"--ready-dir\", \"/tmp\"]", StringComparison.Ordinal), "-n", ns, "apply", "-f", "-");
        await kube.KubectlOk("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s");
        await LocalKubeFixture.WaitUntil(
            async () =>
            {
                var sets = (await Get(ns, "replicasets", "{range .items[*]}{.metadata.name}={.status.replicas} {end}")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return sets.Length == 2 && sets.Contains($"{firstRs}=0") && sets.Any(x => x.EndsWith("=2", StringComparison.Ordinal));
            },
            async () => await Get(ns, "replicasets", "{range .items[*]}{.metadata.name}={.status.replicas} {end}"),
            TimeSpan.FromSeconds(60));
        // Old pods terminate (SIGTERM, then gone); two remain.
        await LocalKubeFixture.WaitUntil(
            async () => (await Get(ns, "pods", "{.items[*].metadata.name}")).Split(' ').Length == 2,
            async () => (await kube.Kubectl("-n", ns, "get", "pods", "-o", "wide")).Stdout);

        // The Service's ClusterIP relays to the ready pods.
        await kube.KubectlOkIn("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n", "-n", ns, "apply", "-f", "-");
        var clusterIp = await Get(ns, "service/web", "{.spec.clusterIP}");
        var podIps = (await Get(ns, "pods", "{.items[*].status.podIP}")).Split(' ');
        await LocalKubeFixture.WaitUntil(
            async () =>
            {
                try
                {
                    var answeredBy = await Http($"http://{clusterIp}:80/env/LOCALKUBE_POD_IP");
                    return Array.IndexOf(podIps, answeredBy) >= 0;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            async () => (await kube.Kubectl("-n", ns, "get", "endpoints", "web", "-o", "yaml")).Stdout);
    }

    [Fact]
    public async Task Fault_annotations_delay_and_cut_traffic_between_pods_and_heal_when_removed()
    {
        var ns = await kube.NewNamespace("faults");
        await kube.KubectlOkIn(StatefulSet("f", 2, "Parallel"), "-n", ns, "apply", "-f", "-");
        await kube.KubectlOk("-n", ns, "rollout", "status", "statefulset/f", "--timeout=60s");
        var ip0 = await Get(ns, "pod/f-0", "{.status.podIP}");
        var hostsFile = await Http($"http://{ip0}:8080/env/LOCALKUBE_HOSTS_FILE");
        var peerName = $"f-1.f-peers.{ns}.svc.cluster.local";
        string? link = null;
        await LocalKubeFixture.WaitUntil(
            async () =>
            {
                link = File.Exists(hostsFile) ? (await File.ReadAllLinesAsync(hostsFile)).Where(l => l.EndsWith(" " + peerName, StringComparison.Ordinal)).Select(l => l.Split(' ')[0]).FirstOrDefault() : null;
                return link is not null;
            },
            async () => File.Exists(hostsFile) ? await File.ReadAllTextAsync(hostsFile) : $"{hostsFile} missing");
        Assert.NotEqual(await Get(ns, "pod/f-1", "{.status.podIP}"), link);
        Assert.Equal("f-1", await Http($"http://{link}:8080/env/LOCALKUBE_POD_NAME"));

        async Task<TimeSpan?> Probe()
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                await Http($"http://{link}:8080/env/LOCALKUBE_POD_NAME");
                return watch.Elapsed;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return null;
            }
        }

        // 150 ms on f-0 and 150 ms on f-1 add up: a request and its answer take at least 600 ms.
        await kube.KubectlOk("-n", ns, "annotate", "pod", "f-0", "localkube.raftkv.io/delay=150ms");
        await kube.KubectlOk("-n", ns, "annotate", "pod", "f-1", "localkube.raftkv.io/delay=150ms");
        TimeSpan? last = null;
        await LocalKubeFixture.WaitUntil(async () => (last = await Probe()) >= TimeSpan.FromMilliseconds(600), () => Task.FromResult($"last request took {last}"));

        await kube.KubectlOk("-n", ns, "annotate", "pod", "f-1", "localkube.raftkv.io/partition=true");
        await LocalKubeFixture.WaitUntil(async () => (last = await Probe()) is null, () => Task.FromResult($"request still answered in {last}"));

        await kube.KubectlOk("-n", ns, "annotate", "pod", "f-0", "localkube.raftkv.io/delay-");
        await kube.KubectlOk("-n", ns, "annotate", "pod", "f-1", "localkube.raftkv.io/delay-", "localkube.raftkv.io/partition-");
        await LocalKubeFixture.WaitUntil(async () => (last = await Probe()) is { } t && t < TimeSpan.FromMilliseconds(500), () => Task.FromResult($"last request took {last}"));
    }

    [Fact]
    public async Task A_terminating_pod_leaves_the_service_at_once_but_keeps_its_links_to_peers_until_its_process_exits()
    {
        // A raftkv leader hands leadership over after SIGTERM: it needs its peer links while it terminates, and clients
        // of the Service must not be sent to it meanwhile. The testpods here hold on after SIGTERM until told to stop.
        var ns = await kube.NewNamespace("term");
        var manifest = StatefulSet("t", 2, "Parallel")
            .Replace("\"--ready-dir\", \"/data\"]", "\"--ready-dir\", \"/data\", \"--hold-after-sigterm\"]", StringComparison.Ordinal)
            .Replace("terminationGracePeriodSeconds: 10", "terminationGracePeriodSeconds: 120", StringComparison.Ordinal) + """

            ---
            apiVersion: v1
            kind: Service
            metadata: {name: t-client}
            spec:
              selector: {app: t}
              ports: [{name: http, port: 8080, targetPort: http}]
            """;
        var claims = new[] { "data-t-0", "data-t-1" }.Select(c => Path.Combine(kube.Root, "volumes", ns, c)).ToArray();
        try
        {
            await kube.KubectlOkIn(manifest, "-n", ns, "apply", "-f", "-");
            await kube.KubectlOk("-n", ns, "rollout", "status", "statefulset/t", "--timeout=60s");
            var ip0 = await Get(ns, "pod/t-0", "{.status.podIP}");
            var ip1 = await Get(ns, "pod/t-1", "{.status.podIP}");
            var clusterIp = await Get(ns, "service/t-client", "{.spec.clusterIP}");
            await WaitFor(ns, "endpoints/t-client", "{.subsets[0].addresses[*].ip}", $"{ip0} {ip1}");

            // t-1 reaches t-0 by name through its link (the hosts file LOCALKUBE_HOSTS_FILE names).
            var hostsFile = await Http($"http://{ip1}:8080/env/LOCALKUBE_HOSTS_FILE");
            var peerName = $"t-0.t-peers.{ns}.svc.cluster.local";
            async Task<string?> LinkToT0() => File.Exists(hostsFile)
                ? (await File.ReadAllLinesAsync(hostsFile)).Where(l => l.EndsWith(" " + peerName, StringComparison.Ordinal)).Select(l => l.Split(' ')[0]).FirstOrDefault()
                : null;
            string? link = null;
            await LocalKubeFixture.WaitUntil(async () => (link = await LinkToT0()) is not null && link != ip0, async () => File.Exists(hostsFile) ? await File.ReadAllTextAsync(hostsFile) : $"{hostsFile} missing");
            Assert.Equal("t-0", await Http($"http://{link}:8080/env/LOCALKUBE_POD_NAME"));
            var uid = await Get(ns, "pod/t-0", "{.metadata.uid}");

            var watch = Stopwatch.StartNew();
            await kube.KubectlOk("-n", ns, "delete", "pod", "t-0", "--wait=false");
            var deleted = watch.Elapsed;
            await WaitFor(ns, "endpoints/t-client", "{.subsets[0].addresses[*].ip}", ip1);
            var endpointsUpdated = watch.Elapsed;

            // The process still runs (it holds on after SIGTERM) and the pod is terminating.
            Assert.NotEqual("", await Get(ns, "pod/t-0", "{.metadata.deletionTimestamp}"));
            Assert.Equal("t-0", await Http($"http://{ip0}:8080/env/LOCALKUBE_POD_NAME"));
            Assert.Contains("SIGTERM received", await kube.KubectlOk("-n", ns, "logs", "t-0"), StringComparison.Ordinal);

            // The EndpointSlice keeps it as terminating, not ready; the Endpoints list neither it nor a not-ready address.
            var slice = JsonNode.Parse(await kube.KubectlOk("-n", ns, "get", "endpointslice", "t-client-local", "-o", "json"))!;
            var conditions = slice["endpoints"]!.AsArray().Single(e => e?["targetRef"]?["name"]?.GetValue<string>() == "t-0")!["conditions"]!;
            Assert.True(conditions["terminating"]!.GetValue<bool>() && !conditions["ready"]!.GetValue<bool>(), $"t-0 in the slice: {conditions.ToJsonString()}");
            Assert.Equal("", await Get(ns, "endpoints/t-client", "{.subsets[0].notReadyAddresses}"));

            // New connections to the Service never reach the terminating pod.
            var answers = new List<string>();
            for (var i = 0; i < 20; i++)
            {
                answers.Add(await Http($"http://{clusterIp}:8080/env/LOCALKUBE_POD_NAME"));
            }

            Assert.True(answers.All(a => a == "t-1"), $"answers through the ClusterIP after t-0 began terminating: {string.Join(' ', answers)}");

            // Its peer still reaches it by name through the same link until it exits.
            Assert.Equal(link, await LinkToT0());
            Assert.Equal("t-0", await Http($"http://{link}:8080/env/LOCALKUBE_POD_NAME"));
            var stillLinked = watch.Elapsed;

            await File.WriteAllTextAsync(Path.Combine(claims[0], "may-stop"), "");
            await LocalKubeFixture.WaitUntil(
                async () => (await kube.Kubectl("-n", ns, "get", "pod", "t-0", "-o", "jsonpath={.metadata.uid}")).Stdout is var now && now != uid,
                async () => (await kube.Kubectl("-n", ns, "get", "pods", "-o", "wide")).Stdout,
                TimeSpan.FromSeconds(60));
            output.WriteLine(FormattableString.Invariant(
                $"kubectl delete returned at {deleted.TotalMilliseconds:0} ms; endpoints without t-0 seen at {endpointsUpdated.TotalMilliseconds:0} ms; link still relaying at {stillLinked.TotalMilliseconds:0} ms; old pod gone at {watch.Elapsed.TotalMilliseconds:0} ms (process asked to stop at {stillLinked.TotalMilliseconds:0} ms)"));
        }
        finally
        {
            // Let every testpod of this namespace stop at once when the control plane stops.
            foreach (var claim in claims.Where(Directory.Exists))
            {
                await File.WriteAllTextAsync(Path.Combine(claim, "may-stop"), "");
            }
        }
    }

    [Fact]
    public async Task StatefulSet_rolling_update_respects_the_partition_and_goes_from_the_highest_ordinal()
    {
        var ns = await kube.NewNamespace("roll");
        var manifest = StatefulSet("u", 3, "Parallel");
        await kube.KubectlOkIn(manifest, "-n", ns, "apply", "-f", "-");
        await kube.KubectlOk("-n", ns, "rollout", "status", "statefulset/u", "--timeout=60s");
        var oldRevision = await Get(ns, "statefulset/u", "{.status.updateRevision}");

        // Partition 1: pods 2 and 1 move to the new template, pod 0 stays.
        await kube.KubectlOk("-n", ns, "patch", "statefulset", "u", "-p", "{\"spec\":{\"updateStrategy\":{\"rollingUpdate\":{\"partition\":1}},\"template\":{\"metadata\":{\"annotations\":{\"rev\":\"2\"}}}}}");
        var newRevision = oldRevision;
        await LocalKubeFixture.WaitUntil(
            async () => (newRevision = await Get(ns, "statefulset/u", "{.status.updateRevision}")) != oldRevision
                && await Get(ns, "pods", "{.items[*].metadata.labels.controller-revision-hash}") == $"{oldRevision} {newRevision} {newRevision}"
                && await Get(ns, "statefulset/u", "{.status.readyReplicas}") == "3",
            async () => $"old {oldRevision} new {newRevision}: " + await Get(ns, "pods", "{range .items[*]}{.metadata.name}={.metadata.labels.controller-revision-hash} {end}"),
            TimeSpan.FromSeconds(60));
        Assert.Equal("2", await Get(ns, "statefulset/u", "{.status.updatedReplicas}"));
        Assert.Equal(newRevision, await Get(ns, "pod/u-1", "{.metadata.labels.controller-revision-hash}"));
    }
}
