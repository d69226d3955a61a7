using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>A failed API request, answered as a Kubernetes <c>Status</c> object with the same code and reason a
/// real API server uses, so clients (kubectl, client-go, KubernetesClient) react as they would in a cluster.</summary>
internal sealed class ApiException(int code, string reason, string message, JsonObject? details = null) : Exception(message)
{
    public int Code { get; } = code;

    public string Reason { get; } = reason;

    public JsonObject? Details { get; } = details;

    public JsonObject ToStatus() => StatusObject(Code, Reason, Message, Details);

    public static JsonObject StatusObject(int code, string reason, string message, JsonObject? details) => new()
    {
        ["kind"] = "Status",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = reason,
        ["details"] = details?.DeepClone(),
        ["code"] = code,
    };

    private static JsonObject Describe(ResourceType type, string? name) => new()
    {
        ["name"] = name,
        ["group"] = type.Group,
        ["kind"] = type.Plural,
    };

    public static ApiException NotFound(ResourceType type, string name) =>
        new(404, "NotFound", $"{type.QualifiedPlural} \"{name}\" not found", Describe(type, name));

    public static ApiException AlreadyExists(ResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.QualifiedPlural} \"{name}\" already exists", Describe(type, name));

    public static ApiException Conflict(ResourceType type, string name, string why) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {type.QualifiedPlural} \"{name}\": {why}", Describe(type, name));

    public static ApiException StaleResourceVersion(ResourceType type, string name) =>
        Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");

    public static ApiException BadRequest(string message) => new(400, "BadRequest", message);

    public static ApiException Gone(string message) => new(410, "Expired", message);

    public static ApiException MethodNotAllowed(string message) => new(405, "MethodNotAllowed", message);

    public static ApiException UnsupportedMediaType(string message) => new(415, "UnsupportedMediaType", message);

    public static ApiException Forbidden(ResourceType type, string name, string why) =>
        new(403, "Forbidden", $"{type.QualifiedPlural} \"{name}\" is forbidden: {why}", Describe(type, name));

    /// <summary>422 Invalid, listing each field error as a cause.</summary>
    public static ApiException Invalid(ResourceType type, string name, IReadOnlyList<FieldError> errors)
    {
        var causes = new JsonArray();
        foreach (var e in errors)
        {
            causes.Add(new JsonObject { ["reason"] = e.Reason, ["message"] = e.Message, ["field"] = e.Field });
        }

        var details = Describe(type, name);
        details["kind"] = type.Kind;
        details["causes"] = causes;
        var text = string.Join(", ", errors.Select(e => $"{e.Field}: {e.Message}"));
        var kind = type.Group.Length == 0 ? type.Kind : $"{type.Kind}.{type.Group}";
        return new ApiException(422, "Invalid", $"{kind} \"{name}\" is invalid: {text}", details);
    }
}

/// <summary>One invalid field: its path (for example <c>spec.replicas</c>), the reason and the message.</summary>
internal sealed record FieldError(string Field, string Message, string Reason = "FieldValueInvalid");
