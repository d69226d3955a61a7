namespace LocalKube.Tests;

/// <summary>CustomResourceDefinitions through kubectl: establishment, serving, printer columns, subresources,
/// apply, deletion of the CRD with its objects.</summary>
public sealed class CrdTests(LocalKubeFixture kube) : IClassFixture<LocalKubeFixture>
{
    internal const string Crd = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: widgets.example.com
        spec:
          group: example.com
          scope: Namespaced
          names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
          versions:
          - name: v1
            served: true
            storage: true
            subresources:
              status: {}
              scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
            additionalPrinterColumns:
            - {name: Replicas, type: integer, jsonPath: .spec.replicas}
            - {name: Available, type: string, jsonPath: '.status.conditions[?(@.type=="Available")].status'}
            - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    properties:
                      replicas: {type: integer}
                      size: {type: string}
                  status:
                    type: object
                    properties:
                      replicas: {type: integer}
                      conditions:
                        type: array
                        items:
                          type: object
                          properties:
                            type: {type: string}
                            status: {type: string}
        """;

    [Fact]
    public async Task Crd_is_established_and_serves_its_resource_with_columns_scale_and_status()
    {
        await kube.KubectlOkIn(Crd, "apply", "-f", "-");
        await kube.KubectlOk("wait", "--for", "condition=established", "crd/widgets.example.com", "--timeout=10s");
        var ns = await kube.NewNamespace("crd");
        var widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  replicas: 3\n  size: small\n";
        Assert.Contains("widget.example.com/w created", await kube.KubectlOkIn(widget, "-n", ns, "apply", "-f", "-"), StringComparison.Ordinal);

        var table = await kube.KubectlOk("-n", ns, "get", "wg");
        Assert.Matches(@"NAME\s+REPLICAS\s+AVAILABLE\s+AGE", table);
        Assert.Matches(@"w\s+3\s+<none>\s+\d+s", table);

        await kube.KubectlOk("-n", ns, "scale", "widget", "w", "--replicas=5");
        Assert.Equal("5 2", await kube.KubectlOk("-n", ns, "get", "widget", "w", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"));

        // Status only through the status subresource, and it does not bump generation.
        await kube.KubectlOk("-n", ns, "patch", "widget", "w", "--subresource=status", "--type=merge", "-p", "{\"status\":{\"replicas\":5,\"conditions\":[{\"type\":\"Available\",\"status\":\"True\"}]}}");
        Assert.Matches(@"w\s+5\s+True\s+", await kube.KubectlOk("-n", ns, "get", "widgets"));
        Assert.Equal("2", await kube.KubectlOk("-n", ns, "get", "widget", "w", "-o", "jsonpath={.metadata.generation}"));

        // Client-side apply of a custom resource goes through a JSON merge patch.
        Assert.Contains("configured", await kube.KubectlOkIn(widget.Replace("small", "large", StringComparison.Ordinal), "-n", ns, "apply", "-f", "-"), StringComparison.Ordinal);
        Assert.Equal("large", await kube.KubectlOk("-n", ns, "get", "widget", "w", "-o", "jsonpath={.spec.size}"));

        await kube.KubectlOk("delete", "crd", "widgets.example.com");
        var gone = await kube.Kubectl("-n", ns, "get", "widgets");
        Assert.True(gone.ExitCode != 0, gone.ToString());
    }
}
