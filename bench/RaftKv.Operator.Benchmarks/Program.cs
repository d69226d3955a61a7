using RaftKv.Operator.Benchmarks;

// make bench (or: dotnet run --project bench/RaftKv.Operator.Benchmarks -c Release -- [--runs N] [--output FILE])
var runs = 3;
string? output = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--runs" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n > 0:
            runs = n;
            i++;
            break;
        case "--output" when i + 1 < args.Length:
            output = args[++i];
            break;
        case "--help" or "-h":
            Console.WriteLine("usage: RaftKv.Operator.Benchmarks [--runs N (failovers per timing, default 3)] [--output FILE (default bench/results/operator.md)]");
            return 0;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}': try --help");
            return 2;
    }
}

await using var bench = await OperatorBench.StartAsync();
var report = await bench.RunAsync(runs);
var path = output ?? Path.Combine(OperatorBench.RepositoryRoot, "bench/results/operator.md");
await File.WriteAllTextAsync(path, report);
Console.WriteLine(report);
Console.WriteLine($"wrote {path}");
return 0;
