using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using RaftKv.Operator.Api.V1Alpha1;
using RaftKv.SpecFuzz;

namespace RaftKv.Operator.Tests.Integration;

/// <summary>
/// The CRD at admission (the local control plane's schema validation and CEL rules, dry-run creates): seeded random
/// specs from tests/RaftKv.SpecFuzz with 0–2 breakages, wrong JSON types and unknown enum strings included. A
/// breakage the generator marks as refused at admission must be refused with a reason naming its field; a spec with
/// none of those must be accepted, and the operator's validator must then name exactly the remaining broken fields.
/// The fault suite's random-specs scenarios apply the same specs with the operator and real pods running.
/// </summary>
public sealed class RandomSpecAdmissionTests(LocalKubeCluster kube) : IClassFixture<LocalKubeCluster>
{
    [Fact]
    public async Task Broken_specs_are_refused_at_admission_naming_the_field_or_left_to_the_validator()
    {
        var seed = Environment.GetEnvironmentVariable("SPEC_FUZZ_SEED") is { Length: > 0 } s
            ? int.Parse(s, CultureInfo.InvariantCulture)
            : (int)(DateTime.UtcNow.Date - DateTime.UnixEpoch).TotalDays;
        var random = new Random(seed);
        var ns = await kube.NewNamespaceAsync("admission");
        using var http = new HttpClient { BaseAddress = kube.Client.BaseUri };
        var refused = 0;
        var accepted = 0;
        for (var i = 0; i < 300; i++)
        {
            var spec = RandomSpecs.Valid(random, random.Next(2) == 0 ? SpecRanges.Any : SpecRanges.Runnable(5));
            var breakages = new List<Breakage>();
            for (var m = random.Next(3); m > 0; m--)
            {
                breakages.Add(RandomSpecs.Break(spec, random, breakages, schemaBreakages: true));
            }

            var body = new JsonObject
            {
                ["apiVersion"] = RaftCluster.GroupVersion,
                ["kind"] = RaftCluster.ResourceKind,
                ["metadata"] = new JsonObject { ["name"] = $"fuzz-{i}" },
                ["spec"] = spec,
            };
            var what = $"seed {seed}, spec {i}: breakages [{string.Join("; ", breakages)}]\nspec: {spec.ToJsonString()}";
            using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(new Uri($"/apis/{RaftCluster.GroupVersion}/namespaces/{ns}/{RaftCluster.Plural}?dryRun=All", UriKind.Relative), content);
            var text = await response.Content.ReadAsStringAsync();
            var atAdmission = breakages.Where(b => b.RefusedAtAdmission).ToList();
            if (atAdmission.Count > 0)
            {
                Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{what}\nexpected 422, got {(int)response.StatusCode}: {text}");
                var message = JsonNode.Parse(text)?["message"]?.GetValue<string>() ?? "";
                Assert.All(atAdmission, b => Assert.True(message.Contains(b.Field, StringComparison.Ordinal), $"{what}\nthe reason does not name {b.Field}: {message}"));
                refused++;
                continue;
            }

            Assert.True(response.StatusCode == HttpStatusCode.Created, $"{what}\nexpected 201, got {(int)response.StatusCode}: {text}");
            var stored = k8s.KubernetesJson.Deserialize<RaftCluster>(text);
            var fields = RaftClusterValidator.Validate(stored.Spec).Select(e => e.Field).ToHashSet(StringComparer.Ordinal);
            Assert.True(fields.SetEquals(breakages.Select(b => b.Field)), $"{what}\nthe validator named [{string.Join(", ", fields)}]");
            accepted++;
        }

        Assert.InRange(refused, 50, 290);
        Assert.InRange(accepted, 10, 250);
    }
}
