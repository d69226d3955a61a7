using System.Globalization;
using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>Records core/v1 Events about objects (what <c>kubectl describe</c> and <c>kubectl get events</c> show).
/// A repeat of the same reason and message for the same object bumps the existing event's count.</summary>
internal static class Events
{
    private static long _sequence;

    public static void Record(ResourceService service, JsonObject about, string type, string reason, string message, string component)
    {
        var eventType = service.Registry.Find("", "v1", "events")!;
        var ns = Meta.Namespace(about) ?? "default";
        var uid = Meta.Uid(about);
        var now = Meta.Timestamp(service.Time.GetUtcNow());
        try
        {
            var existing = service.Store.List(eventType.StorageKey, ns).Select(s => s.Object).FirstOrDefault(e =>
                Meta.Str(e["involvedObject"]?["uid"]) == uid && Meta.Str(e["reason"]) == reason && Meta.Str(e["message"]) == message);
            if (existing is not null)
            {
                existing["count"] = (Meta.Long(existing["count"]) ?? 1) + 1;
                existing["lastTimestamp"] = now;
                service.Update(eventType, ns, Meta.Name(existing)!, existing, new WriteOptions());
                return;
            }

            var sequence = Interlocked.Increment(ref _sequence);
            service.Create(eventType, ns, new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = $"{Meta.Name(about)}.{service.Time.GetUtcNow().ToUnixTimeMilliseconds():x}{sequence.ToString("x", CultureInfo.InvariantCulture)}" },
                ["involvedObject"] = new JsonObject
                {
                    ["apiVersion"] = about["apiVersion"]?.DeepClone(),
                    ["kind"] = about["kind"]?.DeepClone(),
                    ["name"] = Meta.Name(about),
                    ["namespace"] = ns,
                    ["uid"] = uid,
                    ["resourceVersion"] = about["metadata"]?["resourceVersion"]?.DeepClone(),
                },
                ["type"] = type,
                ["reason"] = reason,
                ["message"] = message,
                ["count"] = 1,
                ["firstTimestamp"] = now,
                ["lastTimestamp"] = now,
                ["source"] = new JsonObject { ["component"] = component },
                ["reportingComponent"] = component,
                ["reportingInstance"] = "localkube",
            }, new WriteOptions());
        }
        catch (ApiException)
        {
            // Events are best effort (the namespace may be going away).
        }
    }
}
