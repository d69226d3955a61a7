using System.Buffers;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace RaftKv.Server.Node;

/// <summary>
/// Lets one cleartext port serve both HTTP/1.1 (curl, Kubernetes probes: /health, /metrics) and HTTP/2 with prior
/// knowledge (gRPC clients such as etcdctl), as etcd's client port does. Kestrel only picks HTTP/2 on a mixed endpoint
/// when ALPN said "h2"; this connection middleware peeks at the first bytes and, when they are the HTTP/2 connection
/// preface, marks the connection as if ALPN had negotiated h2. Nothing is consumed from the stream.
/// </summary>
internal static class CleartextHttp2Detection
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
    private static readonly byte[] H2 = "h2"u8.ToArray();

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        if (await StartsWithPrefaceAsync(connection).ConfigureAwait(false))
        {
            connection.Features.Set<ITlsConnectionFeature>(new PriorKnowledge());
            connection.Features.Set<ITlsApplicationProtocolFeature>(new PriorKnowledge());
        }

        await next(connection).ConfigureAwait(false);
    };

    private static async Task<bool> StartsWithPrefaceAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
            var buffer = result.Buffer;
            var length = (int)Math.Min(buffer.Length, Preface.Length);
            var head = buffer.Slice(0, length).ToArray();
            var matches = head.AsSpan().SequenceEqual(Preface.AsSpan(0, length));
            if (!matches || length == Preface.Length || result.IsCompleted)
            {
                input.AdvanceTo(buffer.Start); // consume nothing
                return matches && length == Preface.Length;
            }

            input.AdvanceTo(buffer.Start, buffer.End); // need more bytes
        }
    }

    /// <summary>Stands for "the client chose h2"; there is no certificate (the connection is cleartext).</summary>
    private sealed class PriorKnowledge : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public X509Certificate2? ClientCertificate { get; set; }

        public ReadOnlyMemory<byte> ApplicationProtocol => H2;

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
    }
}
