using RaftKv.Raft;
using RaftKv.Storage.Snap;

namespace RaftKv.Storage.Tests;

public sealed class SnapshotterTests
{
    private static Snapshot Snap(ulong index, ulong term, string data) =>
        new(new SnapshotMetadata(index, term, new ConfState([1, 2, 3], [4])), System.Text.Encoding.UTF8.GetBytes(data));

    [Fact]
    public void The_newest_snapshot_is_loaded_with_its_metadata_and_data()
    {
        using var dir = new TempDir();
        var snapshotter = new Snapshotter(dir.Sub("member", "snap"));
        snapshotter.Save(Snap(10, 2, "ten"));
        snapshotter.Save(Snap(20, 3, "twenty"));
        Assert.Equal(["0000000000000003-0000000000000014.snap", "0000000000000002-000000000000000a.snap"], snapshotter.SnapshotNames());
        var loaded = snapshotter.LoadNewest()!;
        Assert.Equal(new SnapshotMetadata(20, 3, new ConfState([1, 2, 3], [4])), loaded.Metadata);
        Assert.Equal("twenty", System.Text.Encoding.UTF8.GetString(loaded.Data.Span));
        Assert.Equal(10UL, snapshotter.LoadNewest(m => m.Index < 20)!.Metadata.Index);
    }

    [Fact]
    public void A_damaged_snapshot_is_renamed_broken_and_the_next_older_one_used()
    {
        using var dir = new TempDir();
        var snapDir = dir.Sub("member", "snap");
        var snapshotter = new Snapshotter(snapDir);
        snapshotter.Save(Snap(10, 2, "ten"));
        snapshotter.Save(Snap(20, 3, "twenty"));
        var newest = Path.Combine(snapDir, Snapshotter.FileName(3, 20));
        var bytes = File.ReadAllBytes(newest);
        bytes[^2] ^= 0xFF;
        File.WriteAllBytes(newest, bytes);

        var loaded = snapshotter.LoadNewest()!;
        Assert.Equal(10UL, loaded.Metadata.Index);
        Assert.True(File.Exists(newest + ".broken"), "the damaged file should be kept as .broken for inspection");
        Assert.False(File.Exists(newest));
        Assert.Equal(["0000000000000002-000000000000000a.snap"], snapshotter.SnapshotNames());
    }

    [Fact]
    public void Purge_keeps_the_newest()
    {
        using var dir = new TempDir();
        var snapshotter = new Snapshotter(dir.Path);
        for (ulong i = 1; i <= 7; i++)
        {
            snapshotter.Save(Snap(i * 10, 1, "x"));
        }

        snapshotter.Purge(keep: 5);
        Assert.Equal(5, snapshotter.SnapshotNames().Count);
        Assert.Equal(70UL, snapshotter.LoadNewest()!.Metadata.Index);
    }
}
