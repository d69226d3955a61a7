using RaftKv.Server;

return Cli.Run(args, Cli.ProcessEnvironment(), Console.Out, Console.Error);
