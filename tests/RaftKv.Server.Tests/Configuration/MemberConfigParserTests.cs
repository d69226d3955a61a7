using RaftKv.Server.Configuration;

namespace RaftKv.Server.Tests.Configuration;

public sealed class MemberConfigParserTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    [Fact]
    public void Defaults_are_etcds()
    {
        var config = MemberConfigParser.Parse([], NoEnvironment);

        Assert.Equal("default", config.Name);
        Assert.Equal("default.etcd", config.DataDir);
        Assert.Equal(Path.Combine("default.etcd", "member", "wal"), config.EffectiveWalDir);
        Assert.Equal(100, config.HeartbeatIntervalMs);
        Assert.Equal(1000, config.ElectionTimeoutMs);
        Assert.Equal(100_000UL, config.SnapshotCount);
        Assert.Equal(1_572_864, config.MaxRequestBytes);
        Assert.Equal(128, config.MaxTxnOps);
        Assert.Equal(2L * 1024 * 1024 * 1024, config.EffectiveQuotaBackendBytes);
        Assert.Equal("etcd-cluster", config.InitialClusterToken);
        Assert.Equal(InitialClusterState.New, config.InitialClusterState);
        var only = Assert.Single(config.InitialCluster);
        Assert.Equal("default", only.Name);
        Assert.Equal("http://localhost:2380/", only.PeerUrls.Single().ToString());
    }

    [Fact]
    public void The_command_line_of_etcds_three_member_example_is_understood()
    {
        string[] args =
        [
            "--name", "infra1", "--initial-advertise-peer-urls", "http://127.0.0.1:12380",
            "--listen-peer-urls", "http://127.0.0.1:12380",
            "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
            "--initial-cluster-token", "etcd-cluster-1",
            "--initial-cluster", "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380",
            "--initial-cluster-state", "new",
        ];

        var config = MemberConfigParser.Parse(args, NoEnvironment);

        Assert.Equal("infra1", config.Name);
        Assert.Equal("infra1.etcd", config.DataDir);
        Assert.Equal("etcd-cluster-1", config.InitialClusterToken);
        Assert.Equal(["infra1", "infra2", "infra3"], config.InitialCluster.Select(m => m.Name));
        Assert.Equal(32380, config.InitialCluster[2].PeerUrls[0].Port);
    }

    [Theory]
    [InlineData("--name=a", "a")]
    [InlineData("-name=a", "a")]
    [InlineData("--name a", "a")]
    [InlineData("-name a", "a")]
    public void Flags_take_gos_spellings(string commandLine, string expectedName)
    {
        var args = commandLine.Split(' ').Concat(["--initial-cluster", $"{expectedName}=http://localhost:2380"]).ToArray();

        Assert.Equal(expectedName, MemberConfigParser.Parse(args, NoEnvironment).Name);
    }

    [Fact]
    public void Environment_variables_set_flags()
    {
        var environment = new Dictionary<string, string>
        {
            ["ETCD_NAME"] = "env-member",
            ["ETCD_INITIAL_CLUSTER"] = "env-member=http://localhost:2380",
            ["ETCD_HEARTBEAT_INTERVAL"] = "50",
            ["ETCD_ELECTION_TIMEOUT"] = "500",
            ["ETCD_QUOTA_BACKEND_BYTES"] = "1048576",
        };

        var config = MemberConfigParser.Parse([], environment);

        Assert.Equal("env-member", config.Name);
        Assert.Equal(50, config.HeartbeatIntervalMs);
        Assert.Equal(500, config.ElectionTimeoutMs);
        Assert.Equal(1_048_576, config.EffectiveQuotaBackendBytes);
    }

    [Theory]
    [InlineData(new[] { "--heartbeat-interval=300" }, "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]")]
    [InlineData(new[] { "--heartbeat-interval=1000", "--election-timeout=60000" }, "--election-timeout[60000ms] is too long, and should be set less than 50000ms")]
    [InlineData(new[] { "--bogus=1" }, "flag provided but not defined: -bogus")]
    [InlineData(new[] { "--name" }, "flag needs an argument: -name")]
    [InlineData(new[] { "--initial-cluster-state=old" }, "invalid value \"old\" for flag -initial-cluster-state: valid values are 'new' and 'existing'")]
    [InlineData(new[] { "--heartbeat-interval=fast" }, "invalid value \"fast\" for flag -heartbeat-interval: expected a whole number")]
    [InlineData(new[] { "--listen-client-urls=localhost:2379" }, "invalid value \"localhost:2379\" for flag -listen-client-urls")]
    [InlineData(new[] { "--listen-client-urls=https://127.0.0.1:2379" }, "--listen-client-urls has an https:// URL but no certificate: give --cert-file and --key-file (or --auto-tls for a self-signed one), or listen on http://")]
    [InlineData(new[] { "--listen-peer-urls=https://127.0.0.1:2380" }, "--listen-peer-urls has an https:// URL but no certificate: give --peer-cert-file and --peer-key-file (or --peer-auto-tls for a self-signed one), or listen on http://")]
    [InlineData(new[] { "--listen-metrics-urls=https://127.0.0.1:2381" }, "--listen-metrics-urls has an https:// URL but no certificate: give --cert-file and --key-file")]
    [InlineData(new[] { "--cert-file=/x.pem" }, "--cert-file and --key-file go together: give both")]
    [InlineData(new[] { "--peer-key-file=/x-key.pem" }, "--peer-cert-file and --peer-key-file go together: give both")]
    [InlineData(new[] { "--cert-file=/x.pem", "--key-file=/x-key.pem", "--client-cert-auth" }, "--client-cert-auth needs --trusted-ca-file")]
    [InlineData(new[] { "--client-cert-auth=maybe" }, "invalid value \"maybe\" for flag -client-cert-auth: expected true or false")]
    [InlineData(new[] { "--discovery=https://discovery.etcd.io/x" }, "--discovery is an etcd flag that raftkv does not support yet")]
    [InlineData(new[] { "--cert-file=/x.pem", "--key-file=/x-key.pem", "--client-crl-file=/crl.pem" }, "--client-crl-file checks the certificates that connecting sides present: it needs --client-cert-auth and --trusted-ca-file")]
    [InlineData(new[] { "--peer-crl-file=/crl.pem" }, "--peer-crl-file checks the certificates that connecting sides present: it needs --peer-client-cert-auth and --peer-trusted-ca-file")]
    [InlineData(new[] { "--auto-tls=maybe" }, "invalid value \"maybe\" for flag -auto-tls: expected true or false")]
    [InlineData(new[] { "--name=a", "--initial-cluster=b=http://localhost:2380" }, "couldn't find local name \"a\" in the initial cluster configuration")]
    [InlineData(new[] { "--initial-cluster=default=http://127.0.0.1:9999" }, "--initial-cluster has default=http://127.0.0.1:9999/ but missing from --initial-advertise-peer-urls=http://localhost:2380/")]
    [InlineData(new[] { "--initial-cluster=default=http://localhost:2380,default2", }, "\"default2\" is not name=peerURL")]
    [InlineData(new[] { "--auto-compaction-mode=revision", "--auto-compaction-retention=1h" }, "invalid auto compaction retention \"1h\" for mode revision")]
    [InlineData(new[] { "positional" }, "'positional' is not a flag")]
    [InlineData(new[] { "--auth-token=jwt,pub-key=app.rsa.pub,priv-key=app.rsa,sign-method=RS512" }, "--auth-token=jwt,pub-key=app.rsa.pub,priv-key=app.rsa,sign-method=RS512: JWT tokens are not supported; raftkv issues simple tokens only")]
    [InlineData(new[] { "--auth-token=magic" }, "unknown token type 'magic'; raftkv supports only 'simple'")]
    [InlineData(new[] { "--bcrypt-cost=3" }, "--bcrypt-cost=3 is out of range: bcrypt costs go from 4 to 31")]
    [InlineData(new[] { "--auth-token-ttl=0" }, "--auth-token-ttl=0 must be a positive number of seconds")]
    [InlineData(new[] { "--experimental-corrupt-check-time=5" }, "invalid value \"5\" for flag -experimental-corrupt-check-time")]
    [InlineData(new[] { "--experimental-initial-corrupt-check=maybe" }, "invalid value \"maybe\" for flag -experimental-initial-corrupt-check: expected true or false")]
    public void Bad_input_is_refused_with_a_message_that_says_what_to_change(string[] args, string expected)
    {
        var error = Assert.Throws<ConfigException>(() => MemberConfigParser.Parse(args, NoEnvironment));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Auth_flags_default_as_etcd_and_are_read_from_flags_and_environment()
    {
        var defaults = MemberConfigParser.Parse([], NoEnvironment);
        Assert.Equal((300, 10), (defaults.AuthTokenTtlSeconds, defaults.BcryptCost));
        var given = MemberConfigParser.Parse(["--auth-token=simple", "--auth-token-ttl=60"], new Dictionary<string, string> { ["ETCD_BCRYPT_COST"] = "4" });
        Assert.Equal((60, 4), (given.AuthTokenTtlSeconds, given.BcryptCost));
    }

    [Fact]
    public void Auto_TLS_from_flags_or_environment_lets_https_URLs_start_without_certificate_files()
    {
        string[] urls =
        [
            "--listen-client-urls=https://127.0.0.1:2379", "--advertise-client-urls=https://127.0.0.1:2379",
            "--listen-peer-urls=https://127.0.0.1:2380", "--initial-advertise-peer-urls=https://127.0.0.1:2380",
            "--initial-cluster=default=https://127.0.0.1:2380",
        ];

        var fromFlags = MemberConfigParser.Parse([.. urls, "--auto-tls", "--peer-auto-tls"], NoEnvironment);
        var fromEnvironment = MemberConfigParser.Parse(urls, new Dictionary<string, string> { ["ETCD_AUTO_TLS"] = "true", ["ETCD_PEER_AUTO_TLS"] = "true" });

        foreach (var config in new[] { fromFlags, fromEnvironment })
        {
            Assert.True(config.ClientTls.SelfSigned && config.PeerTls.SelfSigned, $"client {config.ClientTls}, peer {config.PeerTls}");
        }

        // Certificate files win over auto TLS, as in etcd (which logs that it ignores auto TLS).
        var withFiles = MemberConfigParser.Parse([.. urls, "--auto-tls", "--cert-file=/c.pem", "--key-file=/k.pem", "--peer-auto-tls"], NoEnvironment);
        Assert.False(withFiles.ClientTls.SelfSigned);
        Assert.True(withFiles.PeerTls.SelfSigned);
    }

    [Fact]
    public void A_flag_and_its_environment_variable_together_are_refused_as_etcd_does()
    {
        var environment = new Dictionary<string, string> { ["ETCD_NAME"] = "from-env" };

        var error = Assert.Throws<ConfigException>(() => MemberConfigParser.Parse(["--name=from-flag"], environment));

        Assert.Equal(
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)",
            error.Message);
    }

    [Theory]
    [InlineData("periodic", "1")]
    [InlineData("periodic", "30m")]
    [InlineData("periodic", "1h30m")]
    [InlineData("revision", "1000")]
    public void Compaction_retention_accepts_what_etcd_accepts(string mode, string retention)
    {
        var config = MemberConfigParser.Parse([$"--auto-compaction-mode={mode}", $"--auto-compaction-retention={retention}"], NoEnvironment);

        Assert.Equal(retention, config.AutoCompactionRetention);
    }

    [Fact]
    public void The_corruption_checks_are_etcds_flags_with_the_initial_check_on_by_default()
    {
        var defaults = MemberConfigParser.Parse([], NoEnvironment);
        Assert.True(defaults.InitialCorruptCheck);
        Assert.Equal(TimeSpan.Zero, defaults.CorruptCheckTime);

        var off = MemberConfigParser.Parse(["--experimental-initial-corrupt-check=false", "--experimental-corrupt-check-time", "5m"], NoEnvironment);
        Assert.False(off.InitialCorruptCheck);
        Assert.Equal(TimeSpan.FromMinutes(5), off.CorruptCheckTime);

        var fromEnvironment = MemberConfigParser.Parse([], new Dictionary<string, string>
        {
            ["ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK"] = "false",
            ["ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME"] = "90s",
        });
        Assert.False(fromEnvironment.InitialCorruptCheck);
        Assert.Equal(TimeSpan.FromSeconds(90), fromEnvironment.CorruptCheckTime);
        Assert.True(MemberConfigParser.Parse(["--experimental-initial-corrupt-check"], NoEnvironment).InitialCorruptCheck);
    }

    [Fact]
    public void The_peer_wire_is_on_by_default_and_can_be_turned_off_by_flag_or_environment()
    {
        Assert.True(MemberConfigParser.Parse([], NoEnvironment).PeerWire);
        Assert.True(MemberConfigParser.Parse(["--peer-wire"], NoEnvironment).PeerWire);
        Assert.False(MemberConfigParser.Parse(["--peer-wire=false"], NoEnvironment).PeerWire);
        Assert.False(MemberConfigParser.Parse([], new Dictionary<string, string> { ["ETCD_PEER_WIRE"] = "false" }).PeerWire);
        var error = Assert.Throws<ConfigException>(() => MemberConfigParser.Parse(["--peer-wire=off"], NoEnvironment));
        Assert.Contains("invalid value \"off\" for flag -peer-wire: expected true or false", error.Message, StringComparison.Ordinal);
    }
}
