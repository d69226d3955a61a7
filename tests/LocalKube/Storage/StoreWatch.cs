using System.Threading.Channels;

namespace LocalKube.Storage;

/// <summary>A running watch on the store. Events arrive in revision order; dispose to stop it.</summary>
internal sealed class StoreWatch : IDisposable
{
    private readonly Channel<StoreEvent> _channel = Channel.CreateUnbounded<StoreEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<StoreWatch> _onDispose;

    internal StoreWatch(string? resource, string? ns, Action<StoreWatch> onDispose)
    {
        Resource = resource;
        Namespace = ns;
        _onDispose = onDispose;
    }

    public string? Resource { get; }

    public string? Namespace { get; }

    public ChannelReader<StoreEvent> Events => _channel.Reader;

    internal bool Matches(StoreEvent e) =>
        (Resource is null || Resource == e.Resource) && (Namespace is null || Namespace == e.Namespace);

    internal void Publish(StoreEvent e) => _channel.Writer.TryWrite(e);

    public void Dispose()
    {
        _channel.Writer.TryComplete();
        _onDispose(this);
    }
}
