using System.Text;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tls;
using RaftKv.TestPki;

namespace RaftKv.Operator.Tests.Tls;

/// <summary>The operator's checks of the Secrets named in spec.tls, each broken in one way at a time.</summary>
public sealed class ClusterTlsCheckTests : IDisposable
{
    private static readonly ClusterNames Names = new("demo", "prod", "cluster.local", peerTls: true, clientTls: true);
    private static readonly string[] MemberNames = ["*.demo-peers.prod.svc.cluster.local", "demo-client", "demo-client.prod.svc"];
    private readonly TestCa _ca = new("test CA");
    private readonly TestCa _otherCa = new("another CA");

    private static RaftClusterTls Tls(bool clientCertAuth = true) => new()
    {
        ServerSecretName = "demo-server-tls",
        PeerSecretName = "demo-peer-tls",
        OperatorSecretName = clientCertAuth ? "demo-operator-tls" : null,
        ClientCertAuth = clientCertAuth,
    };

    private Dictionary<string, V1Secret?> GoodSecrets() => new(StringComparer.Ordinal)
    {
        ["demo-server-tls"] = Secret("demo-server-tls", _ca.Issue("demo server", MemberNames), _ca.CertificatePem),
        ["demo-peer-tls"] = Secret("demo-peer-tls", _ca.Issue("demo peer", MemberNames), _ca.CertificatePem),
        ["demo-operator-tls"] = Secret("demo-operator-tls", _ca.Issue("raftkv-operator", uses: [TestCa.ClientAuth]), null),
    };

    [Fact]
    public void Good_secrets_give_the_operator_the_ca_and_its_client_certificate()
    {
        var result = ClusterTlsCheck.Check(Tls(), Names, 3, GoodSecrets(), DateTimeOffset.UtcNow);

        Assert.Null(result.Problem);
        Assert.NotNull(result.Credentials);
        Assert.Equal("CN=raftkv-operator", result.Credentials.ClientCertificate?.Subject);
        Assert.Single(result.Credentials.Trusted);
        Assert.Equal("demo-server-tls@1,demo-peer-tls@1,demo-operator-tls@1", result.Credentials.Version);
    }

    [Fact]
    public void Without_client_cert_auth_the_operator_presents_no_certificate_and_needs_no_operator_secret()
    {
        var secrets = GoodSecrets();
        secrets.Remove("demo-operator-tls");

        var result = ClusterTlsCheck.Check(Tls(clientCertAuth: false), Names, 3, secrets, DateTimeOffset.UtcNow);

        Assert.Null(result.Problem);
        Assert.Null(result.Credentials!.ClientCertificate);
    }

    [Fact]
    public void Tls_between_peers_only_needs_no_credentials_to_call_the_members()
    {
        var secrets = GoodSecrets();
        var result = ClusterTlsCheck.Check(new RaftClusterTls { PeerSecretName = "demo-peer-tls" }, Names, 3, secrets, DateTimeOffset.UtcNow);

        Assert.Equal(TlsCheckResult.None, result);
    }

    public static TheoryData<string, string> Breakages => new()
    {
        { "server secret missing", "Secret demo-server-tls (tls.serverSecretName) not found in namespace prod: create it, of type kubernetes.io/tls with tls.crt, tls.key, ca.crt" },
        { "peer ca.crt missing", "Secret demo-peer-tls (tls.peerSecretName) has no ca.crt: it must hold tls.crt, tls.key, ca.crt in PEM" },
        { "server key of another certificate", "Secret demo-server-tls has no usable certificate and key in tls.crt and tls.key" },
        { "peer certificate from another CA", "the certificate in Secret demo-peer-tls (tls.peerSecretName) is not issued by the CA in ca.crt" },
        { "peer certificate for server auth only", "the certificate in Secret demo-peer-tls (tls.peerSecretName) does not allow client auth (extended key usage)" },
        { "server certificate without member names", "the certificate in Secret demo-server-tls (tls.serverSecretName) does not name demo-0.demo-peers.prod.svc.cluster.local, demo-1.demo-peers.prod.svc.cluster.local, demo-2.demo-peers.prod.svc.cluster.local: add the DNS name *.demo-peers.prod.svc.cluster.local" },
        { "server certificate expired", "the certificate in Secret demo-server-tls (tls.serverSecretName) expired at" },
        { "operator certificate from another CA", "the client certificate in Secret demo-operator-tls (tls.operatorSecretName) is not accepted by the members: is not issued by the CA in ca.crt (it must be issued by the CA in Secret demo-server-tls's ca.crt, for client auth)" },
    };

    [Theory]
    [MemberData(nameof(Breakages))]
    public void Each_broken_secret_is_named_with_what_to_do(string breakage, string expected)
    {
        var secrets = GoodSecrets();
        var now = DateTimeOffset.UtcNow;
        switch (breakage)
        {
            case "server secret missing":
                secrets["demo-server-tls"] = null;
                break;
            case "peer ca.crt missing":
                secrets["demo-peer-tls"] = Secret("demo-peer-tls", _ca.Issue("demo peer", MemberNames), null);
                break;
            case "server key of another certificate":
                var one = _ca.Issue("one", MemberNames);
                var other = _ca.Issue("other", MemberNames);
                secrets["demo-server-tls"] = Secret("demo-server-tls", one with { Key = other.Key }, _ca.CertificatePem);
                break;
            case "peer certificate from another CA":
                secrets["demo-peer-tls"] = Secret("demo-peer-tls", _otherCa.Issue("demo peer", MemberNames), _ca.CertificatePem);
                break;
            case "peer certificate for server auth only":
                secrets["demo-peer-tls"] = Secret("demo-peer-tls", _ca.Issue("demo peer", MemberNames, uses: [TestCa.ServerAuth]), _ca.CertificatePem);
                break;
            case "server certificate without member names":
                secrets["demo-server-tls"] = Secret("demo-server-tls", _ca.Issue("demo server", ["demo-client"]), _ca.CertificatePem);
                break;
            case "server certificate expired":
                secrets["demo-server-tls"] = Secret("demo-server-tls", _ca.Issue("demo server", MemberNames, notBefore: now.AddHours(-20), notAfter: now.AddHours(-1)), _ca.CertificatePem);
                break;
            case "operator certificate from another CA":
                secrets["demo-operator-tls"] = Secret("demo-operator-tls", _otherCa.Issue("raftkv-operator", uses: [TestCa.ClientAuth]), null);
                break;
            default:
                throw new ArgumentException(breakage);
        }

        var result = ClusterTlsCheck.Check(Tls(), Names, 3, secrets, now);

        Assert.Null(result.Credentials);
        Assert.NotNull(result.Problem);
        Assert.Contains(expected, result.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain(";", result.Problem, StringComparison.Ordinal); // one breakage, one problem
    }

    [Fact]
    public void The_member_certificate_is_accepted_by_its_stable_name_only_and_from_the_cluster_ca_only()
    {
        var credentials = ClusterTlsCheck.Check(Tls(), Names, 3, GoodSecrets(), DateTimeOffset.UtcNow).Credentials!;
        var member = _ca.Issue("demo member", MemberNames);
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(member.Certificate);
        using var foreign = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(_otherCa.Issue("demo member", MemberNames).Certificate);
        var now = DateTimeOffset.UtcNow;

        Assert.True(credentials.Accepts(certificate, null, Names.Host(2), now));
        Assert.False(credentials.Accepts(certificate, null, "demo-0.other-peers.prod.svc.cluster.local", now));
        Assert.False(credentials.Accepts(foreign, null, Names.Host(2), now));
    }

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
    }

    private static V1Secret Secret(string name, PemPair pair, string? ca)
    {
        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["tls.crt"] = Encoding.UTF8.GetBytes(pair.Certificate),
            ["tls.key"] = Encoding.UTF8.GetBytes(pair.Key),
        };
        if (ca is not null)
        {
            data["ca.crt"] = Encoding.UTF8.GetBytes(ca);
        }

        return new V1Secret { Metadata = new V1ObjectMeta { Name = name, ResourceVersion = "1" }, Type = "kubernetes.io/tls", Data = data };
    }
}
