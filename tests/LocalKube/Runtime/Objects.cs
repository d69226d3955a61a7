using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Runtime;

/// <summary>Helpers shared by the runtime's controllers.</summary>
internal static class Objects
{
    public static JsonObject OwnerReference(JsonObject owner, bool controller = true) => new()
    {
        ["apiVersion"] = owner["apiVersion"]?.DeepClone(),
        ["kind"] = owner["kind"]?.DeepClone(),
        ["name"] = Meta.Name(owner),
        ["uid"] = Meta.Uid(owner),
        ["controller"] = controller,
        ["blockOwnerDeletion"] = true,
    };

    public static bool IsControlledBy(JsonObject obj, JsonObject owner) =>
        Meta.OwnerReferences(obj).Any(r => Meta.Str(r["uid"]) == Meta.Uid(owner) && Meta.Bool(r["controller"]) == true);

    /// <summary>A short stable hash of a pod template (the pod-template-hash / controller-revision-hash label).</summary>
    public static string TemplateHash(JsonNode? template)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes(template?.ToJsonString() ?? ""));
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        var sb = new StringBuilder();
        for (var i = 0; i < 10; i++)
        {
            sb.Append(alphabet[bytes[i] % alphabet.Length]);
        }

        return sb.ToString();
    }

    public static bool IsPodReady(JsonObject pod) =>
        !Meta.IsDeleting(pod) && ResourceRegistry.ConditionStatus(pod, "Ready") == "True";

    public static bool IsPodActive(JsonObject pod) => !IsPodFinished(pod) && !Meta.IsDeleting(pod);

    /// <summary>The pod's containers ran to completion (phase Succeeded or Failed).</summary>
    public static bool IsPodFinished(JsonObject pod) => Meta.Str(pod["status"]?["phase"]) is "Succeeded" or "Failed";

    /// <summary>A pod that is placed and not finished, terminating ones included: its processes may still run, so its
    /// network must work until they exit (a terminating leader hands over to its peers in that time).</summary>
    public static bool HasPodNetwork(JsonObject pod) => Meta.Str(pod["spec"]?["nodeName"]) is { Length: > 0 } && !IsPodFinished(pod);

    public static JsonObject Condition(string type, string status, string? reason, string? message, string now) => new()
    {
        ["type"] = type,
        ["status"] = status,
        ["reason"] = reason,
        ["message"] = message,
        ["lastTransitionTime"] = now,
    };

    /// <summary>Sets a condition, keeping its lastTransitionTime when the status did not change.</summary>
    public static void SetCondition(JsonObject status, JsonObject condition)
    {
        var list = status["conditions"] as JsonArray ?? [];
        var existing = list.OfType<JsonObject>().FirstOrDefault(c => Meta.Str(c["type"]) == Meta.Str(condition["type"]));
        if (existing is not null)
        {
            if (Meta.Str(existing["status"]) == Meta.Str(condition["status"]))
            {
                condition["lastTransitionTime"] = existing["lastTransitionTime"]?.DeepClone();
            }

            list.Remove(existing);
        }

        if (condition["reason"] is null)
        {
            condition.Remove("reason");
        }

        if (condition["message"] is null)
        {
            condition.Remove("message");
        }

        list.Add(condition);
        status["conditions"] = list;
    }
}
