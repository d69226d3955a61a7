using System.Runtime.InteropServices;
using RaftKv.LoadGenerator;

// Default (what 'make bench' runs): compare raftkv with etcd and write bench/results/loadgen.md.
// With a workload subcommand (put, range, txn-put, watch): run it against --endpoints and print the figures.
object command;
try
{
    command = CommandLine.Parse(args);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(CommandLine.Usage);
    return 2;
}

using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    // Let the run unwind so every member process it started is killed.
    context.Cancel = true;
    Console.Error.WriteLine("stopping: killing every member started by this run");
    stop.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
try
{
    switch (command)
    {
        case WorkloadSpec spec:
            var result = await LoadRunner.RunAsync("endpoints", spec, stop.Token);
            Console.WriteLine($"{spec.Name} ({spec.Describe()})");
            Console.WriteLine(Report.Line(result));
            Console.Error.WriteLine(result.ClientCost.Describe(result.Completed));
            return result.Completed > 0 && result.Errors == 0 ? 0 : 1;
        case CompareOptions options:
            return await Driver.RunAsync(options, stop.Token);
        default:
            throw new InvalidOperationException($"unexpected command {command}");
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("stopped");
    return 130;
}
catch (Exception e) when (e is Grpc.Core.RpcException or InvalidOperationException or TimeoutException or HttpRequestException)
{
    // Members unreachable, no leader, a cluster that did not start: say what happened instead of a stack dump.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
