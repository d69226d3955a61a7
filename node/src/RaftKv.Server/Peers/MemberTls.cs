using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using RaftKv.Server.Configuration;
using RaftKv.Server.Node;

namespace RaftKv.Server.Peers;

/// <summary>
/// One side's TLS (client URLs or peer URLs), loaded from the PEM files of <see cref="TlsFiles"/> or made by auto TLS: the certificate this member
/// serves with and, when it calls other members on that side, presents as its client certificate (as etcd does with its
/// --peer-cert-file); and the CA certificates that the other side's certificates must chain to.
/// </summary>
internal sealed class MemberTls
{
    private readonly X509Certificate2Collection _trusted;

    private readonly RevocationList? _revoked;

    private readonly ReloadingCertificate _certificate;

    private MemberTls(ReloadingCertificate certificate, X509Certificate2Collection trusted, bool clientCertAuth, bool selfSigned, RevocationList? revoked)
    {
        _certificate = certificate;
        _trusted = trusted;
        ClientCertAuth = clientCertAuth;
        SelfSigned = selfSigned;
        _revoked = revoked;
    }

    /// <summary>The certificate this side presents now (its files are read again when they change).</summary>
    public X509Certificate2 Certificate => _certificate.Current;

    public bool ClientCertAuth { get; }

    /// <summary>
    /// Auto TLS: the certificate is this member's own self-signed one, and as in etcd (its InsecureSkipVerify for
    /// self-made certificates) this member does not verify the certificates of the members and leaders it calls.
    /// </summary>
    public bool SelfSigned { get; }

    /// <summary>
    /// Loads the files, or with auto TLS and no certificate file makes (first start) or reuses the self-signed certificate
    /// in <c>DATA_DIR/fixtures/client</c> or <c>/peer</c> for <paramref name="hosts"/>; null when the side has no TLS.
    /// A file that cannot be read or parsed ends start-up with its name.
    /// </summary>
    public static MemberTls? Load(TlsFiles files, string flagPrefix, string dataDir, IEnumerable<string> hosts, ILogger? logger = null)
    {
        if (!files.Enabled)
        {
            return null;
        }

        logger ??= Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var revoked = files.CrlFile.Length == 0 ? null : RevocationList.Load(files.CrlFile, TlsFiles.CrlFlag(flagPrefix), logger);

        if (files.SelfSigned)
        {
            var dir = Path.Combine(dataDir, "fixtures", flagPrefix.Length == 0 ? "client" : "peer");
            var (certFile, keyFile) = SelfSignedFiles(dir, hosts, flagPrefix);
            var own = ReloadingCertificate.Load(certFile, keyFile,
                reason => $"cannot load the --{flagPrefix}auto-tls certificate {certFile} with {keyFile}: {reason} (delete {dir} to make a new one)", logger);
            return new MemberTls(own, [], files.ClientCertAuth, selfSigned: true, revoked);
        }

        var certificate = ReloadingCertificate.Load(files.CertFile, files.KeyFile,
            reason => $"cannot load --{flagPrefix}cert-file {files.CertFile} with --{flagPrefix}key-file {files.KeyFile}: {reason} (both must be PEM, the key unencrypted and matching the certificate)", logger);
        var trusted = new X509Certificate2Collection();
        if (files.TrustedCaFile.Length > 0)
        {
            try
            {
                trusted.ImportFromPemFile(files.TrustedCaFile);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                throw new MemberStartException($"cannot load --{flagPrefix}trusted-ca-file {files.TrustedCaFile}: {e.Message} (expected PEM CA certificates)", e);
            }

            if (trusted.Count == 0)
            {
                throw new MemberStartException($"--{flagPrefix}trusted-ca-file {files.TrustedCaFile} holds no PEM certificate");
            }
        }

        return new MemberTls(certificate, trusted, files.ClientCertAuth, selfSigned: false, revoked);
    }

    /// <summary>
    /// The auto TLS certificate and key in <paramref name="dir"/> (cert.pem, key.pem, as etcd names them), made when either is
    /// missing: self-signed, valid for a year from now (etcd's default), for server and client use, naming
    /// <paramref name="hosts"/> (IP addresses and DNS names), the key readable by this user only.
    /// </summary>
    private static (string CertFile, string KeyFile) SelfSignedFiles(string dir, IEnumerable<string> hosts, string flagPrefix)
    {
        var certFile = Path.Combine(dir, "cert.pem");
        var keyFile = Path.Combine(dir, "key.pem");
        if (File.Exists(certFile) && File.Exists(keyFile))
        {
            return (certFile, keyFile);
        }

        try
        {
            const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(dir);
            }
            else
            {
                Directory.CreateDirectory(dir, OwnerOnly | UnixFileMode.UserExecute); // 0700, as etcd makes it
            }

            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("O=raftkv, CN=raftkv auto TLS", key, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            foreach (var host in hosts.Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip))
                {
                    names.AddIpAddress(ip);
                }
                else
                {
                    names.AddDnsName(host);
                }
            }

            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // server and client authentication
            var now = DateTimeOffset.UtcNow;
            using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
            var keyOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                keyOptions.UnixCreateMode = OwnerOnly; // 0600
            }

            using (var keyOut = new FileStream(keyFile, keyOptions))
            using (var writer = new StreamWriter(keyOut))
            {
                writer.Write(key.ExportPkcs8PrivateKeyPem());
            }

            File.WriteAllText(certFile, certificate.ExportCertificatePem());
            return (certFile, keyFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new MemberStartException($"cannot make the --{flagPrefix}auto-tls certificate in {dir}: {e.Message}", e);
        }
    }

    /// <summary>Kestrel's settings for a listener on this side: this certificate; client certificates required and checked when asked for.</summary>
    public HttpsConnectionAdapterOptions ServerOptions() => new()
    {
        ServerCertificateSelector = (_, _) => Certificate,
        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateMode = ClientCertAuth ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
        ClientCertificateValidation = (certificate, chain, _) => ChainsToTrusted(certificate)
            && _revoked?.Refuses([certificate, .. chain?.ChainElements.Select(e => e.Certificate) ?? []]) != true,
    };

    /// <summary>TLS for a call to another member on this side: this certificate as client identity, the server's checked
    /// against the CA and its name (not checked with auto TLS, see <see cref="SelfSigned"/>).</summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            SelfSigned
            || certificate is X509Certificate2 server
            && (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) == 0
            && (_trusted.Count == 0 ? errors == SslPolicyErrors.None : ChainsToTrusted(server)),
    };

    /// <summary>TLS for a call to <paramref name="url"/>: <paramref name="tls"/>'s client options for https://, none for http://.</summary>
    public static SslClientAuthenticationOptions ForUrl(MemberTls? tls, Uri url) =>
        url.Scheme == Uri.UriSchemeHttps && tls is not null ? tls.ClientOptions() : new();

    /// <summary>The certificate chains to one of the trusted CA certificates (only those, not the system's roots), or to the system's roots when none are given.</summary>
    public bool ChainsToTrusted(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (_trusted.Count > 0)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_trusted);
        }

        return chain.Build(certificate);
    }
}
