namespace LocalKube.Tests;

/// <summary>What <c>localkube serve</c> does besides serving: applying manifests at start.</summary>
public sealed class ServeTests
{
    [Fact]
    public async Task Apply_creates_crds_first_then_their_objects_and_is_idempotent()
    {
        var dir = Path.Combine(Path.GetTempPath(), "localkube-apply-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            // The custom resource comes before its CRD in file order; apply sorts CRDs first.
            await File.WriteAllTextAsync(Path.Combine(dir, "a-widget.yaml"), "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {replicas: 3}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n");
            await File.WriteAllTextAsync(Path.Combine(dir, "b-crd.yaml"), CrdTests.Crd);
            await using var server = await LocalKubeServer.StartAsync(new LocalKubeOptions());
            Assert.Equal(
                ["customresourcedefinition.apiextensions.k8s.io/widgets.example.com created", "widget.example.com/w created", "configmap/c created"],
                server.Apply(dir));
            Assert.Equal(
                ["customresourcedefinition.apiextensions.k8s.io/widgets.example.com configured", "widget.example.com/w configured", "configmap/c configured"],
                server.Apply(dir));

            await File.WriteAllTextAsync(Path.Combine(dir, "c-unknown.yaml"), "apiVersion: nowhere.io/v1\nkind: Thing\nmetadata: {name: t}\n");
            var e = Assert.Throws<InvalidOperationException>(() => server.Apply(dir));
            Assert.Contains("no resource serves nowhere.io/v1 Thing (object \"t\"); is its CRD applied?", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
