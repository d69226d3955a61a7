using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using LocalKube.Runtime;
using Xunit.Abstractions;

namespace LocalKube.Tests;

/// <summary>The relay behind ClusterIPs and pod links, on loopback sockets.</summary>
public sealed class TcpRelayTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_delay_is_added_to_each_chunk_once_not_once_per_chunk_queued_ahead_of_it()
    {
        const int chunks = 20;
        const int chunkSize = 64 * 1024;
        var delay = TimeSpan.FromMilliseconds(200);

        using var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start();
        await using var relay = new TcpRelay(new IPEndPoint(IPAddress.Loopback, 0), () => (IPEndPoint)sink.LocalEndpoint, () => new LinkFaults(delay, 0, false), new Random(7));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var clock = Stopwatch.StartNew();

        // The receiving side records when each read arrived and what it held.
        var receiving = Task.Run(async () =>
        {
            using var accepted = await sink.AcceptTcpClientAsync(timeout.Token);
            var stream = accepted.GetStream();
            var received = new MemoryStream();
            var firstAt = TimeSpan.Zero;
            var buffer = new byte[chunkSize];
            int n;
            while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                if (received.Length == 0)
                {
                    firstAt = clock.Elapsed;
                }

                received.Write(buffer, 0, n);
            }

            return (Bytes: received.ToArray(), FirstAt: firstAt, LastAt: clock.Elapsed);
        });

        // N chunks sent together, chunk i made of the byte i; then the sending side closes.
        using var client = new TcpClient();
        await client.ConnectAsync(relay.Endpoint, timeout.Token);
        var sentAt = clock.Elapsed;
        for (var i = 0; i < chunks; i++)
        {
            await client.GetStream().WriteAsync(Enumerable.Repeat((byte)i, chunkSize).ToArray(), timeout.Token);
        }

        client.Client.Shutdown(SocketShutdown.Send);
        var (bytes, firstAt, lastAt) = await receiving;

        var seen = FormattableString.Invariant($"{bytes.Length} bytes; first arrived {(firstAt - sentAt).TotalMilliseconds:0} ms after sending, the last {(lastAt - sentAt).TotalMilliseconds:0} ms after (delay {delay.TotalMilliseconds:0} ms, {chunks} chunks: {chunks} x delay = {(chunks * delay).TotalMilliseconds:0} ms)");
        output.WriteLine(seen);
        Assert.True(bytes.Length == chunks * chunkSize, seen);
        var outOfOrder = Enumerable.Range(0, bytes.Length).FirstOrDefault(k => bytes[k] != (byte)(k / chunkSize), -1);
        Assert.True(outOfOrder < 0, $"byte {outOfOrder} is {bytes[Math.Max(outOfOrder, 0)]}, expected {outOfOrder / chunkSize}: chunks out of order; {seen}");

        // The delay is applied (nothing arrives sooner), and chunks wait out their delays side by side, not one after another.
        Assert.True(firstAt - sentAt >= delay - TimeSpan.FromMilliseconds(20), $"arrived before the delay: {seen}");
        Assert.True(lastAt - sentAt < chunks * delay / 2, $"chunks delayed one after another: {seen}");
    }

    [Fact]
    public async Task Without_faults_bytes_pass_both_ways_and_a_close_reaches_the_other_side()
    {
        using var server = new TcpListener(IPAddress.Loopback, 0);
        server.Start();
        await using var relay = new TcpRelay(new IPEndPoint(IPAddress.Loopback, 0), () => (IPEndPoint)server.LocalEndpoint, () => LinkFaults.None, new Random(7));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var echo = Task.Run(async () =>
        {
            using var accepted = await server.AcceptTcpClientAsync(timeout.Token);
            var stream = accepted.GetStream();
            var buffer = new byte[1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                await stream.WriteAsync(buffer.AsMemory(0, n), timeout.Token);
            }
        });

        using var client = new TcpClient();
        await client.ConnectAsync(relay.Endpoint, timeout.Token);
        var stream = client.GetStream();
        for (var i = 0; i < 50; i++)
        {
            var message = System.Text.Encoding.ASCII.GetBytes(i.ToString(CultureInfo.InvariantCulture).PadLeft(4, '0'));
            await stream.WriteAsync(message, timeout.Token);
            var answer = new byte[4];
            await stream.ReadExactlyAsync(answer, timeout.Token);
            Assert.Equal(message, answer);
        }

        client.Client.Shutdown(SocketShutdown.Send);
        await echo;
        Assert.Equal(0, await stream.ReadAsync(new byte[1], timeout.Token));
    }
}
