using System.Globalization;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tuning;

namespace RaftKv.Operator.Tests.Api;

/// <summary>
/// Seeded random RaftCluster specs (the fault suite's spec fuzzing, at unit level): a random valid spec (any odd
/// replica count 1–9, any storage class name, huge or absent resources, Auto or Manual timing within the rules, any
/// pod template) with zero to two known breakages applied (even or out-of-range replicas, blank image, bad size, bad
/// duration text, Manual timing with election &lt; 5×heartbeat or &gt; 50 s or a value missing, blank topology key).
/// The validator must report exactly the broken fields, each with a message, and never throw; a spec it accepts must
/// go through tuning and the builders without throwing and give a StatefulSet of the asked size.
/// </summary>
public sealed class RandomSpecPropertyTests
{
    private static readonly ClusterObjectBuilder Builder = new(new OperatorSettings { DefaultVersion = "0.1.0" });
    private static readonly string[] StorageClasses = ["", "local-ssd", "no-such-class", "standard", new string('c', 253)];
    private static readonly string[] Sizes = ["1Gi", "10Gi", "500Mi", "1Ti", "100G", "1.5Gi", "1", "8Ei"];
    private static readonly string[] BadSizes = ["", "ten gigs", "-1Gi", "0", "1.5.5Gi", "Gi", "1e3", "10gb"];
    private static readonly string[] BadDurations = ["fast", "100", "5 ms", "1.2.3s", "ms", "1x", "one second", "--1s"];
    private static readonly int[] BadReplicas = [0, 2, 4, 6, 8, 10, 11, -1, -3, 100, int.MaxValue, int.MinValue];

    [Fact]
    public void Random_specs_are_refused_on_exactly_their_broken_fields_or_built_into_objects()
    {
        var seed = Environment.GetEnvironmentVariable("SPEC_FUZZ_SEED") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : (int)(DateTime.UtcNow.Date - DateTime.UnixEpoch).TotalDays;
        var random = new Random(seed);
        var accepted = 0;
        for (var i = 0; i < 3000; i++)
        {
            var spec = RandomValidSpec(random);
            var broken = new HashSet<string>(StringComparer.Ordinal);
            for (var m = random.Next(3); m > 0; m--)
            {
                Break(spec, random, broken);
            }

            var json = k8s.KubernetesJson.Serialize(spec);
            IReadOnlyList<ValidationError> errors;
            try
            {
                errors = RaftClusterValidator.Validate(spec);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Assert.Fail($"seed {seed}, spec {i}: the validator threw {e.GetType().Name}: {e.Message}\nspec: {json}");
                return;
            }

            var fields = errors.Select(e => e.Field).ToHashSet(StringComparer.Ordinal);
            Assert.True(fields.SetEquals(broken),
                $"seed {seed}, spec {i}: broke [{string.Join(", ", broken)}], the validator reported [{string.Join("; ", errors)}]\nspec: {json}");
            Assert.All(errors, e => Assert.True(e.Message.Length >= 20, $"seed {seed}, spec {i}: a terse message '{e}'"));
            if (errors.Count > 0)
            {
                continue;
            }

            accepted++;
            var cluster = new RaftCluster
            {
                Metadata = new V1ObjectMeta { Name = "fuzz", NamespaceProperty = "default", Uid = "0b5d7c3e-1a2b-4c5d-8e9f-001122334455", Generation = 1 },
                Spec = spec,
            };
            try
            {
                var decision = TuningPolicy.Decide(new TuningInputs(spec.Tuning, null, null, DateTimeOffset.UnixEpoch, null, null), new TuningPolicyOptions());
                Assert.True(decision.Timing.ElectionTimeout >= decision.Timing.HeartbeatInterval * 5, $"seed {seed}, spec {i}: timing {decision.Timing}\nspec: {json}");
                var objects = DesiredObjects.For(cluster, Builder, decision.Timing, (spec.Replicas, false), spec.Replicas);
                var set = objects.Select(o => o.Object).OfType<V1StatefulSet>().Single();
                Assert.Equal(spec.Replicas, set.Spec.Replicas);
                Assert.False(string.IsNullOrWhiteSpace(set.Spec.Template.Spec.Containers[0].Image), $"seed {seed}, spec {i}: no image\nspec: {json}");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException and not OutOfMemoryException)
            {
                Assert.Fail($"seed {seed}, spec {i}: an accepted spec made tuning or the builders throw {e.GetType().Name}: {e.Message}\nspec: {json}");
            }
        }

        Assert.InRange(accepted, 300, 2700); // both kinds were exercised
    }

    private static RaftClusterSpec RandomValidSpec(Random random)
    {
        var spec = new RaftClusterSpec
        {
            Replicas = (random.Next(5) * 2) + 1,
            Version = random.Next(3) == 0 ? null : $"0.{random.Next(5)}.{random.Next(20)}",
            Image = random.Next(4) == 0 ? "registry.example/raftkv:custom" : null,
            Storage = new RaftClusterStorage
            {
                StorageClassName = StorageClasses[random.Next(StorageClasses.Length)] is { Length: > 0 } c ? c : null,
                Size = Sizes[random.Next(Sizes.Length)],
                ReclaimPolicy = random.Next(2) == 0 ? ReclaimPolicy.Retain : ReclaimPolicy.Delete,
            },
            Affinity = new RaftClusterAffinity
            {
                AntiAffinity = random.Next(2) == 0 ? AntiAffinityMode.Required : AntiAffinityMode.Preferred,
                TopologyKey = random.Next(2) == 0 ? "kubernetes.io/hostname" : "topology.kubernetes.io/zone",
            },
        };
        if (random.Next(2) == 0)
        {
            var heartbeat = random.Next(1, 2000);
            var election = random.Next(heartbeat * 5, 50_001);
            spec.Tuning = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = $"{heartbeat}ms", ElectionTimeout = election % 1000 == 0 ? $"{election / 1000}s" : $"{election}ms" };
        }
        else
        {
            spec.Tuning = new RaftClusterTuning { Mode = TuningMode.Auto, Profile = random.Next(3) switch { 0 => null, 1 => TuningProfile.Default, _ => TuningProfile.Aggressive } };
        }

        if (random.Next(3) == 0)
        {
            // Huge requests are valid here: a pod that fits no node stays Pending and the cluster reports it.
            spec.Resources = new V1ResourceRequirements
            {
                Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new(random.Next(2) == 0 ? "1000000" : "250m"), ["memory"] = new(random.Next(2) == 0 ? "1Pi" : "256Mi") },
            };
        }

        if (random.Next(3) == 0)
        {
            spec.PodTemplate = new RaftClusterPodTemplate
            {
                Labels = new Dictionary<string, string> { ["team"] = "storage" },
                Annotations = new Dictionary<string, string> { ["fuzz/n"] = random.Next().ToString(CultureInfo.InvariantCulture) },
                NodeSelector = random.Next(2) == 0 ? new Dictionary<string, string> { ["disk"] = "ssd" } : null,
                PriorityClassName = random.Next(2) == 0 ? "high" : null,
            };
        }

        return spec;
    }

    /// <summary>Applies one breakage and records the field the validator must name (one tuning breakage at most).</summary>
    private static void Break(RaftClusterSpec spec, Random random, HashSet<string> broken)
    {
        var tuningBroken = broken.Any(f => f.StartsWith("spec.tuning", StringComparison.Ordinal));
        switch (random.Next(tuningBroken ? 4 : 9))
        {
            case 0:
                spec.Replicas = BadReplicas[random.Next(BadReplicas.Length)];
                broken.Add("spec.replicas");
                break;
            case 1:
                spec.Image = random.Next(2) == 0 ? "" : "   ";
                broken.Add("spec.image");
                break;
            case 2:
                spec.Storage.Size = BadSizes[random.Next(BadSizes.Length)];
                broken.Add("spec.storage.size");
                break;
            case 3:
                spec.Affinity.TopologyKey = random.Next(2) == 0 ? "" : " ";
                broken.Add("spec.affinity.topologyKey");
                break;
            case 4:
                spec.Tuning.HeartbeatInterval = BadDurations[random.Next(BadDurations.Length)];
                spec.Tuning.ElectionTimeout ??= spec.Tuning.Mode == TuningMode.Manual ? "1s" : null;
                broken.Add("spec.tuning.heartbeatInterval");
                break;
            case 5:
                spec.Tuning.ElectionTimeout = BadDurations[random.Next(BadDurations.Length)];
                spec.Tuning.HeartbeatInterval ??= spec.Tuning.Mode == TuningMode.Manual ? "100ms" : null;
                broken.Add("spec.tuning.electionTimeout");
                break;
            case 6:
                {
                    // Manual with election < 5 x heartbeat.
                    var heartbeat = random.Next(2, 5000);
                    spec.Tuning = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = $"{heartbeat}ms", ElectionTimeout = $"{random.Next(1, heartbeat * 5)}ms" };
                    broken.Add("spec.tuning.electionTimeout");
                    break;
                }

            case 7:
                // Manual with election > 50 s.
                spec.Tuning = new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "100ms", ElectionTimeout = $"{random.Next(50_001, 10_000_000)}ms" };
                broken.Add("spec.tuning.electionTimeout");
                break;
            default:
                // Manual with one of the two values missing.
                spec.Tuning = random.Next(2) == 0
                    ? new RaftClusterTuning { Mode = TuningMode.Manual, HeartbeatInterval = "100ms" }
                    : new RaftClusterTuning { Mode = TuningMode.Manual, ElectionTimeout = "1s" };
                broken.Add("spec.tuning");
                break;
        }
    }
}
