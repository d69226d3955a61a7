using RaftKv.Raft;
using RaftKv.Server.Peers;

namespace RaftKv.Server.Tests.Peers;

public sealed class PeerCodecTests
{
    [Fact]
    public void Every_field_of_an_append_survives_the_wire()
    {
        var m = new Message
        {
            Type = MessageType.MsgApp,
            To = 2,
            From = 1,
            Term = 7,
            LogTerm = 6,
            Index = 41,
            Commit = 40,
            Entries = [Entry.Normal(42, 7, "a"u8.ToArray()), new Entry(43, 7, EntryType.ConfChange, new byte[] { 1, 2 })],
            Reject = true,
            RejectHint = 9,
            Context = "ctx"u8.ToArray(),
        };

        var back = PeerCodec.Decode(PeerCodec.Encode(m));

        Assert.Equal(m.ToString(), back.ToString());
        Assert.Equal(m.Entries.Select(e => (e.Index, e.Term, e.Type, Convert.ToHexString(e.Data.Span))),
            back.Entries.Select(e => (e.Index, e.Term, e.Type, Convert.ToHexString(e.Data.Span))));
        Assert.Equal("ctx", System.Text.Encoding.UTF8.GetString(back.Context.Span));
        Assert.Equal((m.Reject, m.RejectHint, m.LogTerm), (back.Reject, back.RejectHint, back.LogTerm));
    }

    [Fact]
    public void A_snapshot_message_gets_its_image_back_with_metadata_and_membership()
    {
        var snap = new Snapshot(new SnapshotMetadata(100, 5, new ConfState([1, 2, 3], [4])), new byte[] { 9, 9 });
        var m = new Message { Type = MessageType.MsgSnap, To = 2, From = 1, Term = 5, Snapshot = snap };

        var back = PeerCodec.Decode(PeerCodec.Encode(m), snap.Data);

        Assert.NotNull(back.Snapshot);
        Assert.Equal(snap.Metadata, back.Snapshot.Metadata);
        Assert.Equal(new byte[] { 9, 9 }, back.Snapshot.Data.ToArray());
    }

    [Fact]
    public void Local_and_unknown_message_types_are_refused()
    {
        var local = PeerCodec.Encode(new Message { Type = MessageType.MsgHup, From = 3 });
        var unknown = PeerCodec.Encode(new Message { Type = MessageType.MsgApp, From = 3 });
        unknown.Type = 99;

        Assert.Contains("Local", Assert.Throws<InvalidDataException>(() => PeerCodec.Decode(local)).Message, StringComparison.Ordinal);
        Assert.Contains("Unknown", Assert.Throws<InvalidDataException>(() => PeerCodec.Decode(unknown)).Message, StringComparison.Ordinal);
    }
}
