using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;

namespace RaftKv.Operator.Tls;

/// <summary>
/// How the operator calls the members of a cluster whose client URLs use TLS: the CA it trusts for the members'
/// certificates (the server Secret's ca.crt), the client certificate it presents (the operator Secret's, when
/// clientCertAuth is on), and a version that changes whenever a Secret does (so connections are made afresh).
/// </summary>
internal sealed class MemberClientCredentials(X509Certificate2Collection trusted, X509Certificate2? clientCertificate, string version)
{
    public X509Certificate2Collection Trusted { get; } = trusted;

    public X509Certificate2? ClientCertificate { get; } = clientCertificate;

    public string Version { get; } = version;

    /// <summary>
    /// Whether a member's certificate, seen on a connection to its pod IP, chains to <see cref="Trusted"/> and names
    /// <paramref name="expectedHost"/> (the member's stable DNS name): the pod IP itself is not in the certificate.
    /// </summary>
    public bool Accepts(X509Certificate2 certificate, X509Chain? presented, string expectedHost, DateTimeOffset now) =>
        ClusterTlsCheck.ChainProblem(certificate, presented?.ChainElements.Skip(1).Select(e => e.Certificate), Trusted, ServerAuth, now) is null
        && certificate.MatchesHostname(expectedHost);

    public static Oid ServerAuth { get; } = new("1.3.6.1.5.5.7.3.1");

    public static Oid ClientAuth { get; } = new("1.3.6.1.5.5.7.3.2");
}

/// <summary>What <see cref="ClusterTlsCheck.Check"/> found: the credentials to call the members, or what is wrong with the Secrets.</summary>
/// <param name="Credentials">Set when the client URLs use TLS and the Secrets are usable.</param>
/// <param name="Problem">What is wrong, said so that a user knows what to fix; null when nothing is.</param>
internal sealed record TlsCheckResult(MemberClientCredentials? Credentials, string? Problem)
{
    public static TlsCheckResult None { get; } = new(null, null);
}

/// <summary>
/// Checks a RaftCluster's TLS Secrets before the operator relies on them (pure: the Secrets and the time are given).
/// Each must hold a PEM certificate and matching key (<c>tls.crt</c>, <c>tls.key</c>) and, for the server and peer
/// Secrets, the CA (<c>ca.crt</c>) the certificate chains to. The server and peer certificates must name every member's
/// stable DNS name (members call each other and the operator verifies them by those names) and allow both server and
/// client use (members present them when they call each other and when they forward to the leader). A Secret that
/// fails a check stops the operator from changing the cluster (a pod could not start, or the operator could not verify it)
/// and sets Degraded with the reason TLSSecretInvalid.
/// </summary>
internal static class ClusterTlsCheck
{
    public const string CertKey = ClusterObjectBuilder.TlsCertKey;
    public const string KeyKey = ClusterObjectBuilder.TlsKeyKey;
    public const string CaKey = ClusterObjectBuilder.TlsCaKey;

    /// <summary>The Secrets <paramref name="tls"/> names, in the order they are checked.</summary>
    public static IReadOnlyList<string> SecretNames(RaftClusterTls? tls) =>
        tls is null ? [] : new[] { tls.ServerSecretName, tls.PeerSecretName, tls.OperatorSecretName }.OfType<string>().Distinct(StringComparer.Ordinal).ToList();

    /// <param name="tls">The cluster's spec.tls.</param>
    /// <param name="names">The cluster's names (member hosts, namespace).</param>
    /// <param name="memberCount">How many members the certificates must name (ordinals 0..memberCount-1).</param>
    /// <param name="secrets">The Secrets by name, null for one that does not exist.</param>
    /// <param name="now">The time certificates must be valid at.</param>
    public static TlsCheckResult Check(RaftClusterTls? tls, ClusterNames names, int memberCount, IReadOnlyDictionary<string, V1Secret?> secrets, DateTimeOffset now)
    {
        if (tls is null || (tls.ServerSecretName is null && tls.PeerSecretName is null))
        {
            return TlsCheckResult.None;
        }

        var hosts = Enumerable.Range(0, Math.Max(1, memberCount)).Select(names.Host).ToList();
        var problems = new List<string>();
        X509Certificate2Collection? serverCa = null;
        if (tls.ServerSecretName is { } server)
        {
            serverCa = CheckMemberSecret(server, "serverSecretName", names, hosts, secrets, now, problems);
        }

        if (tls.PeerSecretName is { } peer)
        {
            CheckMemberSecret(peer, "peerSecretName", names, hosts, secrets, now, problems);
        }

        X509Certificate2? client = null;
        if (tls.ServerSecretName is not null && tls.OperatorSecretName is { } operatorSecret && serverCa is not null)
        {
            var data = Data(operatorSecret, "operatorSecretName", names, secrets, problems, CertKey, KeyKey);
            if (data is not null && Pair(operatorSecret, data, problems) is { } pair)
            {
                if (ChainProblem(pair.Leaf, pair.Intermediates, serverCa, MemberClientCredentials.ClientAuth, now) is { } chain)
                {
                    problems.Add($"the client certificate in Secret {operatorSecret} (tls.operatorSecretName) is not accepted by the members: {chain} "
                        + $"(it must be issued by the CA in Secret {tls.ServerSecretName}'s {CaKey}, for client auth)");
                }
                else
                {
                    client = pair.Leaf;
                }
            }
        }

        if (problems.Count > 0)
        {
            return new TlsCheckResult(null, string.Join("; ", problems));
        }

        if (serverCa is null)
        {
            return TlsCheckResult.None; // TLS between peers only: the operator calls the members in plain HTTP
        }

        var version = string.Join(",", SecretNames(tls).Select(n => $"{n}@{secrets[n]!.Metadata?.ResourceVersion}"));
        return new TlsCheckResult(new MemberClientCredentials(serverCa, tls.ClientCertAuth ? client : null, version), null);
    }

    /// <summary>Checks a member Secret (server or peer side); returns its CA when usable.</summary>
    private static X509Certificate2Collection? CheckMemberSecret(string secret, string field, ClusterNames names, List<string> hosts,
        IReadOnlyDictionary<string, V1Secret?> secrets, DateTimeOffset now, List<string> problems)
    {
        var data = Data(secret, field, names, secrets, problems, CertKey, KeyKey, CaKey);
        if (data is null || Pair(secret, data, problems) is not { } pair)
        {
            return null;
        }

        var ca = new X509Certificate2Collection();
        try
        {
            ca.ImportFromPem(Encoding.UTF8.GetString(data[CaKey]));
        }
        catch (CryptographicException e)
        {
            problems.Add($"Secret {secret} (tls.{field}) has an unreadable {CaKey}: {e.Message} (it must hold the issuing CA's certificate in PEM)");
            return null;
        }

        if (ca.Count == 0)
        {
            problems.Add($"Secret {secret} (tls.{field}) has no PEM certificate in {CaKey}: add the issuing CA's certificate (cert-manager does)");
            return null;
        }

        var before = problems.Count;
        foreach (var use in new[] { MemberClientCredentials.ServerAuth, MemberClientCredentials.ClientAuth })
        {
            if (ChainProblem(pair.Leaf, pair.Intermediates, ca, use, now) is { } chain)
            {
                problems.Add($"the certificate in Secret {secret} (tls.{field}) {chain} (members use it as server and as client certificate: "
                    + "it must chain to ca.crt and allow server auth and client auth)");
                break;
            }
        }

        var unnamed = hosts.Where(h => !pair.Leaf.MatchesHostname(h)).ToList();
        if (unnamed.Count > 0)
        {
            problems.Add($"the certificate in Secret {secret} (tls.{field}) does not name {string.Join(", ", unnamed)}: "
                + $"add the DNS name {names.MembersWildcard} (members are called by these names)");
        }

        return problems.Count == before ? ca : null;
    }

    /// <summary>The Secret's data when it exists and has every key; else records what is missing.</summary>
    private static IDictionary<string, byte[]>? Data(string secret, string field, ClusterNames names, IReadOnlyDictionary<string, V1Secret?> secrets,
        List<string> problems, params string[] keys)
    {
        if (secrets.GetValueOrDefault(secret) is not { } found)
        {
            problems.Add($"Secret {secret} (tls.{field}) not found in namespace {names.Namespace}: create it, of type kubernetes.io/tls with "
                + $"{string.Join(", ", keys)} (a cert-manager Certificate makes one)");
            return null;
        }

        var data = found.Data ?? new Dictionary<string, byte[]>();
        var missing = keys.Where(k => !data.TryGetValue(k, out var value) || value is not { Length: > 0 }).ToList();
        if (missing.Count > 0)
        {
            problems.Add($"Secret {secret} (tls.{field}) has no {string.Join(", ", missing)}: it must hold {string.Join(", ", keys)} in PEM");
            return null;
        }

        return data;
    }

    /// <summary>The certificate (with any intermediates after it in tls.crt) and its key, or null with the problem recorded.</summary>
    private static (X509Certificate2 Leaf, X509Certificate2Collection Intermediates)? Pair(string secret, IDictionary<string, byte[]> data, List<string> problems)
    {
        try
        {
            var certPem = Encoding.UTF8.GetString(data[CertKey]);
            var leaf = X509Certificate2.CreateFromPem(certPem, Encoding.UTF8.GetString(data[KeyKey]));
            var all = new X509Certificate2Collection();
            all.ImportFromPem(certPem);
            var intermediates = new X509Certificate2Collection();
            foreach (var certificate in all.Skip(1))
            {
                intermediates.Add(certificate);
            }

            return (leaf, intermediates);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException) // ArgumentException: the key is another certificate's
        {
            problems.Add($"Secret {secret} has no usable certificate and key in {CertKey} and {KeyKey}: {e.Message} "
                + "(both must be PEM, the key unencrypted and matching the certificate)");
            return null;
        }
    }

    /// <summary>Null when <paramref name="leaf"/> chains to <paramref name="trusted"/> at <paramref name="now"/> for <paramref name="use"/>; else what is wrong.</summary>
    internal static string? ChainProblem(X509Certificate2 leaf, IEnumerable<X509Certificate2>? intermediates, X509Certificate2Collection trusted, Oid use, DateTimeOffset now)
    {
        if (leaf.NotAfter.ToUniversalTime() < now.UtcDateTime)
        {
            return $"expired at {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z: renew it";
        }

        if (leaf.NotBefore.ToUniversalTime() > now.UtcDateTime)
        {
            return $"is not valid before {leaf.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        chain.ChainPolicy.ApplicationPolicy.Add(use);
        foreach (var intermediate in intermediates ?? [])
        {
            chain.ChainPolicy.ExtraStore.Add(intermediate);
        }

        if (chain.Build(leaf))
        {
            return null;
        }

        var why = chain.ChainStatus.Select(s => s.Status).Distinct().Select(s => s switch
        {
            X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "is not issued by the CA in ca.crt",
            X509ChainStatusFlags.NotValidForUsage => $"does not allow {(use.Value == MemberClientCredentials.ServerAuth.Value ? "server" : "client")} auth (extended key usage)",
            _ => s.ToString(),
        });
        return string.Join(", ", why);
    }
}
