using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using RaftKv.Server.Node;

namespace RaftKv.Server.Peers;

/// <summary>
/// A certificate and its key from PEM files, read again on use when either file changed: as etcd reloads its
/// certificates on every handshake, certificates rotated on disk (cert-manager, a kubelet-refreshed Secret volume) apply
/// to new connections without a restart. Files that cannot be loaded at start-up end it; later, a pair that cannot be
/// loaded (a rotation caught half-way, a key that does not match) leaves the previous certificate in use, logged, until
/// the files change again.
/// </summary>
internal sealed partial class ReloadingCertificate
{
    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private (FileVersion Cert, FileVersion Key) _version;
    private X509Certificate2 _current;

    private ReloadingCertificate(string certFile, string keyFile, ILogger logger, (FileVersion, FileVersion) version, X509Certificate2 current)
    {
        _certFile = certFile;
        _keyFile = keyFile;
        _logger = logger;
        _version = version;
        _current = current;
    }

    /// <summary>Loads the pair; start-up ends with <paramref name="error"/>(the reason) when it cannot be loaded.</summary>
    public static ReloadingCertificate Load(string certFile, string keyFile, Func<string, string> error, ILogger logger)
    {
        try
        {
            var version = (FileVersion.Of(certFile), FileVersion.Of(keyFile));
            return new ReloadingCertificate(certFile, keyFile, logger, version, Read(certFile, keyFile));
        }
        catch (Exception e) when (IsLoadFailure(e))
        {
            throw new MemberStartException(error(e.Message), e);
        }
    }

    /// <summary>The certificate to present now (read again if its files changed since the last use).</summary>
    public X509Certificate2 Current
    {
        get
        {
            lock (_lock)
            {
                try
                {
                    var version = (FileVersion.Of(_certFile), FileVersion.Of(_keyFile));
                    if (version != _version)
                    {
                        _version = version;
                        var loaded = Read(_certFile, _keyFile);
                        var subject = loaded.Subject;
                        var notAfter = loaded.NotAfter.ToUniversalTime();
                        _current = loaded;
                        LogReloaded(_logger, _certFile, subject, notAfter);
                    }
                }
                catch (Exception e) when (IsLoadFailure(e))
                {
                    LogReloadFailed(_logger, _certFile, _keyFile, e.Message);
                }

                return _current;
            }
        }
    }

    private static bool IsLoadFailure(Exception e) => e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException;

    private static X509Certificate2 Read(string certFile, string keyFile)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);

        // A certificate made from PEM keeps its key in memory only; TLS on Linux wants it exportable as PKCS#12 once.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "certificate {CertFile} changed on disk: new connections use {Subject} (valid until {NotAfter:u})")]
    private static partial void LogReloaded(ILogger logger, string certFile, string subject, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "certificate {CertFile} with key {KeyFile} changed on disk but cannot be loaded ({Error}); the previous certificate stays in use")]
    private static partial void LogReloadFailed(ILogger logger, string certFile, string keyFile, string error);
}

/// <summary>What tells a file's new contents from its old without reading it: its last write time and length.</summary>
internal readonly record struct FileVersion(DateTime Written, long Length)
{
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static FileVersion Of(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? new FileVersion(info.LastWriteTimeUtc, info.Length) : throw new FileNotFoundException("no such file", path);
    }
}
