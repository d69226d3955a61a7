using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tests.Api;

public sealed class RaftClusterValidatorTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(7)]
    [InlineData(9)]
    public void Odd_replicas_from_1_to_9_are_accepted(int replicas)
    {
        var errors = RaftClusterValidator.Validate(new RaftClusterSpec { Replicas = replicas });
        Assert.True(errors.Count == 0, string.Join("; ", errors));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(10)]
    [InlineData(11)]
    [InlineData(-1)]
    public void Other_replica_counts_are_rejected_saying_odd_and_why(int replicas)
    {
        var error = Assert.Single(RaftClusterValidator.Validate(new RaftClusterSpec { Replicas = replicas }));
        Assert.Equal("spec.replicas", error.Field);
        Assert.Contains("must be odd", error.Message, StringComparison.Ordinal);
        Assert.Contains("quorum", error.Message, StringComparison.Ordinal);
        Assert.Contains($"got {replicas}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("100ms", "1s", null)]
    [InlineData("100ms", "500ms", null)]
    [InlineData("100ms", "499ms", "at least 5 times heartbeatInterval")]
    [InlineData("1s", "50s", null)]
    [InlineData("1s", "50001ms", "at most 50s")]
    [InlineData("1s", "1m", "at most 50s")]
    [InlineData("100ms", null, "needs both")]
    [InlineData(null, "1s", "needs both")]
    [InlineData("100", "1s", "has no unit")]
    [InlineData("100ms", "1x", "unknown unit")]
    [InlineData("0s", "1s", "at least 1ms")]
    public void Manual_tuning_is_checked(string? heartbeat, string? election, string? expectedError)
    {
        var spec = new RaftClusterSpec { Tuning = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = heartbeat, ElectionTimeout = election } };
        var errors = RaftClusterValidator.Validate(spec);
        if (expectedError is null)
        {
            Assert.True(errors.Count == 0, string.Join("; ", errors));
        }
        else
        {
            Assert.True(errors.Any(e => e.Message.Contains(expectedError, StringComparison.Ordinal)),
                $"expected an error containing \"{expectedError}\", got: [{string.Join("; ", errors)}]");
        }
    }

    [Fact]
    public void The_election_error_names_the_smallest_acceptable_value()
    {
        var spec = new RaftClusterSpec { Tuning = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "150ms", ElectionTimeout = "700ms" } };
        var error = Assert.Single(RaftClusterValidator.Validate(spec));
        Assert.Equal("spec.tuning.electionTimeout", error.Field);
        Assert.Contains("use at least 750ms", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_tuning_ignores_the_ratio_but_still_checks_the_format()
    {
        var ratioOnly = new RaftClusterSpec { Tuning = new RaftClusterTuning { HeartbeatInterval = "1s", ElectionTimeout = "1s" } };
        Assert.Empty(RaftClusterValidator.Validate(ratioOnly));

        var malformed = new RaftClusterSpec { Tuning = new RaftClusterTuning { HeartbeatInterval = "fast" } };
        Assert.Equal("spec.tuning.heartbeatInterval", Assert.Single(RaftClusterValidator.Validate(malformed)).Field);
    }

    [Theory]
    [InlineData("10Gi", true)]
    [InlineData("500Mi", true)]
    [InlineData("1.5Ti", true)]
    [InlineData("0", false)]
    [InlineData("10GB", false)]
    [InlineData("", false)]
    public void Storage_size_must_be_a_positive_quantity(string size, bool valid)
    {
        var errors = RaftClusterValidator.Validate(new RaftClusterSpec { Storage = new RaftClusterStorage { Size = size } });
        Assert.True(valid == (errors.Count == 0), $"size \"{size}\": [{string.Join("; ", errors)}]");
    }

    [Fact]
    public void Storage_class_and_size_cannot_change_but_reclaim_policy_can()
    {
        var old = new RaftClusterSpec { Storage = new RaftClusterStorage { StorageClassName = "local-ssd", Size = "10Gi" } };

        var reclaim = new RaftClusterSpec { Storage = new RaftClusterStorage { StorageClassName = "local-ssd", Size = "10Gi", ReclaimPolicy = ReclaimPolicy.Delete } };
        Assert.Empty(RaftClusterValidator.ValidateUpdate(old, reclaim));

        var resized = new RaftClusterSpec { Storage = new RaftClusterStorage { StorageClassName = "local-ssd", Size = "20Gi" } };
        var sizeError = Assert.Single(RaftClusterValidator.ValidateUpdate(old, resized));
        Assert.Equal("spec.storage.size", sizeError.Field);
        Assert.Contains("immutable", sizeError.Message, StringComparison.Ordinal);

        var reclassed = new RaftClusterSpec { Storage = new RaftClusterStorage { StorageClassName = null, Size = "10Gi" } };
        Assert.Equal("spec.storage.storageClassName", Assert.Single(RaftClusterValidator.ValidateUpdate(old, reclassed)).Field);
    }

    [Fact]
    public void Replicas_may_change_on_update()
    {
        Assert.Empty(RaftClusterValidator.ValidateUpdate(new RaftClusterSpec { Replicas = 3 }, new RaftClusterSpec { Replicas = 5 }));
    }

    [Theory]
    [InlineData("demo", true)]
    [InlineData("a", true)]
    [InlineData("etcd-main-2", true)]
    [InlineData("Demo", false)]
    [InlineData("1demo", false)]
    [InlineData("demo-", false)]
    [InlineData("de.mo", false)]
    [InlineData("", false)]
    public void Cluster_names_must_be_dns_labels(string name, bool valid)
    {
        var errors = RaftClusterValidator.ValidateName(name);
        Assert.True(valid == (errors.Count == 0), $"\"{name}\": [{string.Join("; ", errors)}]");
    }

    [Fact]
    public void Cluster_names_leave_room_for_the_revision_hash_label()
    {
        Assert.Empty(RaftClusterValidator.ValidateName(new string('a', 52)));
        var error = Assert.Single(RaftClusterValidator.ValidateName(new string('a', 53)));
        Assert.Contains("at most 52", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tls_with_client_cert_auth_needs_the_operators_secret_and_which_sides_use_tls_is_fixed()
    {
        var error = Assert.Single(RaftClusterValidator.Validate(new RaftClusterSpec { Tls = new RaftClusterTls { ServerSecretName = "server" } }));
        Assert.Equal("spec.tls.operatorSecretName", error.Field);
        Assert.Equal(RaftClusterTls.OperatorSecretRuleMessage, error.Message);
        Assert.Empty(RaftClusterValidator.Validate(new RaftClusterSpec { Tls = new RaftClusterTls { ServerSecretName = "server", ClientCertAuth = false } }));
        Assert.Equal("spec.tls.peerSecretName", Assert.Single(RaftClusterValidator.Validate(new RaftClusterSpec { Tls = new RaftClusterTls { PeerSecretName = "Peer_TLS" } })).Field);

        var plain = new RaftClusterSpec();
        var peerTls = new RaftClusterSpec { Tls = new RaftClusterTls { PeerSecretName = "peer" } };
        var renamed = new RaftClusterSpec { Tls = new RaftClusterTls { PeerSecretName = "peer-2024" } };
        Assert.Equal("spec.tls", Assert.Single(RaftClusterValidator.ValidateUpdate(plain, peerTls)).Field);
        Assert.Equal(RaftClusterTls.ImmutableRuleMessage, Assert.Single(RaftClusterValidator.ValidateUpdate(peerTls, plain)).Message);
        Assert.Empty(RaftClusterValidator.ValidateUpdate(peerTls, renamed));
    }

    [Theory]
    [InlineData("backups/demo.db", null)]
    [InlineData("/etc/passwd", "spec.bootstrap.snapshot.path")]
    [InlineData("../other/demo.db", "spec.bootstrap.snapshot.path")]
    [InlineData("backups/../../demo.db", "spec.bootstrap.snapshot.path")]
    [InlineData("", "spec.bootstrap.snapshot.path")]
    public void A_snapshot_path_is_relative_to_its_claim(string path, string? field)
    {
        var spec = new RaftClusterSpec { Bootstrap = new RaftClusterBootstrap { Snapshot = new RaftClusterSnapshotSource { PersistentVolumeClaimName = "backups", Path = path } } };
        var errors = RaftClusterValidator.Validate(spec);
        Assert.Equal(field, errors.SingleOrDefault()?.Field);
    }
}
