using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using RaftKv.Server.Peers;

namespace RaftKv.Server.Tests.Peers;

public sealed class RevocationListTests
{
    private static X509Certificate2 Ca()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    [Fact]
    public void The_revoked_serials_are_read_from_der_and_pem_with_leading_zero_bytes_ignored()
    {
        using var ca = Ca();
        var builder = new CertificateRevocationListBuilder();
        builder.AddEntry([0x00, 0x8f, 0x01]); // a serial with its sign byte, as DER writes large positive integers
        builder.AddEntry([0x12, 0x34]);
        var der = builder.Build(ca, 1, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256);
        var pem = System.Text.Encoding.ASCII.GetBytes(new string(PemEncoding.Write("X509 CRL", der)));

        Assert.Equal(["1234", "8F01"], RevocationList.RevokedSerials(der).Order(StringComparer.Ordinal));
        Assert.Equal(["1234", "8F01"], RevocationList.RevokedSerials(pem).Order(StringComparer.Ordinal));
        Assert.Empty(RevocationList.RevokedSerials(new CertificateRevocationListBuilder().Build(ca, 2, DateTimeOffset.UtcNow.AddDays(1), HashAlgorithmName.SHA256)));
    }

    [Fact]
    public void Bytes_that_are_not_a_revocation_list_are_refused()
    {
        Assert.ThrowsAny<AsnContentException>(() => RevocationList.RevokedSerials("not a CRL"u8.ToArray()));
    }
}
