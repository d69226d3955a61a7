using System.Globalization;
using System.Security.Cryptography;
using Grpc.Core;
using RaftKv.Raft;
using RaftKv.Storage.Wal;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>
/// The receiving side of <see cref="SnapshotSender"/>: writes the image to a temporary file in the snapshot directory while
/// hashing it, checks length and SHA-256, makes it durable and renames it to <c>%016x.snap.db</c> (the snapshot index, etcd's
/// name). Only then is the MsgSnap handed on; the member installs the file when its Raft node accepts the snapshot.
/// A stream that ends early, exceeds its announced size or fails its checksum leaves no file behind.
/// </summary>
internal static class SnapshotReceiver
{
    /// <summary>Path of the received store image for the snapshot at <paramref name="index"/>.</summary>
    public static string ImagePath(string directory, ulong index) =>
        Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"{index:x16}.snap.db"));

    /// <summary>Reads one snapshot stream; <paramref name="checkFirst"/> vets the first chunk (cluster, addressee) and throws to refuse.</summary>
    /// <returns>The MsgSnap (its snapshot carries metadata and the Raft snapshot data) and the image size.</returns>
    public static async Task<(Message Message, ulong Bytes)> ReceiveAsync(IAsyncStreamReader<Wire.SnapshotChunk> stream, Action<Wire.SnapshotChunk> checkFirst,
        string? directory, CancellationToken cancellationToken)
    {
        Message? message = null;
        string? part = null;
        FileStream? file = null;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        ulong total = 0, received = 0;
        byte[]? checksum = null;
        try
        {
            await foreach (var chunk in stream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (message is null)
                {
                    checkFirst(chunk);
                    if (chunk.Message is null || chunk.Message.Type != (uint)MessageType.MsgSnap || chunk.Message.SnapshotMetadata is null)
                    {
                        throw Invalid("the first snapshot chunk must carry the MsgSnap with its metadata");
                    }

                    try
                    {
                        message = PeerCodec.Decode(chunk.Message, chunk.State.Memory);
                    }
                    catch (InvalidDataException e)
                    {
                        throw Invalid(e.Message);
                    }

                    total = chunk.TotalBytes;
                    if (total > 0)
                    {
                        if (directory is null)
                        {
                            throw Invalid("this member does not accept snapshot images");
                        }

                        Directory.CreateDirectory(directory);
                        part = ImagePath(directory, message.Snapshot!.Metadata.Index) + "." + Guid.NewGuid().ToString("N") + ".part";
                        file = new FileStream(part, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                    }
                }
                else if (checksum is not null)
                {
                    throw Invalid("snapshot chunk after the checksum");
                }

                if (chunk.Data.Length > 0)
                {
                    received += (ulong)chunk.Data.Length;
                    if (received > total || file is null)
                    {
                        throw Invalid($"snapshot chunks exceed the announced {total} bytes");
                    }

                    sha.AppendData(chunk.Data.Span);
                    await file.WriteAsync(chunk.Data.Memory, cancellationToken).ConfigureAwait(false);
                }

                if (chunk.Sha256.Length > 0)
                {
                    checksum = chunk.Sha256.ToByteArray();
                }
            }

            if (message is null)
            {
                throw Invalid("empty snapshot stream");
            }

            if (checksum is null || received != total)
            {
                throw new RpcException(new Status(StatusCode.DataLoss,
                    $"snapshot stream ended after {received} of {total} bytes{(checksum is null ? " without its checksum" : "")}"));
            }

            var actual = sha.GetHashAndReset();
            if (!CryptographicOperations.FixedTimeEquals(actual, checksum))
            {
                throw new RpcException(new Status(StatusCode.DataLoss,
                    $"snapshot image checksum mismatch: sent sha256 {Convert.ToHexStringLower(checksum)}, received {Convert.ToHexStringLower(actual)}"));
            }

            if (file is not null)
            {
                file.Flush(flushToDisk: true);
                await file.DisposeAsync().ConfigureAwait(false);
                file = null;
                File.Move(part!, ImagePath(directory!, message.Snapshot!.Metadata.Index), overwrite: true);
                part = null;
                OsFileSystem.Instance.SyncDirectory(directory!);
            }

            return (message, received);
        }
        finally
        {
            if (file is not null)
            {
                await file.DisposeAsync().ConfigureAwait(false);
            }

            if (part is not null)
            {
                File.Delete(part);
            }
        }
    }

    private static RpcException Invalid(string detail) => new(new Status(StatusCode.InvalidArgument, detail));
}
