using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using RaftKv.Server.Configuration;
using RaftKv.Server.Node;

namespace RaftKv.Server.Peers;

/// <summary>
/// One side's TLS (client URLs or peer URLs), loaded from the PEM files of <see cref="TlsFiles"/>: the certificate this member
/// serves with and, when it calls other members on that side, presents as its client certificate (as etcd does with its
/// --peer-cert-file); and the CA certificates that the other side's certificates must chain to.
/// </summary>
internal sealed class MemberTls
{
    private readonly X509Certificate2Collection _trusted;

    private MemberTls(X509Certificate2 certificate, X509Certificate2Collection trusted, bool clientCertAuth)
    {
        Certificate = certificate;
        _trusted = trusted;
        ClientCertAuth = clientCertAuth;
    }

    public X509Certificate2 Certificate { get; }

    public bool ClientCertAuth { get; }

    /// <summary>Loads the files, or null when <paramref name="files"/> has no certificate; a file that cannot be read or parsed ends start-up with its name.</summary>
    public static MemberTls? Load(TlsFiles files, string flagPrefix)
    {
        if (!files.Enabled)
        {
            return null;
        }

        X509Certificate2 certificate;
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(files.CertFile, files.KeyFile);

            // A certificate made from PEM keeps its key in memory only; TLS on Linux wants it exportable as PKCS#12 once.
            certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new MemberStartException(
                $"cannot load --{flagPrefix}cert-file {files.CertFile} with --{flagPrefix}key-file {files.KeyFile}: {e.Message} (both must be PEM, the key unencrypted and matching the certificate)", e);
        }

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

        return new MemberTls(certificate, trusted, files.ClientCertAuth);
    }

    /// <summary>Kestrel's settings for a listener on this side: this certificate; client certificates required and checked when asked for.</summary>
    public HttpsConnectionAdapterOptions ServerOptions() => new()
    {
        ServerCertificate = Certificate,
        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateMode = ClientCertAuth ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.NoCertificate,
        ClientCertificateValidation = (certificate, _, _) => ChainsToTrusted(certificate),
    };

    /// <summary>TLS for a call to another member on this side: this certificate as client identity, the server's checked against the CA and its name.</summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        ClientCertificates = [Certificate],
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            certificate is X509Certificate2 server
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
