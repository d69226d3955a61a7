using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Server.Node;
using RaftKv.Server.Peers;
using RaftKv.Storage.Mvcc;

namespace RaftKv.Server.Tests.Node;

/// <summary>Start-up after a stop in the middle of installing a snapshot from the leader (WAL marker written, store not yet swapped).</summary>
public sealed class SnapshotRecoveryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("raftkv-snaprecovery-");

    private string SnapDir => _dir.FullName;

    private string StorePath => Path.Combine(SnapDir, "db");

    private static void WriteStore(string path, ulong lastIndex)
    {
        using var store = MvccStore.Open(path);
        for (ulong i = 1; i <= lastIndex; i++)
        {
            store.Apply([new ApplyCommand(i, 2, new PutRequest { Key = "k"u8.ToArray(), Value = BitConverter.GetBytes(i) })]);
        }
    }

    [Fact]
    public void A_received_image_the_store_is_behind_is_swapped_in_and_leftovers_are_removed()
    {
        WriteStore(StorePath, 5);
        var image = SnapshotReceiver.ImagePath(SnapDir, 40);
        WriteStore(Path.Combine(SnapDir, "image-build"), 40);
        File.Move(Path.Combine(SnapDir, "image-build"), image);
        var older = SnapshotReceiver.ImagePath(SnapDir, 16);
        File.WriteAllText(older, "older image");
        File.WriteAllText(image + ".0123.part", "partial receive");
        File.WriteAllText(Path.Combine(SnapDir, "send-0000000000000002-abc.tmp"), "copy being sent");

        SnapshotCoordinator.RecoverStore(SnapDir, StorePath, 40, NullLogger.Instance);

        Assert.Equal((40UL, 2UL), MvccStore.ReadPosition(StorePath));
        var left = Directory.GetFiles(SnapDir).Select(f => Path.GetFileName(f)!).ToList();
        Assert.True(left.Contains("db") && !left.Any(f => f.EndsWith(".snap.db", StringComparison.Ordinal) || f.EndsWith(".part", StringComparison.Ordinal)
            || f.StartsWith("send-", StringComparison.Ordinal)), "left in the snap dir: " + string.Join(", ", left));
    }

    [Fact]
    public void A_store_behind_the_snapshot_without_its_image_refuses_to_start_with_what_to_do()
    {
        WriteStore(StorePath, 5);

        var error = Assert.Throws<InvalidDataException>(() => SnapshotCoordinator.RecoverStore(SnapDir, StorePath, 80, NullLogger.Instance));

        Assert.Contains("holds index 5 but the newest snapshot is at 80", error.Message, StringComparison.Ordinal);
        Assert.Contains("Remove this member and re-add it with an empty data dir", error.Message, StringComparison.Ordinal);
        Assert.Equal((5UL, 2UL), MvccStore.ReadPosition(StorePath));
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
