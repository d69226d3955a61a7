namespace RaftKv.Server.Configuration;

/// <summary>Whether this member starts a new cluster or joins one that already runs.</summary>
internal enum InitialClusterState
{
    New,
    Existing,
}

/// <summary>How old revisions are compacted automatically (etcd's <c>--auto-compaction-mode</c>).</summary>
internal enum AutoCompactionMode
{
    Periodic,
    Revision,
}

/// <summary>
/// Everything a member is started with, after flags and <c>ETCD_*</c> environment variables were read
/// and validated. Field names and defaults are etcd's, so an etcd command line means the same here.
/// </summary>
internal sealed record MemberConfig
{
    public const int DefaultHeartbeatMs = 100;
    public const int DefaultElectionMs = 1000;

    /// <summary>etcd refuses election timeouts above this.</summary>
    public const int MaxElectionMs = 50_000;

    /// <summary>1.5 MiB, etcd's default largest request.</summary>
    public const int DefaultMaxRequestBytes = 1_572_864;

    public const int DefaultMaxTxnOps = 128;

    /// <summary>2 GiB, etcd's backend quota when <c>--quota-backend-bytes</c> is 0.</summary>
    public const long DefaultQuotaBackendBytes = 2L * 1024 * 1024 * 1024;

    public string Name { get; init; } = "default";
    public string DataDir { get; init; } = "default.etcd";
    public string? WalDir { get; init; }

    /// <summary>--restore-snapshot (raftkv only): restore this file into the data dir on a new member's first start.</summary>
    public string? RestoreSnapshot { get; init; }
    public IReadOnlyList<Uri> ListenClientUrls { get; init; } = [new("http://localhost:2379")];
    public IReadOnlyList<Uri> AdvertiseClientUrls { get; init; } = [new("http://localhost:2379")];
    public IReadOnlyList<Uri> ListenPeerUrls { get; init; } = [new("http://localhost:2380")];
    public IReadOnlyList<Uri> InitialAdvertisePeerUrls { get; init; } = [new("http://localhost:2380")];
    public IReadOnlyList<Uri> ListenMetricsUrls { get; init; } = [];

    /// <summary>Member name → peer URLs of the cluster being bootstrapped, in the order given.</summary>
    public IReadOnlyList<InitialMember> InitialCluster { get; init; } = [new("default", [new("http://localhost:2380")])];

    public InitialClusterState InitialClusterState { get; init; } = InitialClusterState.New;
    public string InitialClusterToken { get; init; } = "etcd-cluster";
    public int HeartbeatIntervalMs { get; init; } = DefaultHeartbeatMs;
    public int ElectionTimeoutMs { get; init; } = DefaultElectionMs;
    public ulong SnapshotCount { get; init; } = 100_000;

    /// <summary>Entries kept in the log after a snapshot so slow followers catch up without one (etcd's default 5000).</summary>
    public ulong SnapshotCatchUpEntries { get; init; } = 5_000;

    /// <summary>As given; 0 means <see cref="DefaultQuotaBackendBytes"/>, see <see cref="EffectiveQuotaBackendBytes"/>.</summary>
    public long QuotaBackendBytes { get; init; }

    public AutoCompactionMode AutoCompactionMode { get; init; } = AutoCompactionMode.Periodic;

    /// <summary>As given: hours or a duration for periodic mode, a revision count for revision mode; "0" is off.</summary>
    public string AutoCompactionRetention { get; init; } = "0";

    public int MaxRequestBytes { get; init; } = DefaultMaxRequestBytes;
    public int MaxTxnOps { get; init; } = DefaultMaxTxnOps;

    /// <summary>How many snapshot files to keep (0: unlimited).</summary>
    public uint MaxSnapshots { get; init; } = 5;

    /// <summary>
    /// etcd's bound on WAL segments kept beyond what recovery needs (0: unlimited). Accepted for etcd's command lines; raftkv
    /// deletes the segments a snapshot covers as soon as the snapshot is saved, so there are none beyond what recovery needs.
    /// </summary>
    public uint MaxWals { get; init; } = 5;

    /// <summary>Lifetime of a simple auth token since its last use (etcd's --auth-token-ttl, seconds).</summary>
    public int AuthTokenTtlSeconds { get; init; } = 300;

    /// <summary>bcrypt cost of the password hashes this member makes (etcd's --bcrypt-cost; 4..31).</summary>
    public int BcryptCost { get; init; } = 10;

    /// <summary>TLS of the client URLs (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth).</summary>
    public TlsFiles ClientTls { get; init; } = new();

    /// <summary>TLS of the peer URLs (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth).</summary>
    public TlsFiles PeerTls { get; init; } = new();

    /// <summary>
    /// etcd's <c>--experimental-initial-corrupt-check</c>: a restarting member compares its store's HashKV with its peers' before
    /// serving, and refuses to start on a mismatch. On by default here (off in etcd 3.4): LMDB keeps no page checksums, so
    /// this is the check that catches a damaged store file (see docs/compatibility.md).
    /// </summary>
    public bool InitialCorruptCheck { get; init; } = true;

    /// <summary>etcd's <c>--experimental-corrupt-check-time</c>: how often the leader compares members' HashKV (zero: never).</summary>
    public TimeSpan CorruptCheckTime { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// raftkv's <c>--peer-wire</c> (no etcd counterpart): Raft messages to peers go on the peer wire (one plain or TLS
    /// connection per peer, length-prefixed batches; see Peers/PeerWire.cs). False sends them on the gRPC streams older
    /// versions use: a way back if the wire misbehaves somewhere, without a downgrade. Receiving is unaffected.
    /// </summary>
    public bool PeerWire { get; init; } = true;

    /// <summary>debug, info, warn or error.</summary>
    public string LogLevel { get; init; } = "info";

    public long EffectiveQuotaBackendBytes => QuotaBackendBytes == 0 ? DefaultQuotaBackendBytes : QuotaBackendBytes;

    /// <summary>The WAL directory: <c>--wal-dir</c> when given, else <c>DATA_DIR/member/wal</c> as etcd lays it out.</summary>
    public string EffectiveWalDir => WalDir ?? Path.Combine(DataDir, "member", "wal");

    public string SnapDir => Path.Combine(DataDir, "member", "snap");
}

/// <summary>One entry of <c>--initial-cluster</c>: a member name and the peer URLs it advertises.</summary>
internal sealed record InitialMember(string Name, IReadOnlyList<Uri> PeerUrls);

/// <summary>PEM files of one side's TLS (client URLs or peer URLs), as etcd's flags name them.</summary>
internal sealed record TlsFiles
{
    /// <summary>The certificate this member presents (PEM); empty when the side has no TLS.</summary>
    public string CertFile { get; init; } = "";

    /// <summary>The certificate's private key (PEM).</summary>
    public string KeyFile { get; init; } = "";

    /// <summary>CA certificates (PEM) that sign the certificates of the other side; empty trusts the system's roots.</summary>
    public string TrustedCaFile { get; init; } = "";

    /// <summary>Connections must present a certificate signed by <see cref="TrustedCaFile"/>.</summary>
    public bool ClientCertAuth { get; init; }

    /// <summary>
    /// etcd's --auto-tls / --peer-auto-tls: without <see cref="CertFile"/>, a self-signed certificate made in
    /// DATA_DIR/fixtures/client (or /peer) on first start and kept; the other side's certificates are then not verified.
    /// Ignored (with a warning) when certificate files are given, as in etcd.
    /// </summary>
    public bool AutoTls { get; init; }

    /// <summary>A certificate revocation list (--client-crl-file / --peer-crl-file): certificates it revokes are refused.</summary>
    public string CrlFile { get; init; } = "";

    /// <summary>The CRL flag of a side: <c>client-crl-file</c> (prefix "") or <c>peer-crl-file</c> (prefix "peer-").</summary>
    public static string CrlFlag(string flagPrefix) => flagPrefix.Length == 0 ? "client-crl-file" : "peer-crl-file";

    /// <summary>This side has a certificate to serve with: files, or a self-signed one.</summary>
    public bool Enabled => CertFile.Length > 0 || AutoTls;

    /// <summary>The self-signed certificate is used: auto TLS asked for and no certificate file given.</summary>
    public bool SelfSigned => AutoTls && CertFile.Length == 0;
}
