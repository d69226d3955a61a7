using RaftKv.Operator;

return await Cli.RunAsync(args, Console.Out, Console.Error);
