using System.Globalization;

namespace RaftKv.Server.Configuration;

/// <summary>
/// Reads etcd's flags (<c>--name=x</c>, <c>--name x</c>, <c>-name x</c>) and their <c>ETCD_*</c> environment
/// variables into a validated <see cref="MemberConfig"/>. Rules follow etcd 3.4: a flag and its environment
/// variable both set is an error; an unknown flag is an error; values are checked as etcd checks them.
/// </summary>
internal static class MemberConfigParser
{
    private delegate MemberConfig Apply(MemberConfig config, string value);

    private sealed record Flag(string Name, string Help, Apply Set, bool IsBool = false);

    private static readonly Flag[] Flags =
    [
        new("name", "Human-readable name for this member.", (c, v) => c with { Name = v }),
        new("data-dir", "Path to the data directory (default: ${name}.etcd).", (c, v) => c with { DataDir = v }),
        new("wal-dir", "Path to a dedicated WAL directory (default: DATA_DIR/member/wal).", (c, v) => c with { WalDir = v }),
        new("listen-client-urls", "URLs to listen on for client traffic.", (c, v) => c with { ListenClientUrls = Urls("listen-client-urls", v) }),
        new("advertise-client-urls", "Client URLs of this member, as advertised to the rest of the cluster.", (c, v) => c with { AdvertiseClientUrls = Urls("advertise-client-urls", v) }),
        new("listen-peer-urls", "URLs to listen on for peer traffic.", (c, v) => c with { ListenPeerUrls = Urls("listen-peer-urls", v) }),
        new("initial-advertise-peer-urls", "Peer URLs of this member, as advertised to the rest of the cluster.", (c, v) => c with { InitialAdvertisePeerUrls = Urls("initial-advertise-peer-urls", v) }),
        new("listen-metrics-urls", "Extra URLs to serve /metrics and /health on.", (c, v) => c with { ListenMetricsUrls = Urls("listen-metrics-urls", v) }),
        new("initial-cluster", "Initial cluster configuration for bootstrapping: name=peerURL,...", (c, v) => c with { InitialCluster = ParseInitialCluster(v) }),
        new("initial-cluster-state", "Initial cluster state ('new' or 'existing').", (c, v) => c with { InitialClusterState = ParseClusterState(v) }),
        new("initial-cluster-token", "Initial cluster token for the cluster during bootstrap.", (c, v) => c with { InitialClusterToken = v }),
        new("heartbeat-interval", "Time (in milliseconds) of a heartbeat interval.", (c, v) => c with { HeartbeatIntervalMs = Int32("heartbeat-interval", v) }),
        new("election-timeout", "Time (in milliseconds) for an election to timeout.", (c, v) => c with { ElectionTimeoutMs = Int32("election-timeout", v) }),
        new("snapshot-count", "Number of committed transactions to trigger a snapshot to disk.", (c, v) => c with { SnapshotCount = UInt64("snapshot-count", v) }),
        new("experimental-snapshot-catchup-entries", "Number of entries for a slow follower to catch up after compacting the raft storage entries.", (c, v) => c with { SnapshotCatchUpEntries = UInt64("experimental-snapshot-catchup-entries", v) }),
        new("quota-backend-bytes", "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).", (c, v) => c with { QuotaBackendBytes = Int64("quota-backend-bytes", v) }),
        new("auto-compaction-mode", "Interpret 'auto-compaction-retention' as 'periodic' (duration) or 'revision' (count).", (c, v) => c with { AutoCompactionMode = ParseCompactionMode(v) }),
        new("auto-compaction-retention", "Auto compaction retention (0 means off): hours or a duration like 30m for periodic, a count for revision.", (c, v) => c with { AutoCompactionRetention = v }),
        new("max-request-bytes", "Maximum client request size in bytes the server will accept.", (c, v) => c with { MaxRequestBytes = Int32("max-request-bytes", v) }),
        new("max-txn-ops", "Maximum number of operations permitted in a transaction.", (c, v) => c with { MaxTxnOps = Int32("max-txn-ops", v) }),
        new("max-snapshots", "Maximum number of snapshot files to retain (0 is unlimited).", (c, v) => c with { MaxSnapshots = UInt32("max-snapshots", v) }),
        new("max-wals", "Maximum number of wal files to retain (0 is unlimited).", (c, v) => c with { MaxWals = UInt32("max-wals", v) }),
        new("experimental-initial-corrupt-check", "Enable to check data corruption before serving any client/peer traffic (default true; false skips it).",
            (c, v) => c with { InitialCorruptCheck = Bool("experimental-initial-corrupt-check", v) }, IsBool: true),
        new("experimental-corrupt-check-time", "Duration of time between cluster corruption check passes (0s: off).",
            (c, v) => c with { CorruptCheckTime = Duration("experimental-corrupt-check-time", v) }),
        new("peer-wire", "raftkv only: send Raft messages to peers on the peer wire (default true); false sends them on gRPC streams, as older raftkv versions do. Members accept both either way.",
            (c, v) => c with { PeerWire = Bool("peer-wire", v) }, IsBool: true),
        new("restore-snapshot", "raftkv only: a snapshot file (etcdctl snapshot save of a raftkv member) that a new member with no WAL yet and --initial-cluster-state new restores into its data dir first, as 'raftkv snapshot restore' would; ignored once it has a WAL.",
            (c, v) => c with { RestoreSnapshot = v }),
        new("log-level", "Log level: debug, info, warn or error.", (c, v) => c with { LogLevel = ParseLogLevel(v) }),
        new("cert-file", "Path to the client server TLS cert file.", (c, v) => c with { ClientTls = c.ClientTls with { CertFile = v } }),
        new("key-file", "Path to the client server TLS key file.", (c, v) => c with { ClientTls = c.ClientTls with { KeyFile = v } }),
        new("trusted-ca-file", "Path to the client server TLS trusted CA cert file.", (c, v) => c with { ClientTls = c.ClientTls with { TrustedCaFile = v } }),
        new("client-cert-auth", "Enable client cert authentication.", (c, v) => c with { ClientTls = c.ClientTls with { ClientCertAuth = Bool("client-cert-auth", v) } }, IsBool: true),
        new("peer-cert-file", "Path to the peer server TLS cert file.", (c, v) => c with { PeerTls = c.PeerTls with { CertFile = v } }),
        new("peer-key-file", "Path to the peer server TLS key file.", (c, v) => c with { PeerTls = c.PeerTls with { KeyFile = v } }),
        new("peer-trusted-ca-file", "Path to the peer server TLS trusted CA file.", (c, v) => c with { PeerTls = c.PeerTls with { TrustedCaFile = v } }),
        new("peer-client-cert-auth", "Enable peer client cert authentication.", (c, v) => c with { PeerTls = c.PeerTls with { ClientCertAuth = Bool("peer-client-cert-auth", v) } }, IsBool: true),
        new("client-crl-file", "Path to the client certificate revocation list file (PEM or DER; read again when it changes).",
            (c, v) => c with { ClientTls = c.ClientTls with { CrlFile = v } }),
        new("peer-crl-file", "Path to the peer certificate revocation list file (PEM or DER; read again when it changes).",
            (c, v) => c with { PeerTls = c.PeerTls with { CrlFile = v } }),
        new("auto-tls", "Client TLS using generated certificates (self-signed, in DATA_DIR/fixtures/client; clients must skip verification or trust that file).",
            (c, v) => c with { ClientTls = c.ClientTls with { AutoTls = Bool("auto-tls", v) } }, IsBool: true),
        new("peer-auto-tls", "Peer TLS using generated certificates (self-signed, in DATA_DIR/fixtures/peer; members do not verify each other's).",
            (c, v) => c with { PeerTls = c.PeerTls with { AutoTls = Bool("peer-auto-tls", v) } }, IsBool: true),
        new("auth-token", "Authentication token type: only 'simple' (the default) is supported; etcd's 'jwt,...' is refused.", (c, v) => EnsureSimpleToken(v, c)),
        new("auth-token-ttl", "The lifetime in seconds of a simple auth token since its last use.", (c, v) => c with { AuthTokenTtlSeconds = Int32("auth-token-ttl", v) }),
        new("bcrypt-cost", "Cost of the bcrypt hash of user passwords (4..31).", (c, v) => c with { BcryptCost = Int32("bcrypt-cost", v) }),
        new("logger", "Logger to use; only 'zap' (structured) is accepted, as in etcd 3.5.", (c, v) => v == "zap" ? c : throw Invalid("logger", v, "only 'zap' is supported")),
    ];

    /// <summary>etcd flags this build recognises but cannot honour yet; naming them fails with a clear message.</summary>
    private static readonly string[] Unsupported =
    [
        "discovery", "discovery-srv", "discovery-proxy", "proxy", "enable-v2",
    ];

    public static string Usage()
    {
        var lines = Flags.Select(f => $"  --{f.Name}\n      {f.Help}");
        return string.Join('\n', lines);
    }

    /// <summary>Parses arguments and environment into a validated configuration, or throws <see cref="ConfigException"/>.</summary>
    public static MemberConfig Parse(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var byName = Flags.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var fromCommandLine = new List<(Flag Flag, string Value)>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith('-') || arg == "-" || arg == "--")
            {
                throw new ConfigException($"'{arg}' is not a flag; raftkv takes only flags (see 'raftkv --help')");
            }

            var body = arg.TrimStart('-');
            var equals = body.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? body : body[..equals];
            if (Array.IndexOf(Unsupported, name) >= 0)
            {
                throw new ConfigException($"--{name} is an etcd flag that raftkv does not support yet; remove it (discovery, the proxy and the v2 API are not implemented)");
            }

            if (!byName.TryGetValue(name, out var flag))
            {
                throw new ConfigException($"flag provided but not defined: -{name} (see 'raftkv --help')");
            }

            string value;
            if (equals >= 0)
            {
                value = body[(equals + 1)..];
            }
            else if (flag.IsBool)
            {
                value = "true";
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            else
            {
                throw new ConfigException($"flag needs an argument: -{name}");
            }

            fromCommandLine.Add((flag, value));
        }

        var config = new MemberConfig();
        var setOnCommandLine = new HashSet<string>(fromCommandLine.Select(f => f.Flag.Name), StringComparer.Ordinal);
        var explicitlySet = new HashSet<string>(setOnCommandLine, StringComparer.Ordinal);
        foreach (var flag in Flags)
        {
            var variable = EnvironmentName(flag.Name);
            if (!environment.TryGetValue(variable, out var value))
            {
                continue;
            }

            if (setOnCommandLine.Contains(flag.Name))
            {
                throw new ConfigException(
                    $"conflicting environment variable \"{variable}\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)");
            }

            config = flag.Set(config, value);
            explicitlySet.Add(flag.Name);
        }

        foreach (var (flag, value) in fromCommandLine)
        {
            config = flag.Set(config, value);
        }

        return Complete(config, explicitlySet);
    }

    /// <summary>The environment variable etcd reads for a flag: <c>initial-cluster</c> → <c>ETCD_INITIAL_CLUSTER</c>.</summary>
    public static string EnvironmentName(string flag) => "ETCD_" + flag.Replace('-', '_').ToUpperInvariant();

    /// <summary>Fills defaults that depend on other flags, as etcd does, then validates the whole.</summary>
    private static MemberConfig Complete(MemberConfig config, HashSet<string> explicitlySet)
    {
        if (!explicitlySet.Contains("data-dir"))
        {
            config = config with { DataDir = $"{config.Name}.etcd" };
        }

        if (!explicitlySet.Contains("initial-cluster"))
        {
            config = config with { InitialCluster = [new InitialMember(config.Name, config.InitialAdvertisePeerUrls)] };
        }

        Validate(config);
        return config;
    }

    private static void Validate(MemberConfig config)
    {
        if (config.Name.Length == 0)
        {
            throw new ConfigException("--name must not be empty");
        }

        if (config.BcryptCost is < 4 or > 31)
        {
            throw new ConfigException($"--bcrypt-cost={config.BcryptCost} is out of range: bcrypt costs go from 4 to 31 (etcd's default is 10)");
        }

        if (config.AuthTokenTtlSeconds <= 0)
        {
            throw new ConfigException($"--auth-token-ttl={config.AuthTokenTtlSeconds} must be a positive number of seconds (default 300)");
        }

        if (config.HeartbeatIntervalMs <= 0)
        {
            throw new ConfigException($"--heartbeat-interval[{config.HeartbeatIntervalMs}ms] must be positive");
        }

        if (5L * config.HeartbeatIntervalMs > config.ElectionTimeoutMs)
        {
            throw new ConfigException(
                $"--election-timeout[{config.ElectionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[{config.HeartbeatIntervalMs}ms]");
        }

        if (config.ElectionTimeoutMs > MemberConfig.MaxElectionMs)
        {
            throw new ConfigException(
                $"--election-timeout[{config.ElectionTimeoutMs}ms] is too long, and should be set less than {MemberConfig.MaxElectionMs}ms");
        }

        if (config.QuotaBackendBytes < 0)
        {
            throw new ConfigException($"--quota-backend-bytes[{config.QuotaBackendBytes}] must not be negative");
        }

        if (config.MaxRequestBytes <= 0 || config.MaxTxnOps <= 0)
        {
            throw new ConfigException("--max-request-bytes and --max-txn-ops must be positive");
        }

        if (config.SnapshotCount == 0)
        {
            throw new ConfigException("--snapshot-count must be positive");
        }

        ValidateCompactionRetention(config);
        ValidateTls(config.ClientTls, config.ListenClientUrls, "listen-client-urls", "");
        ValidateTls(config.ClientTls, config.ListenMetricsUrls, "listen-metrics-urls", "");
        ValidateTls(config.PeerTls, config.ListenPeerUrls, "listen-peer-urls", "peer-");

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var member in config.InitialCluster)
        {
            if (!names.Add(member.Name))
            {
                throw new ConfigException($"--initial-cluster names member \"{member.Name}\" twice; each member needs its own name");
            }
        }

        var self = config.InitialCluster.FirstOrDefault(m => m.Name == config.Name)
            ?? throw new ConfigException(
                $"couldn't find local name \"{config.Name}\" in the initial cluster configuration (add {config.Name}=<peer url> to --initial-cluster)");

        var advertised = config.InitialAdvertisePeerUrls.Select(u => u.ToString()).Order(StringComparer.Ordinal).ToArray();
        var listed = self.PeerUrls.Select(u => u.ToString()).Order(StringComparer.Ordinal).ToArray();
        if (!advertised.SequenceEqual(listed, StringComparer.Ordinal))
        {
            throw new ConfigException(
                $"--initial-cluster has {config.Name}={string.Join(',', listed)} but missing from --initial-advertise-peer-urls={string.Join(',', advertised)} (the two must name the same URLs)");
        }
    }

    private static void ValidateCompactionRetention(MemberConfig config)
    {
        var retention = config.AutoCompactionRetention;
        var valid = config.AutoCompactionMode switch
        {
            AutoCompactionMode.Revision => long.TryParse(retention, NumberStyles.None, CultureInfo.InvariantCulture, out _),
            _ => long.TryParse(retention, NumberStyles.None, CultureInfo.InvariantCulture, out _) || GoDuration.TryParse(retention, out _),
        };
        if (!valid)
        {
            throw new ConfigException(
                $"invalid auto compaction retention \"{retention}\" for mode {config.AutoCompactionMode.ToString().ToLowerInvariant()}: use hours (\"1\") or a duration (\"30m\") for periodic, a revision count (\"1000\") for revision");
        }
    }

    private static InitialMember[] ParseInitialCluster(string value)
    {
        // name=url,name=url; one name may appear with several URLs, which are then grouped.
        var members = new List<(string Name, List<Uri> Urls)>();
        foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw Invalid("initial-cluster", value, $"\"{part}\" is not name=peerURL");
            }

            var name = part[..equals];
            var url = ParseUrl("initial-cluster", part[(equals + 1)..]);
            var existing = members.FindIndex(m => m.Name == name);
            if (existing < 0)
            {
                members.Add((name, [url]));
            }
            else
            {
                members[existing].Urls.Add(url);
            }
        }

        if (members.Count == 0)
        {
            throw Invalid("initial-cluster", value, "it lists no member");
        }

        return members.Select(m => new InitialMember(m.Name, m.Urls)).ToArray();
    }

    private static InitialClusterState ParseClusterState(string value) => value switch
    {
        "new" => InitialClusterState.New,
        "existing" => InitialClusterState.Existing,
        _ => throw Invalid("initial-cluster-state", value, "valid values are 'new' and 'existing'"),
    };

    private static AutoCompactionMode ParseCompactionMode(string value) => value switch
    {
        "periodic" => AutoCompactionMode.Periodic,
        "revision" => AutoCompactionMode.Revision,
        _ => throw Invalid("auto-compaction-mode", value, "valid values are 'periodic' and 'revision'"),
    };

    private static string ParseLogLevel(string value) => value switch
    {
        "debug" or "info" or "warn" or "error" => value,
        _ => throw Invalid("log-level", value, "valid values are debug, info, warn and error"),
    };

    /// <summary>
    /// https:// listen URLs need a certificate and its key; a certificate needs its key and the other way round; client
    /// certificate authentication needs the CA that signs the clients' certificates. (etcd starts without TLS on an https://
    /// URL that has no certificate and fails later; refusing at start-up says what to add.)
    /// </summary>
    private static void ValidateTls(TlsFiles tls, IReadOnlyList<Uri> listen, string listenFlag, string prefix)
    {
        if (tls.CertFile.Length > 0 != tls.KeyFile.Length > 0)
        {
            throw new ConfigException($"--{prefix}cert-file and --{prefix}key-file go together: give both (the certificate and its private key, PEM)");
        }

        if (listen.Any(u => u.Scheme == "https") && !tls.Enabled)
        {
            throw new ConfigException(
                $"--{listenFlag} has an https:// URL but no certificate: give --{prefix}cert-file and --{prefix}key-file (or --{prefix}auto-tls for a self-signed one), or listen on http://");
        }

        if (tls.ClientCertAuth && tls.TrustedCaFile.Length == 0)
        {
            throw new ConfigException($"--{prefix}client-cert-auth needs --{prefix}trusted-ca-file (the CA that signs the certificates to accept)");
        }

        if (tls.CrlFile.Length > 0 && !tls.ClientCertAuth)
        {
            throw new ConfigException(
                $"--{TlsFiles.CrlFlag(prefix)} checks the certificates that connecting sides present: it needs --{prefix}client-cert-auth and --{prefix}trusted-ca-file");
        }
    }

    private static Uri[] Urls(string flag, string value)
    {
        var urls = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(u => ParseUrl(flag, u))
            .ToArray();
        return urls.Length > 0 ? urls : throw Invalid(flag, value, "give at least one URL");
    }

    private static Uri ParseUrl(string flag, string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw Invalid(flag, text, "expected a URL like http://127.0.0.1:2379");
        }

        if (url.IsDefaultPort || url.AbsolutePath != "/")
        {
            throw Invalid(flag, text, $"a URL needs a host and a port and no path, like {url.Scheme}://127.0.0.1:2379");
        }

        return url;
    }

    private static bool Bool(string flag, string value) =>
        bool.TryParse(value, out var b) ? b : throw Invalid(flag, value, "expected true or false");

    private static TimeSpan Duration(string flag, string value) =>
        GoDuration.TryParse(value, out var d, out var error) ? d : throw Invalid(flag, value, error);

    private static int Int32(string flag, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid(flag, value, "expected a whole number");

    private static long Int64(string flag, string value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid(flag, value, "expected a whole number");

    private static ulong UInt64(string flag, string value) =>
        ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid(flag, value, "expected a whole number, 0 or more");

    private static uint UInt32(string flag, string value) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Invalid(flag, value, "expected a whole number, 0 or more");

    /// <summary>etcd's --auth-token: "simple" (raftkv's only kind); "jwt,..." and anything else are refused.</summary>
    private static MemberConfig EnsureSimpleToken(string value, MemberConfig config)
    {
        var kind = value.Split(',')[0];
        return kind == "simple"
            ? config
            : throw new ConfigException(kind == "jwt"
                ? $"--auth-token={value}: JWT tokens are not supported; raftkv issues simple tokens only (use --auth-token=simple, the default, or leave the flag out)"
                : $"invalid value \"{value}\" for flag -auth-token: unknown token type '{kind}'; raftkv supports only 'simple' (the default)");
    }

    private static ConfigException Invalid(string flag, string value, string why) =>
        new($"invalid value \"{value}\" for flag -{flag}: {why}");
}
