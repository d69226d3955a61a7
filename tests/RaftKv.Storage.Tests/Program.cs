namespace RaftKv.Storage.Tests;

/// <summary>Entry point for helper child processes (the tests themselves run under the test host).</summary>
public static class Program
{
    public static int Main(string[] args) => args is ["wal-writer", var dir] ? ChildProcessTests.RunWriter(dir) : 2;
}
