using System.Net;
using RaftKv.Raft;
using RaftKv.Server.Peers;

namespace RaftKv.Server.Tests.Peers;

public sealed class HostsFileResolverTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("raftkv-hosts-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string HostsFile(string text)
    {
        var path = Path.Combine(_dir, "hosts");
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true); // replaced by rename, as localkube does
        return path;
    }

    [Fact]
    public void Parses_hosts_format_with_comments_aliases_and_case()
    {
        var names = HostsFileResolver.Parse(
            "# written by a test\n127.0.0.2 demo-0.demo-peers.default.svc.cluster.local demo-0.demo-peers.default.svc\n" +
            "\n  127.0.0.3\tDemo-1.Demo-Peers.default.svc.cluster.local.  # trailing dot and comment\nnot-an-address name\n" +
            "::1 six\n127.0.0.4 demo-0.demo-peers.default.svc.cluster.local\r\n");

        Assert.Equal([IPAddress.Parse("127.0.0.2"), IPAddress.Parse("127.0.0.4")], names["demo-0.demo-peers.default.svc.cluster.local"]);
        Assert.Equal([IPAddress.Parse("127.0.0.2")], names["demo-0.demo-peers.default.svc"]);
        Assert.Equal([IPAddress.Parse("127.0.0.3")], names["demo-1.demo-peers.default.svc.cluster.local"]);
        Assert.Equal([IPAddress.IPv6Loopback], names["six"]);
        Assert.False(names.ContainsKey("name"));
    }

    [Fact]
    public void The_generic_variable_wins_over_the_local_control_planes()
    {
        Assert.Null(HostsFileResolver.FromEnvironment(new Dictionary<string, string>()).Path);
        Assert.Equal("/b", HostsFileResolver.FromEnvironment(new Dictionary<string, string> { [HostsFileResolver.LocalKubeVariable] = "/b" }).Path);
        Assert.Equal("/a", HostsFileResolver.FromEnvironment(new Dictionary<string, string>
        {
            [HostsFileResolver.Variable] = "/a",
            [HostsFileResolver.LocalKubeVariable] = "/b",
        }).Path);
    }

    [Fact]
    public async Task Names_from_the_file_then_dns_and_a_changed_file_is_read_again()
    {
        var resolver = new HostsFileResolver(HostsFile("127.0.0.7 peer.example.test\n"));
        Assert.Equal([IPAddress.Parse("127.0.0.7")], await resolver.ResolveAsync("peer.example.test", CancellationToken.None));
        Assert.Equal([IPAddress.Parse("127.0.0.9")], await resolver.ResolveAsync("127.0.0.9", CancellationToken.None));
        Assert.Contains(await resolver.ResolveAsync("localhost", CancellationToken.None), IPAddress.IsLoopback);

        HostsFile("127.0.0.8 peer.example.test\n"); // same length: noticed by time stamp or within a second
        await Eventually.TrueAsync(
            () => resolver.Lookup("peer.example.test") is [var a] && a.Equals(IPAddress.Parse("127.0.0.8")),
            () => string.Join(",", resolver.Lookup("peer.example.test") ?? []));

        File.Delete(resolver.Path!);
        await Eventually.TrueAsync(() => resolver.Lookup("peer.example.test") is null, () => "still resolved after the file was deleted");
    }

    [Fact]
    public async Task Without_a_file_there_is_no_lookup()
    {
        var resolver = new HostsFileResolver(null);
        Assert.Null(resolver.Lookup("peer.example.test"));
        Assert.Contains(await resolver.ResolveAsync("localhost", CancellationToken.None), IPAddress.IsLoopback);
    }

    [Fact]
    public async Task The_peer_transport_reaches_a_peer_by_a_name_only_the_hosts_file_knows_and_follows_it_when_it_moves()
    {
        var resolver = new HostsFileResolver(HostsFile("127.0.0.1 member-b.peers.test.invalid\n"));
        await using var a = await TestPeer.StartAsync(1, names: resolver);
        await using var b = await TestPeer.StartAsync(2);
        a.Transport.AddOrUpdatePeer(2, [new Uri($"http://member-b.peers.test.invalid:{b.Port}")]);

        a.Transport.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2, Term = 1, Commit = 1 }]);
        await Eventually.TrueAsync(() => b.Received.Count == 1, b.Describe);

        // The name moves to another address on which b also listens: a new connection goes there.
        await using var c = await TestPeer.StartAsync(2, address: IPAddress.Parse("127.0.0.2"), port: b.Port);
        HostsFile("127.0.0.2 member-b.peers.test.invalid\n");
        await b.StopServingAsync();
        // Sent again on every poll, as a leader's heartbeats are: one sent while the old connection is still closing can be
        // written into it and lost (Raft tolerates that; a single send made this test fail on a busy machine).
        await Eventually.TrueAsync(() =>
        {
            a.Transport.Send([new Message { Type = MessageType.MsgHeartbeat, From = 1, To = 2, Term = 1, Commit = 2 }]);
            return c.Received.Any(m => m.Commit == 2);
        }, c.Describe, TimeSpan.FromSeconds(30));
    }
}
