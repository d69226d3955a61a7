using System.Diagnostics;
using System.Text;
using k8s;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tests.Runtime;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>The raftkv-operator program itself: flags, kubeconfig, the real member client, SIGTERM.</summary>
public sealed class OperatorProcessTests(LocalKubeCluster kube) : IClassFixture<LocalKubeCluster>
{
    [Fact]
    public async Task The_program_reconciles_and_on_SIGTERM_releases_its_lease_and_exits_0()
    {
        var ns = await kube.NewNamespaceAsync("process");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process
        {
            StartInfo = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "raftkv-operator"))
            {
                ArgumentList =
                {
                    "--kubeconfig", kube.KubeconfigPath, "--namespace", ns, "--metrics-address", "127.0.0.1:0",
                    "--identity", "op-process", "--lease-namespace", ns, "--resync-period", "2s",
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            },
        };
        process.OutputDataReceived += (_, e) => Append(stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Seen() => $"exited: {process.HasExited}; stdout:\n{Text(stdout)}\nstderr:\n{Text(stderr)}";
        try
        {
            await kube.CreateClusterAsync(ns, "demo");

            // No raftkv pods run here: the operator creates the objects and reports the bootstrap as under way.
            var cluster = await Eventually.Until(async () => (await kube.GetClusterAsync(ns, "demo"))!,
                c => c.Status?.ObservedGeneration == 1 && c.Status.Phase == ClusterPhase.Bootstrapping,
                c => $"status {KubernetesJson.Serialize(c.Status)}; {Seen()}");
            Assert.Equal("False", cluster.Status!.Conditions!.Single(c => c.Type == ConditionTypes.Available).Status);
            Assert.Equal(3, (await kube.Client.AppsV1.ReadNamespacedStatefulSetAsync("demo", ns)).Spec.Replicas);
            Assert.Equal("op-process", (await kube.Client.CoordinationV1.ReadNamespacedLeaseAsync("raftkv-operator", ns)).Spec.HolderIdentity);

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var exit = new CancellationTokenSource(Eventually.DefaultTimeout);
            await process.WaitForExitAsync(exit.Token);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}; {Seen()}");
            var lease = await kube.Client.CoordinationV1.ReadNamespacedLeaseAsync("raftkv-operator", ns);
            Assert.True(string.IsNullOrEmpty(lease.Spec.HolderIdentity), $"lease still held by {lease.Spec.HolderIdentity}; {Seen()}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (text)
        {
            text.AppendLine(line);
        }
    }

    private static string Text(StringBuilder text)
    {
        lock (text)
        {
            return text.ToString();
        }
    }
}
