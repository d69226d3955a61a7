using System.Net;
using System.Net.Sockets;
using Grpc.Net.Client;

namespace RaftKv.Server.Peers;

/// <summary>
/// Resolves host names of outgoing connections (peer streams, member fetches at start-up, forwarded promotes)
/// through an extra hosts-format file before DNS. A platform that cannot change the system resolver publishes
/// the cluster's stable names in such a file: the local control plane (tests/LocalKube) writes one per pod and
/// names it in <c>LOCALKUBE_HOSTS_FILE</c>. The file is named by <see cref="Variable"/> (else
/// <see cref="LocalKubeVariable"/>); without either, names go to DNS as usual. Names move (a pod's relay address
/// changes with a network fault), so the file is read again when its size or modification time changes, and at
/// most a second after the last read in any case (a rename within one timestamp tick); a connection already open
/// stays where it is.
/// <para>Format: as <c>/etc/hosts</c>: an address, then one or more names, separated by blanks; <c>#</c> starts a
/// comment. Names compare case-insensitively and a trailing dot is ignored; a name on several lines gets their
/// addresses in file order, tried in that order.</para>
/// </summary>
internal sealed class HostsFileResolver
{
    /// <summary>Environment variable with the path of the hosts file raftkv consults before DNS.</summary>
    public const string Variable = "RAFTKV_HOSTS_FILE";

    /// <summary>The local control plane's variable, used when <see cref="Variable"/> is not set.</summary>
    public const string LocalKubeVariable = "LOCALKUBE_HOSTS_FILE";

    private static readonly Lazy<HostsFileResolver> ProcessWide = new(() => FromEnvironment(Cli.ProcessEnvironment()));

    private readonly Lock _lock = new();
    private (DateTime Modified, long Length)? _stamp;
    private long _readAt = -1_000_000; // Environment.TickCount64 of the last read; this forces the first
    private Dictionary<string, IPAddress[]> _names = new(StringComparer.OrdinalIgnoreCase);

    public HostsFileResolver(string? path) => Path = string.IsNullOrWhiteSpace(path) ? null : path;

    /// <summary>The resolver this process uses, configured from its environment once.</summary>
    public static HostsFileResolver Process => ProcessWide.Value;

    /// <summary>The hosts file consulted, or null for DNS only.</summary>
    public string? Path { get; }

    public static HostsFileResolver FromEnvironment(IReadOnlyDictionary<string, string> environment)
    {
        var path = environment.TryGetValue(Variable, out var own) && !string.IsNullOrWhiteSpace(own) ? own
            : environment.TryGetValue(LocalKubeVariable, out var localKube) ? localKube
            : null;
        return new HostsFileResolver(path);
    }

    /// <summary>The addresses the hosts file gives <paramref name="host"/>, or null when it does not name it (or there is no file).</summary>
    public IPAddress[]? Lookup(string host)
    {
        if (Path is null)
        {
            return null;
        }

        var names = Current();
        return names.TryGetValue(host.TrimEnd('.'), out var addresses) ? addresses : null;
    }

    /// <summary>IP literals as they are, then the hosts file, then DNS.</summary>
    public async ValueTask<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal))
        {
            return [literal];
        }

        return Lookup(host) ?? await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A <see cref="SocketsHttpHandler.ConnectCallback"/>: resolves with <see cref="ResolveAsync"/> and
    /// connects to the first address that accepts.</summary>
    public ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken) =>
        ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken);

    /// <summary>A TCP connection (no delay) to <paramref name="host"/>, resolved with <see cref="ResolveAsync"/>, at the
    /// first address that accepts.</summary>
    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(host, cancellationToken).ConfigureAwait(false);
        SocketException? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw last ?? new SocketException((int)SocketError.HostNotFound);
    }

    /// <summary>A gRPC channel for a short call (start-up member fetch, forwarded promote) that resolves through this file.</summary>
    /// <remarks>An https:// URL is called with <paramref name="tls"/> (this member's certificate, the trusted CA).</remarks>
    public GrpcChannel Channel(string url, MemberTls? tls) =>
        GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = ConnectAsync,
                SslOptions = MemberTls.ForUrl(tls, new Uri(url)),
            },
        });

    private Dictionary<string, IPAddress[]> Current()
    {
        (DateTime, long)? stamp;
        try
        {
            var info = new FileInfo(Path!);
            stamp = info.Exists ? (info.LastWriteTimeUtc, info.Length) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stamp = null;
        }

        lock (_lock)
        {
            var now = Environment.TickCount64;
            if (stamp == _stamp && now - _readAt < 1000)
            {
                return _names;
            }

            string text;
            try
            {
                text = stamp is null ? "" : File.ReadAllText(Path!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Being replaced right now, or unreadable: keep what we had and try again on the next connect.
                return _names;
            }

            _names = Parse(text);
            _stamp = stamp;
            _readAt = now;
            return _names;
        }
    }

    /// <summary>Parses hosts-format text; lines that do not start with an IP address are skipped.</summary>
    public static Dictionary<string, IPAddress[]> Parse(string text)
    {
        var names = new Dictionary<string, List<IPAddress>>(StringComparer.OrdinalIgnoreCase);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#', 2)[0];
            var fields = line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !IPAddress.TryParse(fields[0], out var address))
            {
                continue;
            }

            foreach (var name in fields.Skip(1))
            {
                var key = name.TrimEnd('.');
                if (!names.TryGetValue(key, out var list))
                {
                    names[key] = list = [];
                }

                if (!list.Contains(address))
                {
                    list.Add(address);
                }
            }
        }

        return names.ToDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.OrdinalIgnoreCase);
    }
}
