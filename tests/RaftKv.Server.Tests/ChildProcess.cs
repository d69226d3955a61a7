using System.Diagnostics;

namespace RaftKv.Server.Tests;

/// <summary>Runs a program the tests start (etcdctl, python3, bin/raftkv) to its exit and collects what it printed.</summary>
internal static class ChildProcess
{
    /// <summary>
    /// Starts <paramref name="psi"/> with both output streams read, writes <paramref name="input"/> to its stdin when given,
    /// and waits up to <paramref name="timeout"/>. A program still running then is killed (with its children) and reported
    /// with a null code and what it had printed.
    /// </summary>
    public static async Task<(int? Code, string Stdout, string Stderr)> RunAsync(ProcessStartInfo psi, TimeSpan timeout, string? input = null)
    {
        psi.UseShellExecute = false;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.RedirectStandardInput = input is not null;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            return (null, await stdout, await stderr);
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
