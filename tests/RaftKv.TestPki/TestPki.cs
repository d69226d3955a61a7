using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace RaftKv.TestPki;

/// <summary>A certificate and its private key, in PEM.</summary>
public sealed record PemPair(string Certificate, string Key);

/// <summary>
/// A test certificate authority (P-256, self-signed, valid from a day ago for 30 days). Issues leaf certificates for the
/// names, uses and validity a test asks for, the way cert-manager's CA issuer would.
/// </summary>
public sealed class TestCa : IDisposable
{
    /// <summary>Extended key usage: TLS server authentication.</summary>
    public static Oid ServerAuth { get; } = new("1.3.6.1.5.5.7.3.1");

    /// <summary>Extended key usage: TLS client authentication.</summary>
    public static Oid ClientAuth { get; } = new("1.3.6.1.5.5.7.3.2");

    private readonly X509Certificate2 _certificate;

    public TestCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        _certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
    }

    /// <summary>The CA's certificate in PEM (what a kubernetes.io/tls Secret holds as ca.crt).</summary>
    public string CertificatePem => _certificate.ExportCertificatePem();

    /// <summary>
    /// Issues a certificate for <paramref name="commonName"/> naming <paramref name="dnsNames"/> and <paramref name="ips"/>,
    /// for server and client authentication unless <paramref name="uses"/> says otherwise (an empty list: no extended key
    /// usage extension), valid from an hour ago for a week unless <paramref name="notBefore"/>/<paramref name="notAfter"/> are given.
    /// </summary>
    public PemPair Issue(string commonName, IEnumerable<string>? dnsNames = null, IEnumerable<IPAddress>? ips = null, IReadOnlyList<Oid>? uses = null,
        DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var dns in dnsNames ?? [])
        {
            names.AddDnsName(dns);
            any = true;
        }

        foreach (var ip in ips ?? [])
        {
            names.AddIpAddress(ip);
            any = true;
        }

        if (any)
        {
            request.CertificateExtensions.Add(names.Build());
        }

        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        uses ??= [ServerAuth, ClientAuth];
        if (uses.Count > 0)
        {
            var collection = new OidCollection();
            foreach (var use in uses)
            {
                collection.Add(use);
            }

            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(collection, false));
        }

        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, true, false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(_certificate, notBefore ?? now.AddHours(-1), notAfter ?? now.AddDays(7), RandomNumberGenerator.GetBytes(12));
        return new PemPair(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A PEM CRL of this CA, number <paramref name="number"/>, revoking the PEM certificates <paramref name="revoked"/>, next update in a day.</summary>
    public string RevocationListPem(IEnumerable<string> revoked, long number)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (var pem in revoked)
        {
            using var certificate = X509Certificate2.CreateFromPem(pem);
            builder.AddEntry(certificate);
        }

        var der = builder.Build(_certificate, number, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        return new string(PemEncoding.Write("X509 CRL", der));
    }

    public void Dispose() => _certificate.Dispose();
}
