using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging;
using RaftKv.Server.Node;

namespace RaftKv.Server.Peers;

/// <summary>
/// etcd's --client-crl-file / --peer-crl-file: a certificate revocation list (PEM "X509 CRL" or DER) whose revoked
/// serial numbers a connecting side's certificates must not carry. As in etcd the file is read again when it changes
/// (so a new list takes effect without a restart), its signature is not checked (it is a local file the operator put
/// there), and a list that cannot be read any more refuses every certificate rather than letting revoked ones in.
/// </summary>
internal sealed partial class RevocationList
{
    private readonly string _path;
    private readonly string _flag;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private FileVersion _version;
    private HashSet<string>? _revoked;

    private RevocationList(string path, string flag, ILogger logger, FileVersion version, HashSet<string> revoked)
    {
        _path = path;
        _flag = flag;
        _logger = logger;
        _version = version;
        _revoked = revoked;
    }

    /// <summary>Reads the list at start-up; one that cannot be read or parsed ends start-up naming <paramref name="flag"/> and the file.</summary>
    public static RevocationList Load(string path, string flag, ILogger logger)
    {
        try
        {
            var version = FileVersion.Of(path);
            return new RevocationList(path, flag, logger, version, RevokedSerials(File.ReadAllBytes(path)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or AsnContentException or CryptographicException or FormatException)
        {
            throw new MemberStartException($"cannot load --{flag} {path}: {e.Message} (expected a certificate revocation list, PEM or DER)", e);
        }
    }

    /// <summary>Whether any of <paramref name="certificates"/> is revoked (or the list cannot be read any more).</summary>
    public bool Refuses(IEnumerable<X509Certificate2> certificates)
    {
        var revoked = Current();
        if (revoked is null)
        {
            return true;
        }

        foreach (var certificate in certificates)
        {
            var serial = Serial(certificate.SerialNumberBytes.Span);
            if (revoked.Contains(serial))
            {
                LogRevoked(_logger, certificate.Subject, serial, _flag);
                return true;
            }
        }

        return false;
    }

    /// <summary>The revoked serial numbers (hex, no leading zeros) of a CRL file's bytes.</summary>
    /// <exception cref="AsnContentException">Not a certificate revocation list.</exception>
    internal static HashSet<string> RevokedSerials(byte[] file)
    {
        var der = file.AsMemory();
        var text = Encoding.ASCII.GetString(file);
        if (PemEncoding.TryFind(text, out var fields) && text[fields.Label].SequenceEqual("X509 CRL"))
        {
            der = Convert.FromBase64String(text[fields.Base64Data].ToString());
        }

        // CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue } (RFC 5280 5.1)
        var list = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
        var tbs = list.ReadSequence();
        if (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Integer))
        {
            tbs.ReadInteger(); // version
        }

        tbs.ReadSequence(); // signature algorithm
        tbs.ReadSequence(); // issuer
        tbs.ReadEncodedValue(); // thisUpdate
        var serials = new HashSet<string>(StringComparer.Ordinal);
        if (tbs.HasData && (tbs.PeekTag().HasSameClassAndValue(Asn1Tag.UtcTime) || tbs.PeekTag().HasSameClassAndValue(Asn1Tag.GeneralizedTime)))
        {
            tbs.ReadEncodedValue(); // nextUpdate
        }

        if (tbs.HasData && tbs.PeekTag().HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var entries = tbs.ReadSequence(); // revokedCertificates
            while (entries.HasData)
            {
                var entry = entries.ReadSequence();
                serials.Add(Serial(entry.ReadIntegerBytes().Span));
            }
        }

        return serials;
    }

    private static string Serial(ReadOnlySpan<byte> bigEndian) => Convert.ToHexString(bigEndian.TrimStart((byte)0));

    /// <summary>The revoked serials, read again when the file's time or size changed; null when it cannot be read.</summary>
    private HashSet<string>? Current()
    {
        lock (_lock)
        {
            try
            {
                var version = FileVersion.Of(_path);
                if (version != _version)
                {
                    _version = version;
                    _revoked = RevokedSerials(File.ReadAllBytes(_path));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or AsnContentException or CryptographicException or FormatException)
            {
                LogUnreadable(_logger, _flag, _path, e.Message);
                _version = default;
                _revoked = null;
            }

            return _revoked;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "rejected connection: certificate {Subject} (serial {Serial}) is revoked by --{Flag}")]
    private static partial void LogRevoked(ILogger logger, string subject, string serial, string flag);

    [LoggerMessage(Level = LogLevel.Error, Message = "--{Flag} {Path} cannot be read ({Error}); every certificate is refused until it can")]
    private static partial void LogUnreadable(ILogger logger, string flag, string path, string error);
}
