using System.Diagnostics;
using System.Globalization;
using LocalKube;
using LocalKube.Runtime;

// localkube: the local control plane (serve) and the test program of the image localkube/testpod (testpod).
const string Usage = """
    usage: localkube serve [--port N] [--kubeconfig PATH] [--root DIR] [--image NAME=PROGRAM]... [--nodes N] [--no-runtime]
                         [--apply FILE|DIR]...
             runs the API server, controllers and pod runtime until Ctrl-C (defaults: port 6443,
             kubeconfig .local/kubeconfig, root .local/localkube, images raftkv=bin/raftkv and
             raftkv-operator=bin/raftkv-operator when those files exist, 3 nodes in zones a, b, c);
             --apply server-side applies manifests at start (CRDs first), like kubectl apply --server-side
           localkube testpod [--port N] [--ready-dir DIR] [--exit-after SECONDS] [--exit-code N]
             the program behind the image localkube/testpod
    """;
switch (args)
{
    case ["testpod", .. var rest]:
        return await TestPod.RunAsync(rest);
    case ["serve", ..]:
        break;
    case ["-h" or "--help" or "help"]:
        Console.WriteLine(Usage);
        return 0;
    default:
        Console.Error.WriteLine(Usage);
        return 2;
}

var port = 6443;
var kubeconfig = Path.Combine(".local", "kubeconfig");
var root = Path.Combine(".local", "localkube");
var nodes = 3;
var runtime = true;
var images = new Dictionary<string, string>(StringComparer.Ordinal);
var manifests = new List<string>();
foreach (var (name, file) in new[] { ("raftkv", "bin/raftkv"), ("raftkv-operator", "bin/raftkv-operator") })
{
    if (File.Exists(file))
    {
        images[name] = Path.GetFullPath(file);
    }
}

for (var i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var p):
            port = p;
            i++;
            break;
        case "--nodes" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0:
            nodes = n;
            i++;
            break;
        case "--kubeconfig" when i + 1 < args.Length:
            kubeconfig = args[++i];
            break;
        case "--root" when i + 1 < args.Length:
            root = args[++i];
            break;
        case "--image" when i + 1 < args.Length && args[i + 1].Split('=', 2) is [var image, var program] && image.Length > 0 && program.Length > 0:
            images[image] = Path.GetFullPath(program);
            i++;
            break;
        case "--apply" when i + 1 < args.Length:
            manifests.Add(args[++i]);
            break;
        case "--no-runtime":
            runtime = false;
            break;
        default:
            Console.Error.WriteLine($"localkube: unknown or incomplete option '{args[i]}'\n{Usage}");
            return 2;
    }
}

var started = Stopwatch.StartNew();
await using var server = await LocalKubeServer.StartAsync(new LocalKubeOptions
{
    Port = port,
    KubeconfigPath = kubeconfig,
    LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
    Runtime = runtime ? new RuntimeOptions { Root = Path.GetFullPath(root), Images = images, NodeCount = nodes } : null,
});
Console.WriteLine($"localkube: API server at {server.Url} (started in {started.ElapsedMilliseconds} ms)");
Console.WriteLine($"localkube: kubeconfig written to {Path.GetFullPath(kubeconfig)}; try: kubectl --kubeconfig {kubeconfig} get nodes");
if (runtime)
{
    Console.WriteLine($"localkube: pods run as local processes; logs and volumes under {Path.GetFullPath(root)}; images: {string.Join(", ", images.Select(kv => $"{kv.Key}={kv.Value}").Append("localkube/testpod"))}");
}

foreach (var manifest in manifests)
{
    try
    {
        foreach (var line in server.Apply(manifest))
        {
            Console.WriteLine($"localkube: {line}");
        }
    }
    catch (Exception e) when (e is InvalidOperationException or IOException or FormatException)
    {
        Console.Error.WriteLine($"localkube: cannot apply {manifest}: {e.Message}");
        return 1;
    }
}

Console.WriteLine("localkube: press Ctrl-C to stop");
await server.WaitForShutdownAsync();
Console.WriteLine("localkube: stopping (and every pod process)");
return 0;
