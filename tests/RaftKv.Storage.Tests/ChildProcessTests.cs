using System.Diagnostics;
using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

/// <summary>A real process appending to a real WAL is killed with SIGKILL; the log then opens with every acknowledged entry.</summary>
public sealed class ChildProcessTests
{
    private static readonly WalMetadata Me = new(0xAB, 0xCD);

    private static Entry E(ulong index) => Entry.Normal(index, 1, Enumerable.Repeat((byte)index, 256).ToArray());

    /// <summary>The child: appends batches forever, printing the last index of each batch once its sync completed.</summary>
    public static int RunWriter(string directory)
    {
        using var wal = WriteAheadLog.Create(directory, Me, new WalOptions { SegmentSizeBytes = 256 * 1024 });
        ulong next = 1;
        while (true)
        {
            var batch = Enumerable.Range(0, 8).Select(i => E(next + (ulong)i)).ToArray();
            wal.AppendAsync(batch, new HardState(1, 0, next + 7)).GetAwaiter().GetResult();
            next += 8;
            Console.Out.WriteLine($"acked {next - 1}");
            Console.Out.Flush();
        }
    }

    [Fact]
    public async Task A_writer_killed_with_SIGKILL_leaves_every_acknowledged_entry()
    {
        using var dir = new TempDir();
        var walDir = dir.Sub("member", "wal");
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var psi = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(typeof(ChildProcessTests).Assembly.Location);
        psi.ArgumentList.Add("wal-writer");
        psi.ArgumentList.Add(walDir);
        using var child = Process.Start(psi)!;
        ulong acked = 0;
        var stderr = child.StandardError.ReadToEndAsync();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (acked < 2000)
            {
                var line = await child.StandardOutput.ReadLineAsync(timeout.Token);
                if (line is null)
                {
                    await child.WaitForExitAsync(timeout.Token);
                    Assert.Fail($"child exited early (code {child.ExitCode}) after acknowledging {acked}: {await stderr}");
                }

                acked = ulong.Parse(line["acked ".Length..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        finally
        {
            child.Kill(); // SIGKILL on Unix
            await child.WaitForExitAsync();
        }

        var (wal, contents) = WriteAheadLog.Open(walDir, Me, null, new WalOptions { SegmentSizeBytes = 256 * 1024 });
        using (wal)
        {
            Assert.True((ulong)contents.Entries.Count >= acked, $"{acked} entries acknowledged, {contents.Entries.Count} found after SIGKILL");
            for (var i = 0; i < contents.Entries.Count; i++)
            {
                var e = contents.Entries[i];
                Assert.Equal((ulong)i + 1, e.Index);
                Assert.True(e.Data.Span.SequenceEqual(E(e.Index).Data.Span), $"entry {e.Index} differs from what was written");
            }

            Assert.True(wal.SegmentNames.Count > 1, "the child should have written several segments");
        }
    }
}
