using System.Diagnostics;
using System.Globalization;
using LocalKube;

// localkube: runs the local control plane until Ctrl-C.
//   localkube serve [--port N] [--kubeconfig PATH]
if (args.Length == 0 || args[0] is "-h" or "--help" || args[0] != "serve")
{
    Console.Error.WriteLine("usage: localkube serve [--port N] [--kubeconfig PATH]   (default port 6443, kubeconfig .local/kubeconfig)");
    return args.Length > 0 && args[0] is "-h" or "--help" ? 0 : 2;
}

var port = 6443;
var kubeconfig = Path.Combine(".local", "kubeconfig");
for (var i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var p):
            port = p;
            i++;
            break;
        case "--kubeconfig" when i + 1 < args.Length:
            kubeconfig = args[++i];
            break;
        default:
            Console.Error.WriteLine($"localkube: unknown or incomplete option '{args[i]}'; see localkube --help");
            return 2;
    }
}

var started = Stopwatch.StartNew();
await using var server = await LocalKubeServer.StartAsync(new LocalKubeOptions { Port = port, KubeconfigPath = kubeconfig, LogLevel = Microsoft.Extensions.Logging.LogLevel.Information });
Console.WriteLine($"localkube: API server at {server.Url} (started in {started.ElapsedMilliseconds} ms)");
Console.WriteLine($"localkube: kubeconfig written to {Path.GetFullPath(kubeconfig)}; try: kubectl --kubeconfig {kubeconfig} get namespaces");
Console.WriteLine("localkube: press Ctrl-C to stop");
await server.WaitForShutdownAsync();
Console.WriteLine("localkube: stopping");
return 0;
