using System.Text;
using System.Text.Json.Nodes;

namespace LocalKube.Api;

/// <summary>Reads the Kubernetes protobuf encoding (<c>application/vnd.kubernetes.protobuf</c>) of the few kinds
/// that clients write with typed clients, which send protobuf by default: helm's release Secrets, and kubectl's
/// imperative <c>create namespace|configmap|secret|serviceaccount</c>, and DeleteOptions. Other kinds are refused with a 415 that says
/// to send JSON (as <c>kubectl create -f</c> and <c>apply</c> do). Field numbers are those of k8s.io/api
/// generated.proto.</summary>
internal static class Protobuf
{
    private static readonly byte[] Magic = "k8s\0"u8.ToArray();

    private enum Kind
    {
        String,
        Bytes,
        Int,
        Bool,
        Message,
        Time,
        StringMap,
        BytesMap,
        Strings,
        Messages,
    }

    private sealed record Field(string Name, Kind Kind, Dictionary<int, Field>? Message = null);

    private static readonly Dictionary<int, Field> OwnerReference = new()
    {
        [1] = new("kind", Kind.String),
        [3] = new("name", Kind.String),
        [4] = new("uid", Kind.String),
        [5] = new("apiVersion", Kind.String),
        [6] = new("controller", Kind.Bool),
        [7] = new("blockOwnerDeletion", Kind.Bool),
    };

    private static readonly Dictionary<int, Field> ObjectMeta = new()
    {
        [1] = new("name", Kind.String),
        [2] = new("generateName", Kind.String),
        [3] = new("namespace", Kind.String),
        [5] = new("uid", Kind.String),
        [6] = new("resourceVersion", Kind.String),
        [7] = new("generation", Kind.Int),
        [8] = new("creationTimestamp", Kind.Time),
        [9] = new("deletionTimestamp", Kind.Time),
        [10] = new("deletionGracePeriodSeconds", Kind.Int),
        [11] = new("labels", Kind.StringMap),
        [12] = new("annotations", Kind.StringMap),
        [13] = new("ownerReferences", Kind.Messages, OwnerReference),
        [14] = new("finalizers", Kind.Strings),
    };

    private static readonly Dictionary<int, Field> LocalObjectReference = new() { [1] = new("name", Kind.String) };

    private static readonly Dictionary<int, Field> DeleteOptions = new()
    {
        [1] = new("gracePeriodSeconds", Kind.Int),
        [2] = new("preconditions", Kind.Message, new() { [1] = new("uid", Kind.String), [2] = new("resourceVersion", Kind.String) }),
        [3] = new("orphanDependents", Kind.Bool),
        [4] = new("propagationPolicy", Kind.String),
        [5] = new("dryRun", Kind.Strings),
    };

    private static readonly Dictionary<string, Dictionary<int, Field>> Kinds = new(StringComparer.Ordinal)
    {
        ["meta.k8s.io/v1/DeleteOptions"] = DeleteOptions,
        ["v1/DeleteOptions"] = DeleteOptions,
        ["v1/Secret"] = new()
        {
            [1] = new("metadata", Kind.Message, ObjectMeta),
            [2] = new("data", Kind.BytesMap),
            [3] = new("type", Kind.String),
            [4] = new("stringData", Kind.StringMap),
            [5] = new("immutable", Kind.Bool),
        },
        ["v1/ConfigMap"] = new()
        {
            [1] = new("metadata", Kind.Message, ObjectMeta),
            [2] = new("data", Kind.StringMap),
            [3] = new("binaryData", Kind.BytesMap),
            [4] = new("immutable", Kind.Bool),
        },
        ["v1/Namespace"] = new()
        {
            [1] = new("metadata", Kind.Message, ObjectMeta),
            [2] = new("spec", Kind.Message, new() { [1] = new("finalizers", Kind.Strings) }),
        },
        ["v1/ServiceAccount"] = new()
        {
            [1] = new("metadata", Kind.Message, ObjectMeta),
            [3] = new("imagePullSecrets", Kind.Messages, LocalObjectReference),
            [4] = new("automountServiceAccountToken", Kind.Bool),
        },
    };

    /// <summary>Decodes an enveloped protobuf object into JSON; throws <see cref="ApiException"/> (415) for kinds
    /// not covered.</summary>
    public static JsonObject Decode(byte[] body)
    {
        if (body.Length < 4 || !body.AsSpan(0, 4).SequenceEqual(Magic))
        {
            throw ApiException.BadRequest("protobuf body without the k8s envelope prefix");
        }

        // runtime.Unknown { TypeMeta typeMeta = 1 {apiVersion = 1, kind = 2}; bytes raw = 2; ... }
        string? apiVersion = null, kind = null;
        ReadOnlyMemory<byte> raw = default;
        foreach (var (number, _, value, _) in Fields(body.AsMemory(4)))
        {
            if (number == 1)
            {
                foreach (var (n, _, v, _) in Fields(value))
                {
                    if (n == 1)
                    {
                        apiVersion = Encoding.UTF8.GetString(v.Span);
                    }
                    else if (n == 2)
                    {
                        kind = Encoding.UTF8.GetString(v.Span);
                    }
                }
            }
            else if (number == 2)
            {
                raw = value;
            }
        }

        if (!Kinds.TryGetValue($"{apiVersion}/{kind}", out var message))
        {
            throw ApiException.UnsupportedMediaType($"localkube reads protobuf only for Secret, ConfigMap, Namespace and ServiceAccount, not {apiVersion} {kind}: send JSON instead (kubectl create -f FILE or kubectl apply do)");
        }

        var obj = DecodeMessage(raw, message);
        obj["apiVersion"] = apiVersion;
        obj["kind"] = kind;
        return obj;
    }

    private static JsonObject DecodeMessage(ReadOnlyMemory<byte> data, Dictionary<int, Field> message)
    {
        var obj = new JsonObject();
        foreach (var (number, _, value, varint) in Fields(data))
        {
            if (!message.TryGetValue(number, out var field))
            {
                continue;
            }

            switch (field.Kind)
            {
                case Kind.String when value.Length == 0:
                    // Go's protobuf writes unset strings as empty ones; JSON clients would have left them out.
                    break;
                case Kind.String:
                    obj[field.Name] = Encoding.UTF8.GetString(value.Span);
                    break;
                case Kind.Bytes:
                    obj[field.Name] = Convert.ToBase64String(value.Span);
                    break;
                case Kind.Int:
                    obj[field.Name] = (long)varint;
                    break;
                case Kind.Bool:
                    obj[field.Name] = varint != 0;
                    break;
                case Kind.Message:
                    obj[field.Name] = DecodeMessage(value, field.Message!);
                    break;
                case Kind.Time:
                    {
                        long seconds = 0;
                        foreach (var (n, _, _, v) in Fields(value))
                        {
                            if (n == 1)
                            {
                                seconds = (long)v;
                            }
                        }

                        if (seconds != 0)
                        {
                            obj[field.Name] = Meta.Timestamp(DateTimeOffset.FromUnixTimeSeconds(seconds));
                        }

                        break;
                    }

                case Kind.StringMap or Kind.BytesMap:
                    {
                        var map = obj[field.Name] as JsonObject ?? [];
                        string key = "", text = "";
                        foreach (var (n, _, v, _) in Fields(value))
                        {
                            if (n == 1)
                            {
                                key = Encoding.UTF8.GetString(v.Span);
                            }
                            else if (n == 2)
                            {
                                text = field.Kind == Kind.StringMap ? Encoding.UTF8.GetString(v.Span) : Convert.ToBase64String(v.Span);
                            }
                        }

                        map[key] = text;
                        obj[field.Name] = map;
                        break;
                    }

                case Kind.Strings:
                    {
                        var list = obj[field.Name] as JsonArray ?? [];
                        list.Add(Encoding.UTF8.GetString(value.Span));
                        obj[field.Name] = list;
                        break;
                    }

                case Kind.Messages:
                    {
                        var list = obj[field.Name] as JsonArray ?? [];
                        list.Add(DecodeMessage(value, field.Message!));
                        obj[field.Name] = list;
                        break;
                    }
            }
        }

        return obj;
    }

    /// <summary>The fields of a protobuf message: number, wire type, payload (length-delimited) and varint value.</summary>
    private static List<(int Number, int WireType, ReadOnlyMemory<byte> Value, ulong Varint)> Fields(ReadOnlyMemory<byte> data)
    {
        var result = new List<(int, int, ReadOnlyMemory<byte>, ulong)>();
        var span = data.Span;
        var i = 0;
        while (i < span.Length)
        {
            var key = ReadVarint(span, ref i);
            var number = (int)(key >> 3);
            var wire = (int)(key & 7);
            switch (wire)
            {
                case 0:
                    result.Add((number, wire, default, ReadVarint(span, ref i)));
                    break;
                case 1:
                    result.Add((number, wire, data.Slice(i, 8), BitConverter.ToUInt64(span.Slice(i, 8))));
                    i += 8;
                    break;
                case 2:
                    {
                        var length = (int)ReadVarint(span, ref i);
                        if (length < 0 || i + length > span.Length)
                        {
                            throw ApiException.BadRequest("truncated protobuf body");
                        }

                        result.Add((number, wire, data.Slice(i, length), 0));
                        i += length;
                        break;
                    }

                case 5:
                    result.Add((number, wire, data.Slice(i, 4), BitConverter.ToUInt32(span.Slice(i, 4))));
                    i += 4;
                    break;
                default:
                    throw ApiException.BadRequest($"unsupported protobuf wire type {wire}");
            }
        }

        return result;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> span, ref int i)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (i >= span.Length)
            {
                throw ApiException.BadRequest("truncated protobuf varint");
            }

            var b = span[i++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw ApiException.BadRequest("protobuf varint longer than 64 bits");
    }
}
