using System.Security.Cryptography;
using Google.Protobuf;
using RaftKv.Raft;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>
/// The state machine image that travels with a MsgSnap: a file (a consistent copy of the store) and what to do once the send
/// has ended either way (the owner deletes the file).
/// </summary>
internal sealed record SnapshotImage(string Path, Action Release);

/// <summary>
/// Sends one snapshot on its own <c>SendSnapshot</c> call, apart from the message stream: the first chunk carries the MsgSnap
/// (metadata) and the Raft snapshot's own data (membership), the following ones the image file in pieces of
/// <see cref="PeerTransportOptions.SnapshotChunkBytes"/>, the last one the SHA-256 of the image.
/// </summary>
internal static class SnapshotSender
{
    /// <summary>Streams the snapshot and waits for the receiver's answer (given once its node has the message); returns the image bytes sent.</summary>
    public static async Task<ulong> SendAsync(Wire.Peer.PeerClient client, PeerTransportOptions options, ulong to, Message message, string? imagePath,
        CancellationToken cancellationToken)
    {
        using var call = client.SendSnapshot(cancellationToken: cancellationToken);
        await using var image = imagePath is null
            ? Stream.Null
            : new FileStream(imagePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var total = (ulong)image.Length;
        var buffer = new byte[Math.Max(4096, options.SnapshotChunkBytes)];
        Wire.SnapshotChunk? chunk = new()
        {
            ClusterId = options.ClusterId,
            From = options.MemberId,
            To = to,
            Message = PeerCodec.Encode(message),
            State = ByteString.CopyFrom(message.Snapshot is { } s ? s.Data.Span : default),
            TotalBytes = total,
        };
        ulong sent = 0;
        while (true)
        {
            var n = await image.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            chunk ??= new Wire.SnapshotChunk();
            if (n > 0)
            {
                sha.AppendData(buffer, 0, n);
                chunk.Data = ByteString.CopyFrom(buffer, 0, n);
                sent += (ulong)n;
            }

            if (n < buffer.Length)
            {
                chunk.Sha256 = ByteString.CopyFrom(sha.GetHashAndReset());
                await call.RequestStream.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
                break;
            }

            await call.RequestStream.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
            chunk = null;
        }

        if (sent != total)
        {
            throw new IOException($"snapshot image '{imagePath}' changed while it was sent ({sent} of {total} bytes)");
        }

        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
        await call.ResponseAsync.ConfigureAwait(false);
        return sent;
    }
}
