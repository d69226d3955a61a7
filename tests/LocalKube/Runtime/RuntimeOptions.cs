namespace LocalKube.Runtime;

/// <summary>Settings of the pod runtime.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Directory for pod logs, volumes and the hosts file.</summary>
    public required string Root { get; init; }

    /// <summary>Image name → local program. Keys match the whole image, the image without its tag, or its last path
    /// segment without tag ("ghcr.io/raftkv/raftkv:0.1" matches "raftkv"). The image <c>localkube/testpod</c> is always
    /// available: a small HTTP server for tests (see <c>localkube testpod --help</c>).</summary>
    public IReadOnlyDictionary<string, string> Images { get; init; } = new Dictionary<string, string>();

    public int NodeCount { get; init; } = 3;

    public IReadOnlyList<string> Zones { get; init; } = ["zone-a", "zone-b", "zone-c"];

    /// <summary>Upper bound of the restart back-off (kubelet's is 5 minutes; shorter suits tests).</summary>
    public TimeSpan MaxRestartBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often each pod's worker looks at its processes and probes.</summary>
    public TimeSpan Tick { get; init; } = TimeSpan.FromMilliseconds(100);
}
