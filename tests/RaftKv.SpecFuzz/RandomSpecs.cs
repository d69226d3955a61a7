using System.Globalization;
using System.Text.Json.Nodes;

namespace RaftKv.SpecFuzz;

/// <summary>What generated specs may contain.</summary>
public sealed record SpecRanges
{
    /// <summary>Any spec the rules allow: odd replicas 1–9, any storage class, huge requests, timing up to 50 s.</summary>
    public static SpecRanges Any { get; } = new();

    /// <summary>
    /// Specs a local control plane with <paramref name="maxReplicas"/> nodes can run quickly: odd replicas up to it,
    /// the hostname as topology key, no storage class or node selector, small requests, Manual timing of 50–250 ms
    /// heartbeats and 1–6 s elections (or Auto).
    /// </summary>
    public static SpecRanges Runnable(int maxReplicas) => new() { MaxReplicas = maxReplicas, OnlyRunnable = true };

    /// <summary>The largest replica count of a valid spec (odd).</summary>
    public int MaxReplicas { get; init; } = 9;

    /// <summary>Only what can start on the local control plane (see <see cref="Runnable(int)"/>).</summary>
    public bool OnlyRunnable { get; init; }
}

/// <summary>
/// One breakage applied to a spec: the field the rules must name, what was done, and whether the CRD's schema (OpenAPI
/// types, enums, patterns, bounds and CEL rules) refuses it at admission; when not, only the operator's validator does.
/// </summary>
public sealed record Breakage(string Field, string What, bool RefusedAtAdmission)
{
    /// <summary>The breakage needs the JSON form (a wrong type, an unknown enum string): a typed spec cannot hold it.</summary>
    public bool SchemaOnly { get; init; }

    public override string ToString() => $"{Field}: {What}";
}

/// <summary>
/// Seeded random RaftCluster specs as the JSON a user applies (camelCase, as in the CRD): a random valid spec, and
/// breakages of the kinds users make (even, zero, negative or huge replicas, blank image, bad size, unparsable
/// duration, Manual election &lt; 5 × heartbeat or &gt; 50 s or one value missing, blank topology key), plus, for the
/// API server only, wrong JSON types, unknown enum strings, bad patterns and bad resource quantities.
/// </summary>
public static class RandomSpecs
{
    private static readonly string[] StorageClasses = ["", "local-ssd", "no-such-class", "standard", new string('c', 253)];
    private static readonly string[] Sizes = ["1Gi", "10Gi", "500Mi", "1Ti", "100G", "1.5Gi", "1", "8Ei"];

    /// <summary>Sizes the CRD's pattern refuses, and one it lets through that the operator refuses ("0").</summary>
    private static readonly string[] BadSizes = ["", "ten gigs", "-1Gi", "0", "1.5.5Gi", "Gi", "1e3", "10gb"];
    private static readonly string[] BadDurations = ["fast", "100", "5 ms", "1.2.3s", "ms", "1x", "one second", "--1s"];
    private static readonly long[] BadReplicas = [0, 2, 4, 6, 8, 10, 11, -1, -3, 100, int.MaxValue, int.MinValue];
    private static readonly string[] BadQuantities = ["banana", "1.5.5", "ten", "Mi", "2 cores", "--1"];

    /// <summary>A random valid spec.</summary>
    public static JsonObject Valid(Random random, SpecRanges ranges)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(ranges);
        var odd = (ranges.MaxReplicas + 1) / 2;
        var spec = new JsonObject { ["replicas"] = (random.Next(odd) * 2) + 1 };
        if (random.Next(3) != 0)
        {
            spec["version"] = $"0.{random.Next(5)}.{random.Next(20)}";
        }

        if (random.Next(4) == 0)
        {
            spec["image"] = "registry.example/raftkv:custom";
        }

        var storage = new JsonObject { ["size"] = Sizes[random.Next(Sizes.Length)], ["reclaimPolicy"] = random.Next(2) == 0 ? "Retain" : "Delete" };
        if (!ranges.OnlyRunnable && StorageClasses[random.Next(StorageClasses.Length)] is { Length: > 0 } storageClass)
        {
            storage["storageClassName"] = storageClass;
        }

        spec["storage"] = storage;
        spec["affinity"] = new JsonObject
        {
            ["antiAffinity"] = random.Next(2) == 0 ? "Required" : "Preferred",
            ["topologyKey"] = ranges.OnlyRunnable || random.Next(2) == 0 ? "kubernetes.io/hostname" : "topology.kubernetes.io/zone",
        };
        spec["tuning"] = Timing(random, ranges);
        if (random.Next(3) == 0)
        {
            // Huge requests are valid: a pod that fits no node stays Pending and the cluster reports it.
            var huge = !ranges.OnlyRunnable && random.Next(2) == 0;
            spec["resources"] = new JsonObject
            {
                ["requests"] = new JsonObject { ["cpu"] = huge ? "1000000" : "250m", ["memory"] = huge ? "1Pi" : "256Mi" },
            };
        }

        if (random.Next(3) == 0)
        {
            var template = new JsonObject
            {
                ["labels"] = new JsonObject { ["team"] = "storage" },
                ["annotations"] = new JsonObject { ["fuzz/n"] = random.Next().ToString(CultureInfo.InvariantCulture) },
            };
            if (!ranges.OnlyRunnable && random.Next(2) == 0)
            {
                template["nodeSelector"] = new JsonObject { ["disk"] = "ssd" };
            }

            if (!ranges.OnlyRunnable && random.Next(2) == 0)
            {
                template["priorityClassName"] = "high";
            }

            spec["podTemplate"] = template;
        }

        return spec;
    }

    /// <summary>Valid timing: Manual within the rules (runnable: heartbeat 50–250 ms, election 1–6 s) or Auto with a profile or none.</summary>
    public static JsonObject Timing(Random random, SpecRanges ranges)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(ranges);
        if (random.Next(ranges.OnlyRunnable ? 4 : 2) != 0)
        {
            var heartbeat = ranges.OnlyRunnable ? random.Next(50, 251) : random.Next(1, 2000);
            var election = ranges.OnlyRunnable ? random.Next(Math.Max(1000, heartbeat * 5), 6001) : random.Next(heartbeat * 5, 50_001);
            return new JsonObject
            {
                ["mode"] = "Manual",
                ["heartbeatInterval"] = $"{heartbeat}ms",
                ["electionTimeout"] = election % 1000 == 0 ? $"{election / 1000}s" : $"{election}ms",
            };
        }

        var auto = new JsonObject { ["mode"] = "Auto" };
        switch (random.Next(3))
        {
            case 1:
                auto["profile"] = "Default";
                break;
            case 2:
                auto["profile"] = "Aggressive";
                break;
        }

        return auto;
    }

    /// <summary>
    /// Applies one breakage to <paramref name="spec"/> on a field not broken yet (at most one in <c>tuning</c>) and returns
    /// it. With <paramref name="schemaBreakages"/>, also breakages only the JSON form can carry.
    /// </summary>
    public static Breakage Break(JsonObject spec, Random random, IReadOnlyCollection<Breakage> already, bool schemaBreakages)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(already);
        while (true)
        {
            var kinds = schemaBreakages ? 17 : 9;
            var breakage = TryBreak(spec, random, random.Next(kinds), already);
            if (breakage is not null)
            {
                return breakage;
            }
        }
    }

    private static Breakage? TryBreak(JsonObject spec, Random random, int kind, IReadOnlyCollection<Breakage> already)
    {
        var tuningBroken = already.Any(b => b.Field.StartsWith("spec.tuning", StringComparison.Ordinal));
        bool Taken(string field) => already.Any(b => b.Field == field);
        var tuning = spec["tuning"] as JsonObject; // a string once broken by kind 16 (then no tuning case runs)
        var storage = (JsonObject)spec["storage"]!;
        var affinity = (JsonObject)spec["affinity"]!;
        switch (kind)
        {
            case 0 when !Taken("spec.replicas"):
                {
                    var replicas = BadReplicas[random.Next(BadReplicas.Length)];
                    spec["replicas"] = replicas;
                    return new("spec.replicas", $"replicas {replicas}", true);
                }

            case 1 when !Taken("spec.image"):
                spec["image"] = random.Next(2) == 0 ? "" : "   ";
                return new("spec.image", "blank image", false);
            case 2 when !Taken("spec.storage.size"):
                {
                    var size = BadSizes[random.Next(BadSizes.Length)];
                    storage["size"] = size;
                    return new("spec.storage.size", $"size \"{size}\"", size != "0");
                }

            case 3 when !Taken("spec.affinity.topologyKey"):
                affinity["topologyKey"] = random.Next(2) == 0 ? "" : " ";
                return new("spec.affinity.topologyKey", "blank topology key", false);
            case 4 when !tuningBroken:
                {
                    var bad = BadDurations[random.Next(BadDurations.Length)];
                    tuning!["heartbeatInterval"] = bad;
                    if (Mode(tuning) == "Manual" && tuning["electionTimeout"] is null)
                    {
                        tuning["electionTimeout"] = "1s";
                    }

                    return new("spec.tuning.heartbeatInterval", $"heartbeatInterval \"{bad}\"", true);
                }

            case 5 when !tuningBroken:
                {
                    var bad = BadDurations[random.Next(BadDurations.Length)];
                    tuning!["electionTimeout"] = bad;
                    if (Mode(tuning) == "Manual" && tuning["heartbeatInterval"] is null)
                    {
                        tuning["heartbeatInterval"] = "100ms";
                    }

                    return new("spec.tuning.electionTimeout", $"electionTimeout \"{bad}\"", true);
                }

            case 6 when !tuningBroken:
                {
                    var heartbeat = random.Next(2, 5000);
                    var election = random.Next(1, heartbeat * 5);
                    spec["tuning"] = new JsonObject { ["mode"] = "Manual", ["heartbeatInterval"] = $"{heartbeat}ms", ["electionTimeout"] = $"{election}ms" };
                    return new("spec.tuning.electionTimeout", $"Manual election {election}ms < 5 × heartbeat {heartbeat}ms", true);
                }

            case 7 when !tuningBroken:
                {
                    var election = random.Next(50_001, 10_000_000);
                    spec["tuning"] = new JsonObject { ["mode"] = "Manual", ["heartbeatInterval"] = "100ms", ["electionTimeout"] = $"{election}ms" };
                    return new("spec.tuning.electionTimeout", $"Manual election {election}ms > 50s", true);
                }

            case 8 when !tuningBroken:
                spec["tuning"] = random.Next(2) == 0
                    ? new JsonObject { ["mode"] = "Manual", ["heartbeatInterval"] = "100ms" }
                    : new JsonObject { ["mode"] = "Manual", ["electionTimeout"] = "1s" };
                return new("spec.tuning", "Manual with one value missing", true);

            // Only the API server's schema can refuse these: the typed spec cannot even hold them.
            case 9 when !Taken("spec.replicas"):
                {
                    JsonNode value = random.Next(3) switch { 0 => "3", 1 => 3.5, _ => true };
                    spec["replicas"] = value;
                    return new("spec.replicas", $"replicas {value.ToJsonString()} (wrong JSON type)", true) { SchemaOnly = true };
                }

            case 10 when !tuningBroken:
                tuning!["mode"] = random.Next(2) == 0 ? "Fast" : "manual";
                return new("spec.tuning.mode", $"unknown mode \"{tuning["mode"]}\"", true) { SchemaOnly = true };
            case 11 when !Taken("spec.affinity.antiAffinity"):
                affinity["antiAffinity"] = "Always";
                return new("spec.affinity.antiAffinity", "unknown antiAffinity \"Always\"", true) { SchemaOnly = true };
            case 12 when !Taken("spec.storage.reclaimPolicy"):
                storage["reclaimPolicy"] = "Keep";
                return new("spec.storage.reclaimPolicy", "unknown reclaimPolicy \"Keep\"", true) { SchemaOnly = true };
            case 13 when !Taken("spec.storage.size"):
                storage["size"] = 10;
                return new("spec.storage.size", "size 10 (a number, not a quantity string)", true) { SchemaOnly = true };
            case 14 when !Taken("spec.version"):
                spec["version"] = "1.0 beta!";
                return new("spec.version", "version \"1.0 beta!\"", true) { SchemaOnly = true };
            case 15 when !Taken("spec.resources.requests.cpu"):
                {
                    var quantity = BadQuantities[random.Next(BadQuantities.Length)];
                    spec["resources"] = new JsonObject { ["requests"] = new JsonObject { ["cpu"] = quantity, ["memory"] = "256Mi" } };
                    return new("spec.resources.requests.cpu", $"cpu request \"{quantity}\"", true) { SchemaOnly = true };
                }

            case 16 when !tuningBroken:
                spec["tuning"] = "fast";
                return new("spec.tuning", "tuning \"fast\" (a string, not an object)", true) { SchemaOnly = true };
            default:
                return null;
        }
    }

    private static string? Mode(JsonObject tuning) => tuning["mode"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
