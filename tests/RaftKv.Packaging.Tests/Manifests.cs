using k8s;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace RaftKv.Packaging.Tests;

/// <summary>One object of a rendered multi-document YAML stream: its kind, name and text.</summary>
internal sealed record Manifest(string ApiVersion, string Kind, string Name, string? Namespace, string Yaml)
{
    public override string ToString() => $"{Kind} {Namespace}/{Name}";
}

/// <summary>Splits rendered manifests and reads them strictly into KubernetesClient's models (an unknown field fails).</summary>
internal static partial class Manifests
{
    /// <summary>Strict readers into the Kubernetes API types of the kinds we render, by apiVersion/kind.</summary>
    public static readonly IReadOnlyDictionary<string, Func<string, object>> Models = new Dictionary<string, Func<string, object>>(StringComparer.Ordinal)
    {
        ["v1/Namespace"] = Strict<V1Namespace>,
        ["v1/ServiceAccount"] = Strict<V1ServiceAccount>,
        ["v1/Service"] = Strict<V1Service>,
        ["v1/ConfigMap"] = Strict<V1ConfigMap>,
        ["apps/v1/Deployment"] = Strict<V1Deployment>,
        ["rbac.authorization.k8s.io/v1/ClusterRole"] = Strict<V1ClusterRole>,
        ["rbac.authorization.k8s.io/v1/ClusterRoleBinding"] = Strict<V1ClusterRoleBinding>,
        ["rbac.authorization.k8s.io/v1/Role"] = Strict<V1Role>,
        ["rbac.authorization.k8s.io/v1/RoleBinding"] = Strict<V1RoleBinding>,
        ["storage.k8s.io/v1/StorageClass"] = Strict<V1StorageClass>,
        ["apiextensions.k8s.io/v1/CustomResourceDefinition"] = Strict<V1CustomResourceDefinition>,
    };

    /// <summary>prometheus-operator kinds: KubernetesClient has no models for them; they are checked field by field elsewhere.</summary>
    public static readonly IReadOnlySet<string> MonitoringKinds = new HashSet<string>(StringComparer.Ordinal)
    {
        "monitoring.coreos.com/v1/ServiceMonitor",
        "monitoring.coreos.com/v1/PodMonitor",
        "monitoring.coreos.com/v1/PrometheusRule",
    };

    /// <summary>The documents of a YAML stream (split at <c>---</c> lines), empty ones left out.</summary>
    public static List<Manifest> Split(string yaml)
    {
        var result = new List<Manifest>();
        foreach (var text in DocumentSeparator().Split(yaml))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root || root.Children.Count == 0)
            {
                continue;
            }

            var meta = root.Children.TryGetValue(new YamlScalarNode("metadata"), out var m) ? m as YamlMappingNode : null;
            result.Add(new Manifest(Scalar(root, "apiVersion") ?? "", Scalar(root, "kind") ?? "", Scalar(meta, "name") ?? "", Scalar(meta, "namespace"), text));
        }

        return result;
    }

    /// <summary>Reads <paramref name="manifest"/> into its model, strictly; fails naming the object if a field is unknown.</summary>
    public static object Strict(Manifest manifest)
    {
        var key = $"{manifest.ApiVersion}/{manifest.Kind}";
        Assert.True(Models.TryGetValue(key, out var read), $"{manifest}: no KubernetesClient model registered for {key}");
        try
        {
            return read!(manifest.Yaml);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            Assert.Fail($"{manifest} does not read strictly as the Kubernetes type of {key}: {e.Message} {e.InnerException?.Message}\n{manifest.Yaml}");
            throw;
        }
    }

    public static T Strict<T>(string yaml) => KubernetesYaml.Deserialize<T>(yaml, strict: true);

    public static YamlMappingNode Mapping(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static string? Scalar(YamlMappingNode? node, string key) =>
        node is not null && node.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;

    [System.Text.RegularExpressions.GeneratedRegex(@"(?m)^---[ \t]*$")]
    private static partial System.Text.RegularExpressions.Regex DocumentSeparator();
}
