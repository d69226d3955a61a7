using RaftKv.Operator;

return Cli.Run(args, Console.Out, Console.Error);
