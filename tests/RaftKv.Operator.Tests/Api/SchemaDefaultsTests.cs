using System.Reflection;
using System.Text.Json.Serialization;
using k8s;
using RaftKv.Operator.Api.Schema;
using RaftKv.Operator.Api.V1Alpha1;

namespace RaftKv.Operator.Tests.Api;

/// <summary>The CRD's defaults (applied by the API server) and the C# initializers (applied when a field is absent) must agree.</summary>
public sealed class SchemaDefaultsTests
{
    public static TheoryData<string> DefaultedProperties()
    {
        var data = new TheoryData<string>();
        foreach (var type in typeof(RaftCluster).Assembly.GetTypes().Where(t => t.Namespace == typeof(RaftCluster).Namespace && t.IsClass))
        {
            foreach (var property in type.GetProperties().Where(p => p.GetCustomAttribute<DefaultAttribute>() is not null))
            {
                data.Add($"{type.Name}.{property.Name}");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DefaultedProperties))]
    public void The_CRD_default_equals_the_CSharp_default(string typeAndProperty)
    {
        var (typeName, propertyName) = (typeAndProperty.Split('.')[0], typeAndProperty.Split('.')[1]);
        var type = typeof(RaftCluster).Assembly.GetTypes().Single(t => t.Name == typeName && t.Namespace == typeof(RaftCluster).Namespace);
        var property = type.GetProperty(propertyName)!;
        var json = property.GetCustomAttribute<DefaultAttribute>()!.Json;
        var jsonName = property.GetCustomAttribute<JsonPropertyNameAttribute>()!.Name;

        var withDefault = System.Text.Json.JsonSerializer.Deserialize($"{{\"{jsonName}\": {json}}}", type, KubernetesJsonOptions)!;
        var fresh = Activator.CreateInstance(type)!;

        Assert.Equal(KubernetesJson.Serialize(property.GetValue(fresh)), KubernetesJson.Serialize(property.GetValue(withDefault)));
    }

    [Fact]
    public void There_are_defaults_to_check()
    {
        Assert.True(DefaultedProperties().Count >= 8, $"only {DefaultedProperties().Count} defaulted properties found");
    }

    private static readonly System.Text.Json.JsonSerializerOptions KubernetesJsonOptions = new()
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
    };
}
