using RaftKv.Server;

return Cli.Run(args, Console.Out, Console.Error);
