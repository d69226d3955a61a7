using System.Globalization;
using k8s.Models;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.Operator.Builders;
using RaftKv.Operator.Tuning;
using RaftKv.SpecFuzz;

namespace RaftKv.Operator.Tests.Api;

/// <summary>
/// Seeded random RaftCluster specs (tests/RaftKv.SpecFuzz, shared with the fault suite's random-specs scenarios, which
/// apply them to the local control plane): a random valid spec (any odd
/// replica count 1–9, any storage class name, huge or absent resources, Auto or Manual timing within the rules, any
/// pod template) with zero to two known breakages applied (even or out-of-range replicas, blank image, bad size, bad
/// duration text, Manual timing with election &lt; 5×heartbeat or &gt; 50 s or a value missing, blank topology key).
/// The validator must report exactly the broken fields, each with a message, and never throw; a spec it accepts must
/// go through tuning and the builders without throwing and give a StatefulSet of the asked size.
/// </summary>
public sealed class RandomSpecPropertyTests
{
    private static readonly ClusterObjectBuilder Builder = new(new OperatorSettings { DefaultVersion = "0.1.0" });

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
            var node = RandomSpecs.Valid(random, SpecRanges.Any);
            var breakages = new List<Breakage>();
            for (var m = random.Next(3); m > 0; m--)
            {
                breakages.Add(RandomSpecs.Break(node, random, breakages, schemaBreakages: false));
            }

            var broken = breakages.Select(b => b.Field).ToHashSet(StringComparer.Ordinal);
            var json = node.ToJsonString();
            var spec = k8s.KubernetesJson.Deserialize<RaftClusterSpec>(json);
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
}
