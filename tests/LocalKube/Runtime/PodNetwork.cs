using System.Globalization;
using System.Text;

namespace LocalKube.Runtime;

/// <summary>Pod addresses and names. Each pod gets its own loopback address in 127.BLOCK.0.0/16 (BLOCK derived from
/// the API server's port, so two control planes on one machine do not share addresses; third octet below 128,
/// link addresses of <see cref="PodLinks"/> use the rest), stable for its
/// namespace and name (a StatefulSet pod keeps its address across restarts and re-creation). Names are published
/// in a hosts file (<c>ROOT/hosts</c>): <c>HOSTNAME.SUBDOMAIN.NS.svc.cluster.local</c> for pods with a subdomain
/// and <c>SERVICE.NS.svc.cluster.local</c> for Services with a ClusterIP. Processes find it in the environment
/// variable <c>LOCALKUBE_HOSTS_FILE</c>.</summary>
internal sealed class PodNetwork(string root, int block)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _addresses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
    private string _hosts = "";

    public string HostsFile => Path.Combine(root, "hosts");

    public string AddressOf(string ns, string name)
    {
        lock (_lock)
        {
            var key = $"{ns}/{name}";
            if (!_addresses.TryGetValue(key, out var ip))
            {
                var n = _addresses.Count + 2;
                ip = string.Create(CultureInfo.InvariantCulture, $"127.{block}.{n / 250}.{n % 250 + 1}");
                _addresses[key] = ip;
            }

            return ip;
        }
    }

    /// <summary>The address of the link from pod <paramref name="from"/> to pod <paramref name="to"/> (keys NS/NAME):
    /// 127.BLOCK.128+.x, stable for the pair.</summary>
    public string LinkAddressOf(string from, string to)
    {
        lock (_lock)
        {
            var key = $"{from}>{to}";
            if (!_links.TryGetValue(key, out var ip))
            {
                var n = _links.Count;
                ip = string.Create(CultureInfo.InvariantCulture, $"127.{block}.{128 + (n / 250)}.{(n % 250) + 1}");
                _links[key] = ip;
            }

            return ip;
        }
    }

    /// <summary>Rewrites the hosts file when its content changes.</summary>
    public void Publish(IEnumerable<(string Address, string Name)> entries)
    {
        var sb = new StringBuilder("# written by localkube: pod and service names of the local cluster\n");
        foreach (var (address, name) in entries.OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            sb.Append(address).Append(' ').Append(name).Append('\n');
        }

        var text = sb.ToString();
        lock (_lock)
        {
            if (text == _hosts)
            {
                return;
            }

            _hosts = text;
            Directory.CreateDirectory(root);
            var temp = HostsFile + ".tmp";
            File.WriteAllText(temp, text);
            File.Move(temp, HostsFile, overwrite: true);
        }
    }
}
