using System.Text.Json.Nodes;
using RaftKv.TestPki;

namespace RaftKv.E2E.Tests;

/// <summary>A RaftCluster with TLS on both sides, from kubernetes.io/tls Secrets as cert-manager would make them.</summary>
public sealed partial class RaftClusterE2ETests
{
    [Fact]
    public async Task A_tls_cluster_waits_for_its_secrets_then_serves_etcdctl_with_a_client_certificate_only()
    {
        const string Name = "secure";
        using var ca = new TestCa("e2e CA");
        string[] memberNames = [$"*.{Name}-peers.{DemoCluster.Namespace}.svc.cluster.local", $"{Name}-client", $"{Name}-client.{DemoCluster.Namespace}.svc"];
        var dir = Directory.CreateDirectory(Path.Combine(demo.Directory, "tls")).FullName;
        var caFile = Write(dir, "ca.crt", ca.CertificatePem);

        var applied = await demo.ApplyAsync($$"""
            apiVersion: raftkv.io/v1alpha1
            kind: RaftCluster
            metadata:
              name: {{Name}}
            spec:
              replicas: 3
              tls:
                serverSecretName: {{Name}}-server-tls
                peerSecretName: {{Name}}-peer-tls
                operatorSecretName: {{Name}}-operator-tls
            """);
        Assert.True(applied.Ok, applied.ToString());
        try
        {
            // No Secrets yet: the operator says what is missing and starts no member.
            await Eventually.Until(
                async () => (await demo.ClusterAsync(Name))?["status"],
                s => Degraded(s) is { } d && d.Reason == "TLSSecretInvalid" && d.Message.Contains($"Secret {Name}-server-tls (tls.serverSecretName) not found", StringComparison.Ordinal),
                s => s?.ToJsonString() ?? "no status",
                TimeSpan.FromMinutes(1),
                "Degraded TLSSecretInvalid naming the missing Secret");
            Assert.Null(await demo.GetAsync($"/apis/apps/v1/namespaces/{DemoCluster.Namespace}/statefulsets/{Name}"));

            foreach (var (secret, pair, withCa) in new[]
            {
                ($"{Name}-server-tls", ca.Issue($"{Name} server", memberNames), true),
                ($"{Name}-peer-tls", ca.Issue($"{Name} peer", memberNames), true),
                ($"{Name}-operator-tls", ca.Issue("raftkv-operator", uses: [TestCa.ClientAuth]), false),
            })
            {
                string[] files = [$"--from-file=tls.crt={Write(dir, secret + ".crt", pair.Certificate)}", $"--from-file=tls.key={Write(dir, secret + ".key", pair.Key)}"];
                var created = await demo.KubectlAsync(["create", "secret", "generic", secret, "--type=kubernetes.io/tls", .. files, .. (withCa ? new[] { $"--from-file=ca.crt={caFile}" } : [])]);
                Assert.True(created.Ok, created.ToString());
            }

            var client = ca.Issue("e2e client", uses: [TestCa.ClientAuth]);
            string[] tls = ["--insecure-transport=false", $"--cacert={caFile}", "--insecure-skip-tls-verify", // the ClusterIP is not in the certificate
                $"--cert={Write(dir, "client.crt", client.Certificate)}", $"--key={Write(dir, "client.key", client.Key)}"];
            var status = await demo.WaitAvailableAsync(Name, 3, TimeSpan.FromMinutes(3));
            output.WriteLine($"{Name} Available, leader {status?["leader"]}");

            var put = await demo.EtcdctlAtAsync(Name, [.. tls, "put", "secret-key", "over-tls"]);
            Assert.True(put.Ok && put.Stdout.Contains("OK", StringComparison.Ordinal), put.ToString());
            var get = await demo.EtcdctlAtAsync(Name, [.. tls, "get", "secret-key", "--print-value-only"]);
            Assert.Equal("over-tls", get.Stdout.Trim());
            var members = await demo.EtcdctlAtAsync(Name, [.. tls, "member", "list"]);
            Assert.True(members.Ok, members.ToString());
            Assert.Contains($"https://{Name}-0.{Name}-peers.{DemoCluster.Namespace}.svc.cluster.local:2380", members.Stdout, StringComparison.Ordinal);
            Assert.Contains($"https://{Name}-2.{Name}-peers.{DemoCluster.Namespace}.svc.cluster.local:2379", members.Stdout, StringComparison.Ordinal);

            // Without a client certificate, or in plain HTTP, the members refuse.
            var anonymous = await demo.EtcdctlAtAsync(Name, ["--insecure-transport=false", "--insecure-skip-tls-verify", "get", "secret-key"]);
            Assert.False(anonymous.Ok, anonymous.ToString());
            var plain = await demo.EtcdctlAtAsync(Name, ["get", "secret-key"]);
            Assert.False(plain.Ok, plain.ToString());
        }
        finally
        {
            await demo.KubectlAsync("delete", "raftcluster", Name, "--wait=false");
        }
    }

    private static (string Reason, string Message)? Degraded(JsonNode? status) =>
        status?["conditions"]?.AsArray().FirstOrDefault(c => c?["type"]?.GetValue<string>() == "Degraded" && c["status"]?.GetValue<string>() == "True") is { } c
            ? (c["reason"]?.GetValue<string>() ?? "", c["message"]?.GetValue<string>() ?? "")
            : null;

    private static string Write(string dir, string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }
}
