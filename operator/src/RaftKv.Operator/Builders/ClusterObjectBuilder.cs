using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Builders;

/// <summary>
/// Pure functions from a RaftCluster to the objects that run it. Nothing here reads the cluster or the
/// clock: the reconciler decides what to create or patch, these only say what each object looks like.
/// </summary>
internal sealed class ClusterObjectBuilder(OperatorSettings settings)
{
    public const string ContainerName = "raftkv";
    public const string DataVolume = "data";
    public const string DataDir = "/var/lib/raftkv";

    /// <summary>Pod label of members whose client URLs use TLS (absent otherwise, so templates without TLS stay as they were).</summary>
    public const string ClientTlsLabel = "raftkv.io/client-tls";

    /// <summary>The volume and mount of spec.bootstrap.snapshot's claim while the cluster forms.</summary>
    public const string RestoreVolume = "restore";
    public const string RestoreDir = "/var/lib/raftkv-restore";

    /// <summary>Where the TLS Secrets are mounted, one directory per volume.</summary>
    public const string TlsDir = "/etc/raftkv/tls";
    public const string ServerTlsVolume = "server-tls";
    public const string PeerTlsVolume = "peer-tls";

    // The keys of a kubernetes.io/tls Secret (ca.crt as cert-manager adds it).
    public const string TlsCertKey = "tls.crt";
    public const string TlsKeyKey = "tls.key";
    public const string TlsCaKey = "ca.crt";

    // ConfigMap keys, read by the member container through environment variables.
    public const string HeartbeatKey = "heartbeat-interval";
    public const string ElectionKey = "election-timeout";
    public const string InitialClusterKey = "initial-cluster";
    public const string InitialClusterStateKey = "initial-cluster-state";

    /// <summary>
    /// The unprivileged user the member runs as; the image must own nothing it needs to write outside
    /// the data volume and /tmp. 65532 is the conventional "nonroot" user of distroless images.
    /// </summary>
    public const long RunAsUser = 65532;

    private const string ZoneTopologyKey = "topology.kubernetes.io/zone";

    public OperatorSettings Settings { get; } = settings;

    public ClusterNames Names(RaftCluster cluster) => new(cluster, Settings);

    /// <summary>The image the members run: spec.image, else the operator's repository tagged with spec.version or its own version.</summary>
    public string Image(RaftCluster cluster) =>
        string.IsNullOrEmpty(cluster.Spec.Image)
            ? $"{Settings.ImageRepository}:{(string.IsNullOrEmpty(cluster.Spec.Version) ? Settings.DefaultVersion : cluster.Spec.Version)}"
            : cluster.Spec.Image;

    /// <summary>The owner reference every owned object carries: deleting the RaftCluster deletes them.</summary>
    public static V1OwnerReference OwnerReference(RaftCluster cluster) => new()
    {
        ApiVersion = RaftCluster.GroupVersion,
        Kind = RaftCluster.ResourceKind,
        Name = cluster.Metadata.Name,
        Uid = cluster.Metadata.Uid,
        Controller = true,
        BlockOwnerDeletion = true,
    };

    /// <summary>
    /// Headless Service <c>NAME-peers</c>: gives each member its stable DNS name. It publishes not-ready
    /// addresses because members must reach each other before any of them is ready (readiness needs a
    /// leader, and electing one needs the peers).
    /// </summary>
    public V1Service PeerService(RaftCluster cluster)
    {
        var names = Names(cluster);
        return new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Metadata(cluster, names.PeerService),
            Spec = new V1ServiceSpec
            {
                ClusterIP = "None",
                PublishNotReadyAddresses = true,
                Selector = ClusterLabels.Selector(names.Name),
                Ports =
                [
                    new V1ServicePort { Name = "peer", Port = ClusterNames.PeerPort, TargetPort = "peer", Protocol = "TCP" },
                    new V1ServicePort { Name = "client", Port = ClusterNames.ClientPort, TargetPort = "client", Protocol = "TCP" },
                ],
            },
        };
    }

    /// <summary>Service <c>NAME-client</c>: the address clients use; only ready members receive traffic.</summary>
    public V1Service ClientService(RaftCluster cluster)
    {
        var names = Names(cluster);
        return new V1Service
        {
            ApiVersion = "v1",
            Kind = "Service",
            Metadata = Metadata(cluster, names.ClientService),
            Spec = new V1ServiceSpec
            {
                Type = "ClusterIP",
                Selector = ClusterLabels.Selector(names.Name),
                Ports = [new V1ServicePort { Name = "client", Port = ClusterNames.ClientPort, TargetPort = "client", Protocol = "TCP" }],
            },
        };
    }

    /// <summary>
    /// ConfigMap <c>NAME-tuning</c>: the heartbeat interval and election timeout in milliseconds. Members
    /// read it at start (through environment variables), so the values in force survive restarts; a
    /// running member gets new values live through the admin RPC, never by a restart. The pod template
    /// only refers to the ConfigMap, so a change here does not roll the pods.
    /// </summary>
    public V1ConfigMap TuningConfigMap(RaftCluster cluster, RaftTiming timing)
    {
        var names = Names(cluster);
        return new V1ConfigMap
        {
            ApiVersion = "v1",
            Kind = "ConfigMap",
            Metadata = Metadata(cluster, names.TuningConfigMap),
            Data = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [HeartbeatKey] = RaftTiming.FlagMilliseconds(timing.HeartbeatInterval).ToString(System.Globalization.CultureInfo.InvariantCulture),
                [ElectionKey] = RaftTiming.FlagMilliseconds(timing.ElectionTimeout).ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
    }

    /// <summary>
    /// ConfigMap <c>NAME-members</c>: <c>--initial-cluster</c> and <c>--initial-cluster-state</c> for a member
    /// starting with an empty data directory. It lists exactly the Raft members 0..<paramref name="memberCount"/>-1
    /// (a joining member must name the cluster's current membership, itself included) with state
    /// <c>new</c> for the bootstrap and <c>existing</c> afterwards. A member with data ignores both. Keeping
    /// them out of the pod template means scaling does not change the template and so rolls no pod.
    /// </summary>
    public V1ConfigMap MembersConfigMap(RaftCluster cluster, int memberCount, bool bootstrapped)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(memberCount, 1);
        var names = Names(cluster);
        return new V1ConfigMap
        {
            ApiVersion = "v1",
            Kind = "ConfigMap",
            Metadata = Metadata(cluster, names.MembersConfigMap),
            Data = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [InitialClusterKey] = names.InitialCluster(memberCount),
                [InitialClusterStateKey] = bootstrapped ? "existing" : "new",
            },
        };
    }

    /// <summary>
    /// PodDisruptionBudget: at most one member voluntarily down at a time, and never more than the
    /// failure tolerance, so a node drain can never take away quorum. With one replica the tolerance
    /// is 0: the only member cannot be evicted, and a drain waits until someone decides to accept
    /// the outage (scale up first, or delete the pod by hand).
    /// </summary>
    public V1PodDisruptionBudget PodDisruptionBudget(RaftCluster cluster)
    {
        var names = Names(cluster);
        var failureTolerance = (cluster.Spec.Replicas - 1) / 2;
        return new V1PodDisruptionBudget
        {
            ApiVersion = "policy/v1",
            Kind = "PodDisruptionBudget",
            Metadata = Metadata(cluster, names.PodDisruptionBudget),
            Spec = new V1PodDisruptionBudgetSpec
            {
                MaxUnavailable = Math.Min(1, failureTolerance),
                Selector = new V1LabelSelector { MatchLabels = ClusterLabels.Selector(names.Name) },
                // An unready member adds nothing to quorum, so evicting it costs nothing; without this a
                // crash-looping member would block every node drain.
                UnhealthyPodEvictionPolicy = "AlwaysAllow",
            },
        };
    }

    /// <summary>
    /// StatefulSet <c>NAME</c> with <paramref name="replicas"/> pods (the plan's step, not necessarily
    /// spec.replicas: scaling moves one member at a time).
    /// <para>podManagementPolicy Parallel: at bootstrap every initial member must run before any can be
    /// ready (readiness needs an elected leader), which OrderedReady would deadlock; the operator adds
    /// and removes members one at a time itself, through Raft, so ordering by the StatefulSet adds no safety.</para>
    /// <para>updateStrategy OnDelete: the operator rolls pods itself, one at a time, the leader last after a
    /// leadership transfer, and only while the cluster keeps quorum; RollingUpdate would restart by ordinal
    /// regardless of who leads.</para>
    /// </summary>
    /// <param name="cluster">The RaftCluster.</param>
    /// <param name="replicas">The StatefulSet's replica count.</param>
    /// <param name="restoring">The cluster is forming from spec.bootstrap.snapshot: the claim is mounted and the member told to restore the file.</param>
    public V1StatefulSet StatefulSet(RaftCluster cluster, int replicas, bool restoring = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(replicas);
        var names = Names(cluster);
        var spec = cluster.Spec;
        var selector = ClusterLabels.Selector(names.Name);

        var podLabels = new Dictionary<string, string>(spec.PodTemplate?.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        foreach (var (key, value) in ClusterLabels.For(names.Name))
        {
            podLabels[key] = value;
        }

        if (spec.Tls?.ServerSecretName is not null)
        {
            // Tells scrapers (the chart's PodMonitor) to use the plain-HTTP metrics port instead of the client port.
            podLabels[ClientTlsLabel] = "true";
        }

        var storageClass = string.IsNullOrEmpty(spec.Storage.StorageClassName) ? Settings.DefaultStorageClassName : spec.Storage.StorageClassName;

        return new V1StatefulSet
        {
            ApiVersion = "apps/v1",
            Kind = "StatefulSet",
            Metadata = Metadata(cluster, names.StatefulSet),
            Spec = new V1StatefulSetSpec
            {
                Replicas = replicas,
                ServiceName = names.PeerService,
                PodManagementPolicy = "Parallel",
                UpdateStrategy = new V1StatefulSetUpdateStrategy { Type = "OnDelete" },
                Selector = new V1LabelSelector { MatchLabels = selector },
                PersistentVolumeClaimRetentionPolicy = new V1StatefulSetPersistentVolumeClaimRetentionPolicy
                {
                    WhenDeleted = spec.Storage.ReclaimPolicy == ReclaimPolicy.Delete ? "Delete" : "Retain",
                    // A member removed by a scale-down is gone from Raft; its data could never serve again
                    // and would confuse a later member with the same ordinal, so its volume goes with it.
                    WhenScaled = "Delete",
                },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta
                    {
                        Labels = podLabels,
                        Annotations = spec.PodTemplate?.Annotations is { Count: > 0 } annotations
                            ? new Dictionary<string, string>(annotations, StringComparer.Ordinal)
                            : null,
                    },
                    Spec = PodSpec(cluster, names, selector, restoring ? cluster.Spec.Bootstrap?.Snapshot : null),
                },
                VolumeClaimTemplates =
                [
                    new V1PersistentVolumeClaim
                    {
                        ApiVersion = "v1",
                        Kind = "PersistentVolumeClaim",
                        Metadata = new V1ObjectMeta { Name = DataVolume, Labels = selector },
                        Spec = new V1PersistentVolumeClaimSpec
                        {
                            AccessModes = ["ReadWriteOnce"],
                            StorageClassName = storageClass,
                            Resources = new V1VolumeResourceRequirements
                            {
                                Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new(spec.Storage.Size) },
                            },
                        },
                    },
                ],
            },
        };
    }

    private V1PodSpec PodSpec(RaftCluster cluster, ClusterNames names, Dictionary<string, string> selector, RaftClusterSnapshotSource? restore)
    {
        var spec = cluster.Spec;
        var podSelector = new V1LabelSelector { MatchLabels = selector };
        var antiAffinityTerm = new V1PodAffinityTerm { LabelSelector = podSelector, TopologyKey = spec.Affinity.TopologyKey };
        var antiAffinity = spec.Affinity.AntiAffinity == AntiAffinityMode.Required
            ? new V1PodAntiAffinity { RequiredDuringSchedulingIgnoredDuringExecution = [antiAffinityTerm] }
            : new V1PodAntiAffinity
            {
                PreferredDuringSchedulingIgnoredDuringExecution = [new V1WeightedPodAffinityTerm { Weight = 100, PodAffinityTerm = antiAffinityTerm }],
            };

        return new V1PodSpec
        {
            Affinity = new V1Affinity { PodAntiAffinity = antiAffinity },
            // Spread over zones where the nodes have zones; without zone labels this constraint is moot.
            TopologySpreadConstraints =
            [
                new V1TopologySpreadConstraint
                {
                    MaxSkew = 1,
                    TopologyKey = ZoneTopologyKey,
                    WhenUnsatisfiable = "ScheduleAnyway",
                    LabelSelector = podSelector,
                },
            ],
            Tolerations = spec.PodTemplate?.Tolerations is { Count: > 0 } tolerations ? [.. tolerations] : null,
            NodeSelector = spec.PodTemplate?.NodeSelector is { Count: > 0 } nodeSelector
                ? new Dictionary<string, string>(nodeSelector, StringComparer.Ordinal)
                : null,
            PriorityClassName = string.IsNullOrEmpty(spec.PodTemplate?.PriorityClassName) ? null : spec.PodTemplate.PriorityClassName,
            // Service links would inject variables such as <NAME>_CLIENT_PORT; for a cluster named "etcd"
            // they would be ETCD_* variables, which raftkv reads as configuration.
            EnableServiceLinks = false,
            AutomountServiceAccountToken = false,
            // Time to hand leadership over on SIGTERM and to finish the last fsync.
            TerminationGracePeriodSeconds = 60,
            SecurityContext = new V1PodSecurityContext
            {
                RunAsNonRoot = true,
                RunAsUser = RunAsUser,
                RunAsGroup = RunAsUser,
                FsGroup = RunAsUser,
                FsGroupChangePolicy = "OnRootMismatch",
                SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
            },
            Containers = [Container(cluster, names, restore)],
            Volumes =
            [
                new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource() },
                // Read by the member's group only (fsGroup); the kubelet refreshes the files when the Secret changes and
                // the member reloads them on its next handshake, so a rotation needs no restart.
                .. TlsVolumes(cluster).Select(v => new V1Volume { Name = v.Volume, Secret = new V1SecretVolumeSource { SecretName = v.Secret, DefaultMode = 288 /* 0440 */ } }),
                .. restore is null ? Array.Empty<V1Volume>() : [new V1Volume
                {
                    Name = RestoreVolume,
                    PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = restore.PersistentVolumeClaimName, ReadOnlyProperty = true },
                }],
            ],
        };
    }

    private V1Container Container(RaftCluster cluster, ClusterNames names, RaftClusterSnapshotSource? restore)
    {
        var selfHost = names.HostOf("$(POD_NAME)");
        var token = string.IsNullOrEmpty(cluster.Metadata.Uid) ? $"{names.Name}.{names.Namespace}" : $"{names.Name}-{cluster.Metadata.Uid}";
        var clientTls = cluster.Spec.Tls?.ServerSecretName is not null;
        // With TLS on the client port the probes go to the plain-HTTP metrics port: the kubelet has no client certificate.
        var probePort = clientTls ? "metrics" : "client";
        List<V1ContainerPort> ports =
        [
            new V1ContainerPort { Name = "client", ContainerPort = ClusterNames.ClientPort, Protocol = "TCP" },
            new V1ContainerPort { Name = "peer", ContainerPort = ClusterNames.PeerPort, Protocol = "TCP" },
        ];
        List<V1VolumeMount> mounts =
        [
            new V1VolumeMount { Name = DataVolume, MountPath = DataDir },
            new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
        ];
        foreach (var (volume, _) in TlsVolumes(cluster))
        {
            mounts.Add(new V1VolumeMount { Name = volume, MountPath = $"{TlsDir}/{volume}", ReadOnlyProperty = true });
        }

        if (restore is not null)
        {
            mounts.Add(new V1VolumeMount { Name = RestoreVolume, MountPath = RestoreDir, ReadOnlyProperty = true });
        }

        return new V1Container
        {
            Name = ContainerName,
            Image = Image(cluster),
            ImagePullPolicy = "IfNotPresent",
            Args = restore is null ? Args(cluster, names, selfHost, token) : [.. Args(cluster, names, selfHost, token), $"--restore-snapshot={RestoreDir}/{restore.Path}"],
            Env =
            [
                FieldEnv("POD_NAME", "metadata.name"),
                FieldEnv("POD_NAMESPACE", "metadata.namespace"),
                FieldEnv("POD_IP", "status.podIP"),
                ConfigMapEnv("INITIAL_CLUSTER", names.MembersConfigMap, InitialClusterKey),
                ConfigMapEnv("INITIAL_CLUSTER_STATE", names.MembersConfigMap, InitialClusterStateKey),
                ConfigMapEnv("HEARTBEAT_INTERVAL", names.TuningConfigMap, HeartbeatKey),
                ConfigMapEnv("ELECTION_TIMEOUT", names.TuningConfigMap, ElectionKey),
            ],
            Ports = clientTls
                ? [.. ports, new V1ContainerPort { Name = "metrics", ContainerPort = ClusterNames.MetricsPort, Protocol = "TCP" }]
                : ports,
            // Ready = this member is part of a cluster with a leader and can serve linearizable reads.
            ReadinessProbe = HttpProbe("/readyz", probePort, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3),
            // Alive = the process answers at all; a member without a leader is not restarted for it.
            LivenessProbe = HttpProbe("/livez", probePort, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6),
            // Replaying a long WAL or receiving a snapshot may take minutes; liveness waits for this.
            StartupProbe = HttpProbe("/livez", probePort, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 120),
            Resources = cluster.Spec.Resources,
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsNonRoot = true,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
                SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
            },
            VolumeMounts = mounts,
        };
    }

    /// <summary>
    /// The member's etcd flags. With TLS the URLs are https:// and the Secrets' files (mounted under <see cref="TlsDir"/>) are
    /// etcd's certificate flags; health and metrics then also listen in plain HTTP on <see cref="ClusterNames.MetricsPort"/>
    /// for the kubelet's probes and for Prometheus, which have no client certificate.
    /// </summary>
    private static List<string> Args(RaftCluster cluster, ClusterNames names, string selfHost, string token)
    {
        var tls = cluster.Spec.Tls;
        var args = new List<string>
        {
            "--name=$(POD_NAME)",
            $"--data-dir={DataDir}",
            // Listen on the pod's own address (not 0.0.0.0): correct on Kubernetes, and on a local
            // control plane where all pods share one host with different loopback addresses.
            $"--listen-peer-urls={names.PeerScheme}://$(POD_IP):{ClusterNames.PeerPort}",
            $"--listen-client-urls={names.ClientScheme}://$(POD_IP):{ClusterNames.ClientPort}",
            $"--advertise-client-urls={names.ClientScheme}://{selfHost}:{ClusterNames.ClientPort}",
            $"--initial-advertise-peer-urls={names.PeerScheme}://{selfHost}:{ClusterNames.PeerPort}",
            "--initial-cluster=$(INITIAL_CLUSTER)",
            "--initial-cluster-state=$(INITIAL_CLUSTER_STATE)",
            $"--initial-cluster-token={token}",
            "--heartbeat-interval=$(HEARTBEAT_INTERVAL)",
            "--election-timeout=$(ELECTION_TIMEOUT)",
        };
        if (tls?.ServerSecretName is not null)
        {
            var dir = $"{TlsDir}/{ServerTlsVolume}";
            args.Add($"--cert-file={dir}/{TlsCertKey}");
            args.Add($"--key-file={dir}/{TlsKeyKey}");
            args.Add($"--trusted-ca-file={dir}/{TlsCaKey}");
            if (tls.ClientCertAuth)
            {
                args.Add("--client-cert-auth");
            }

            args.Add($"--listen-metrics-urls=http://$(POD_IP):{ClusterNames.MetricsPort}");
        }

        if (tls?.PeerSecretName is not null)
        {
            var dir = $"{TlsDir}/{PeerTlsVolume}";
            args.Add($"--peer-cert-file={dir}/{TlsCertKey}");
            args.Add($"--peer-key-file={dir}/{TlsKeyKey}");
            args.Add($"--peer-trusted-ca-file={dir}/{TlsCaKey}");
            args.Add("--peer-client-cert-auth");
        }

        return args;
    }

    private static V1EnvVar FieldEnv(string name, string fieldPath) =>
        new() { Name = name, ValueFrom = new V1EnvVarSource { FieldRef = new V1ObjectFieldSelector { FieldPath = fieldPath } } };

    private static V1EnvVar ConfigMapEnv(string name, string configMap, string key) =>
        new() { Name = name, ValueFrom = new V1EnvVarSource { ConfigMapKeyRef = new V1ConfigMapKeySelector { Name = configMap, Key = key } } };

    /// <summary>The Secret volumes of the TLS sides in use: (volume name, Secret name).</summary>
    private static IEnumerable<(string Volume, string Secret)> TlsVolumes(RaftCluster cluster)
    {
        if (cluster.Spec.Tls?.ServerSecretName is { } server)
        {
            yield return (ServerTlsVolume, server);
        }

        if (cluster.Spec.Tls?.PeerSecretName is { } peer)
        {
            yield return (PeerTlsVolume, peer);
        }
    }

    private static V1Probe HttpProbe(string path, string port, int periodSeconds, int timeoutSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = port, Scheme = "HTTP" },
        PeriodSeconds = periodSeconds,
        TimeoutSeconds = timeoutSeconds,
        FailureThreshold = failureThreshold,
    };

    private static V1ObjectMeta Metadata(RaftCluster cluster, string name) => new()
    {
        Name = name,
        NamespaceProperty = cluster.Metadata.NamespaceProperty,
        Labels = ClusterLabels.For(cluster),
        OwnerReferences = [OwnerReference(cluster)],
    };
}
