using Google.Protobuf;
using Wire = RaftKv.Protocol.Peer;

namespace RaftKv.Server.Peers;

/// <summary>Converts Raft messages to the peer wire format and back. A MsgSnap's image travels separately (chunks).</summary>
internal static class PeerCodec
{
    public static Wire.Message Encode(Raft.Message m)
    {
        var w = new Wire.Message
        {
            Type = (uint)m.Type,
            To = m.To,
            From = m.From,
            Term = m.Term,
            LogTerm = m.LogTerm,
            Index = m.Index,
            Commit = m.Commit,
            Reject = m.Reject,
            RejectHint = m.RejectHint,
            Context = m.Context.IsEmpty ? ByteString.Empty : ByteString.CopyFrom(m.Context.Span),
        };
        foreach (var e in m.Entries)
        {
            w.Entries.Add(new Wire.Entry
            {
                Index = e.Index,
                Term = e.Term,
                Type = (Wire.EntryType)e.Type,
                Data = e.Data.IsEmpty ? ByteString.Empty : ByteString.CopyFrom(e.Data.Span),
            });
        }

        if (m.Snapshot is { } snap)
        {
            w.SnapshotMetadata = Encode(snap.Metadata);
        }

        return w;
    }

    public static Wire.SnapshotMetadata Encode(Raft.SnapshotMetadata meta)
    {
        var w = new Wire.SnapshotMetadata { Index = meta.Index, Term = meta.Term, ConfState = new Wire.ConfState() };
        w.ConfState.Voters.AddRange(meta.ConfState.Voters);
        w.ConfState.Learners.AddRange(meta.ConfState.Learners);
        return w;
    }

    /// <summary>Decodes a wire message; <paramref name="snapshotData"/> is the image of a MsgSnap (ignored otherwise).</summary>
    /// <exception cref="InvalidDataException">Unknown or local message type, or a MsgSnap without metadata.</exception>
    public static Raft.Message Decode(Wire.Message w, ReadOnlyMemory<byte> snapshotData = default)
    {
        if (w.Type > int.MaxValue || !Enum.IsDefined((Raft.MessageType)w.Type))
        {
            throw new InvalidDataException($"Unknown Raft message type {w.Type} from member {w.From:x}.");
        }

        var type = (Raft.MessageType)w.Type;
        var entries = new Raft.Entry[w.Entries.Count];
        for (var i = 0; i < entries.Length; i++)
        {
            var e = w.Entries[i];
            entries[i] = new Raft.Entry(e.Index, e.Term, (Raft.EntryType)e.Type, e.Data.Memory);
        }

        Raft.Snapshot? snapshot = null;
        if (type == Raft.MessageType.MsgSnap)
        {
            if (w.SnapshotMetadata is null)
            {
                throw new InvalidDataException($"MsgSnap from member {w.From:x} carries no snapshot metadata.");
            }

            snapshot = new Raft.Snapshot(Decode(w.SnapshotMetadata), snapshotData);
        }

        var message = new Raft.Message
        {
            Type = type,
            To = w.To,
            From = w.From,
            Term = w.Term,
            LogTerm = w.LogTerm,
            Index = w.Index,
            Entries = entries,
            Commit = w.Commit,
            Snapshot = snapshot,
            Reject = w.Reject,
            RejectHint = w.RejectHint,
            Context = w.Context.Memory,
        };
        if (message.IsLocal)
        {
            throw new InvalidDataException($"Local Raft message type {type} must not arrive from the network (from member {w.From:x}).");
        }

        return message;
    }

    public static Raft.SnapshotMetadata Decode(Wire.SnapshotMetadata w) =>
        new(w.Index, w.Term, new Raft.ConfState(w.ConfState?.Voters ?? [], w.ConfState?.Learners));
}
