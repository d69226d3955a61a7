using System.Text.Json.Nodes;
using LocalKube.Api;

namespace LocalKube.Validation;

/// <summary>Admission for custom resources: defaulting, pruning (an error under <c>fieldValidation=Strict</c>,
/// which kubectl sends by default), and validation against the version's OpenAPI v3 schema and CEL rules.</summary>
internal sealed class CustomResourceValidation : IAdmission
{
    public void Admit(AdmissionRequest request)
    {
        if (!request.Type.IsCustom || request.Type.Schema is not { } schema)
        {
            return;
        }

        var obj = request.Object;
        var name = Meta.Name(obj) ?? "";
        var body = new JsonObject();
        foreach (var (k, v) in obj)
        {
            if (k is not "apiVersion" and not "kind" and not "metadata")
            {
                body[k] = v?.DeepClone();
            }
        }

        SchemaValidator.Default(body, schema);
        var pruned = SchemaValidator.Prune(body, schema, "");
        if (pruned.Count > 0 && request.FieldValidation == "Strict")
        {
            throw ApiException.BadRequest($"{request.Type.Kind} in version \"{request.Type.Version}\" cannot be handled as a {request.Type.Kind}: strict decoding error: {string.Join(", ", pruned.Select(p => $"unknown field \"{p}\""))}");
        }

        foreach (var (k, _) in obj.ToList())
        {
            if (k is not "apiVersion" and not "kind" and not "metadata" && !body.ContainsKey(k))
            {
                obj.Remove(k);
            }
        }

        foreach (var (k, v) in body)
        {
            obj[k] = v?.DeepClone();
        }

        var old = request.OldObject;
        var oldBody = old is null ? null : new JsonObject(old.Where(kv => kv.Key is not "apiVersion" and not "kind" and not "metadata").Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone())));
        var errors = SchemaValidator.Validate(body, oldBody, old is not null, schema, "");
        if (errors.Count > 0)
        {
            throw ApiException.Invalid(request.Type, name, errors);
        }
    }
}
