using System.Security.Cryptography;
using Google.Protobuf;
using RaftKv.Protocol.Internal;
using RaftKv.Raft;
using RaftKv.Server.Cluster;
using RaftKv.Server.Configuration;
using RaftKv.Storage.Mvcc;
using Wal = RaftKv.Storage.Wal;

namespace RaftKv.Server.Node;

/// <summary>
/// <c>raftkv snapshot restore FILE</c>: a new member's data dir from a snapshot that <c>etcdctl snapshot save</c> took of a
/// raftkv member, as <c>etcdctl snapshot restore</c> / <c>etcdutl snapshot restore</c> make one for etcd. Every member of
/// the new cluster is restored from the same file with its own <c>--name</c> and the same <c>--initial-cluster</c> and
/// <c>--initial-cluster-token</c>, then started with <c>--data-dir</c> alone (its WAL says who it is).
/// <para>The data dir holds the store (keys, revisions, leases as they were; the Raft position forgotten) and a WAL that
/// starts the new cluster: one committed entry per initial member (with its name and peer URLs), as a bootstrap does.</para>
/// </summary>
internal static class SnapshotRestore
{
    /// <summary>The flags restore takes (etcdctl's, less the ones about the old cluster's hash layout).</summary>
    public static IReadOnlySet<string> Flags { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "name", "data-dir", "wal-dir", "initial-cluster", "initial-cluster-token", "initial-advertise-peer-urls",
    };

    public const string SkipHashCheckFlag = "skip-hash-check";

    public const string Usage =
        """
        Usage: raftkv snapshot restore FILE [flags]

        Makes a new member's data dir from a snapshot file taken with 'etcdctl snapshot save' from a raftkv member.
        Restore every member of the new cluster from the same file, each with its own --name, then start each with
        its --data-dir (and its listen and advertise URLs). Keys, revisions and leases are kept; the membership is new.

          --name                         this member's name (default "default")
          --data-dir                     the data dir to create; must not exist or be empty (default "NAME.etcd")
          --wal-dir                      a dedicated WAL directory to create (default DATA_DIR/member/wal); start the member with it too
          --initial-cluster              the new cluster's members, NAME=PEER_URL,... (default "default=http://localhost:2380")
          --initial-cluster-token        the new cluster's token (default "etcd-cluster")
          --initial-advertise-peer-urls  this member's peer URLs, as listed in --initial-cluster (default "http://localhost:2380")
          --skip-hash-check              accept a file without the SHA-256 that 'etcdctl snapshot save' appends (a copied db file)
        """;

    /// <summary>Runs the subcommand on the arguments after <c>snapshot restore</c>; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Count == 1 && args[0] is "--help" or "-h")
        {
            stdout.WriteLine(Usage);
            return 0;
        }

        string? file = null;
        var skipHashCheck = false;
        var flags = new List<string>();
        try
        {
            for (var i = 0; i < args.Count; i++)
            {
                var arg = args[i];
                var name = arg.TrimStart('-').Split('=', 2)[0];
                if (!arg.StartsWith('-'))
                {
                    file = file is null ? arg : throw new ConfigException($"one snapshot file only (got '{file}' and '{arg}')");
                }
                else if (name == SkipHashCheckFlag)
                {
                    skipHashCheck = !arg.EndsWith("=false", StringComparison.Ordinal);
                }
                else if (Flags.Contains(name))
                {
                    flags.Add(arg);
                    if (!arg.Contains('=', StringComparison.Ordinal) && i + 1 < args.Count)
                    {
                        flags.Add(args[++i]); // the value as the next argument
                    }
                }
                else
                {
                    throw new ConfigException($"unknown flag '{arg}' for snapshot restore; it takes {string.Join(", ", Flags.Order(StringComparer.Ordinal).Select(f => "--" + f))} and --{SkipHashCheckFlag}");
                }
            }

            if (file is null)
            {
                throw new ConfigException("snapshot restore needs the snapshot file: raftkv snapshot restore FILE [flags]");
            }

            // ETCD_* variables are not read here: restore is told everything on its command line, as etcdctl's is.
            var config = MemberConfigParser.Parse(flags, new Dictionary<string, string>(StringComparer.Ordinal));
            var restored = Restore(file, config, skipHashCheck);
            stdout.WriteLine($"restored snapshot {file} (revision {restored.Revision}) into {config.DataDir} as member {config.Name} ({restored.MemberId:x}) of cluster {restored.ClusterId:x}");
            return 0;
        }
        catch (ConfigException e)
        {
            stderr.WriteLine($"{Cli.ProgramName}: {e.Message}");
            return Cli.ConfigError;
        }
        catch (Exception e) when (e is SnapshotRestoreException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"{Cli.ProgramName}: snapshot restore: {e.Message}");
            return Cli.RuntimeError;
        }
    }

    /// <summary>What a restore made.</summary>
    public sealed record Result(ulong ClusterId, ulong MemberId, long Revision);

    /// <summary>
    /// Makes <paramref name="config"/>'s data dir from <paramref name="file"/>; on any failure nothing is left behind. The
    /// member directory is made beside it (<c>DATA_DIR/.restoring</c>) and moved into place whole, so a restore cut short
    /// leaves no half-made member. <paramref name="onVolume"/>: the data dir is a mounted volume that may hold entries of its
    /// own (lost+found); only a member's data (<c>DATA_DIR/member</c>) is refused then, instead of any entry.
    /// </summary>
    /// <exception cref="SnapshotRestoreException">The file or the data dir cannot be used; the message says why and what to do.</exception>
    public static Result Restore(string file, MemberConfig config, bool skipHashCheck, bool onVolume = false)
    {
        var memberDir = Path.Combine(config.DataDir, "member");
        if (onVolume ? Directory.Exists(memberDir) : Directory.Exists(config.DataDir) && Directory.EnumerateFileSystemEntries(config.DataDir).Any())
        {
            throw new SnapshotRestoreException($"data-dir \"{config.DataDir}\" exists and is not empty: restore into a new directory (a member's data is never overwritten)");
        }

        if (config.WalDir is { } walDirGiven && Directory.Exists(walDirGiven) && Directory.EnumerateFileSystemEntries(walDirGiven).Any())
        {
            throw new SnapshotRestoreException($"wal-dir \"{walDirGiven}\" exists and is not empty: restore into a new directory (a member's data is never overwritten)");
        }

        var members = MemberHost.InitialMembersOf(config);
        var self = members.Single(m => m.Name == config.Name);
        var clusterId = MemberIds.ComputeClusterId(members.Select(m => m.Id));
        var created = !Directory.Exists(config.DataDir);
        var walCreated = config.WalDir is not null && !Directory.Exists(config.WalDir);
        var staging = Path.Combine(config.DataDir, ".restoring");
        try
        {
            TryDelete(staging); // left by a restore that was cut short
            var snapDir = Path.Combine(staging, "member", "snap");
            Directory.CreateDirectory(snapDir);
            var db = Path.Combine(snapDir, "db");
            CopyVerified(file, db, skipHashCheck);
            try
            {
                // The store stands for the new cluster's snapshot at its founding entries (index n, term 1).
                MvccStore.SetPosition(db, (ulong)members.Count, 1);
            }
            catch (InvalidDataException e)
            {
                throw new SnapshotRestoreException(
                    $"{file} is not a snapshot of a raftkv member ({e.Message}); raftkv stores data in LMDB, so a snapshot of etcd (bbolt) cannot be restored here: copy an etcd cluster's keys with 'etcdctl make-mirror' instead", e);
            }

            long revision;
            using (var store = MvccStore.Open(db))
            {
                revision = store.CurrentRevision;
            }

            // The WAL founds the member: written last where it can be (inside the member directory, moved into place whole),
            // and with --wal-dir (maybe another disk, where a move cannot go) right after the store is in place.
            if (config.WalDir is null)
            {
                WriteFoundingLog(staging, null, clusterId, self.Id, members);
            }

            Directory.Move(Path.Combine(staging, "member"), memberDir);
            Wal.OsFileSystem.Instance.SyncDirectory(config.DataDir);
            Directory.Delete(staging, recursive: true);
            if (config.WalDir is not null)
            {
                WriteFoundingLog(config.DataDir, config.WalDir, clusterId, self.Id, members);
            }

            return new Result(clusterId, self.Id, revision);
        }
        catch
        {
            TryDelete(staging);
            if (walCreated)
            {
                TryDelete(config.WalDir!);
            }

            if (created)
            {
                TryDelete(config.DataDir);
            }

            throw;
        }
    }

    /// <summary>
    /// The new cluster's first entries, one per member with its name and URLs, committed in term 1, and a Raft snapshot at
    /// the last of them (what the store stands for): the log starts after it, so a member that joins later is sent the
    /// store as a snapshot instead of entries that never held the restored keys.
    /// </summary>
    private static void WriteFoundingLog(string dataDir, string? walDir, ulong clusterId, ulong memberId, List<Member> members)
    {
        using var log = DurableMemberLog.Open(dataDir, clusterId, memberId, _ => { }, new DiskFaults(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
            walDir: walDir);
        var ordered = members.OrderBy(m => m.Id).ToList();
        var changes = ordered
            .Select(m => new ConfChange(ConfChangeType.AddNode, m.Id, new ConfChangeContext { Member = m }.ToByteArray()))
            .ToList();
        var index = (ulong)changes.Count;
        log.SaveAsync(RaftNode.BootstrapEntries(changes), new HardState(1, 0, index), CancellationToken.None).GetAwaiter().GetResult();
        var membership = new Membership(clusterId);
        foreach (var member in ordered)
        {
            membership.Upsert(member, index);
        }

        var state = new StateSnapshot { Membership = membership.ToState() }.ToByteArray();
        log.CreateSnapshotAsync(index, new ConfState(ordered.Select(m => m.Id)), state, catchUpEntries: 0, CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>
    /// Copies the snapshot into place, checking the SHA-256 that <c>etcdctl snapshot save</c> appends (the store's size is a
    /// multiple of 512 bytes, so a file 32 bytes past one carries it), and leaves the hash off.
    /// </summary>
    private static void CopyVerified(string file, string destination, bool skipHashCheck)
    {
        if (!File.Exists(file))
        {
            throw new SnapshotRestoreException($"snapshot file {file} does not exist");
        }

        var length = new FileInfo(file).Length;
        var hasHash = length % 512 == SHA256.HashSizeInBytes;
        if (!hasHash && !skipHashCheck)
        {
            throw new SnapshotRestoreException($"snapshot {file} has no SHA-256 at its end (it was not written by 'etcdctl snapshot save'); "
                + $"to restore a copied store file anyway, add --{SkipHashCheckFlag}");
        }

        var body = hasHash ? length - SHA256.HashSizeInBytes : length;
        using var source = File.OpenRead(file);
        using (var target = new FileStream(destination, FileMode.CreateNew, FileAccess.Write))
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 20];
            var left = body;
            while (left > 0)
            {
                var read = source.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (read == 0)
                {
                    throw new SnapshotRestoreException($"snapshot {file} ended early");
                }

                sha.AppendData(buffer, 0, read);
                target.Write(buffer, 0, read);
                left -= read;
            }

            target.Flush(flushToDisk: true);
            if (hasHash)
            {
                var expected = new byte[SHA256.HashSizeInBytes];
                source.ReadExactly(expected);
                var actual = sha.GetHashAndReset();
                if (!skipHashCheck && !actual.AsSpan().SequenceEqual(expected))
                {
                    throw new SnapshotRestoreException($"snapshot {file} is damaged: expected sha256 {Convert.ToHexStringLower(expected)}, got {Convert.ToHexStringLower(actual)}");
                }
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: the error that got us here is the one to report
        }
    }
}

/// <summary>A snapshot restore that cannot go ahead; the message says why and what to do.</summary>
internal sealed class SnapshotRestoreException(string message, Exception? inner = null) : Exception(message, inner);
