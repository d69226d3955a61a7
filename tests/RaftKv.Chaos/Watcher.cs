using Google.Protobuf;
using Grpc.Core;
using RaftKv.Protocol.Etcd;
using RaftKv.Protocol.Mvcc;

namespace RaftKv.Chaos;

/// <summary>One event as a watcher received it.</summary>
internal sealed record WatchedEvent(long Revision, string Key, string? Value, bool IsDelete, string? PrevValue, long PrevModRevision);

/// <summary>
/// Watches the workload's prefix from revision 1 with prev_kv, through a member it picks at random; when the stream
/// breaks (or every few seconds on purpose) it resumes from the revision after the last one it saw, on another member.
/// Checks as it goes that revisions only grow (no duplicates, no reordering) and that every prev_kv is the value and
/// revision the previous event on that key left.
/// </summary>
internal sealed class Watcher
{
    private readonly ChaosCluster _cluster;
    private readonly EventLog _log;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private readonly List<WatchedEvent> _events = [];
    private readonly List<string> _problems = [];
    private readonly Dictionary<string, (string? Value, long ModRevision)> _latest = new(StringComparer.Ordinal);

    public Watcher(ChaosCluster cluster, EventLog log, int seed)
    {
        _cluster = cluster;
        _log = log;
        _random = new Random(seed);
    }

    /// <summary>The last revision received (0 before any event).</summary>
    public long LastRevision { get; private set; }

    public int Resumes { get; private set; }

    public IReadOnlyList<WatchedEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_lock)
            {
                return [.. _problems];
            }
        }
    }

    public static ByteString PrefixEnd(string prefix)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(prefix);
        bytes[^1]++;
        return ByteString.CopyFrom(bytes);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var members = _cluster.Current.Where(m => m.IsRunning).ToList();
            if (members.Count == 0)
            {
                await Pause(100, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var member = members[_random.Next(members.Count)];
            _log.Add($"watch on {member.Name} from revision {LastRevision + 1}");
            // Resume on purpose after a few seconds even when nothing broke, so resuming is exercised in every scenario.
            using var session = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            session.CancelAfter(TimeSpan.FromMilliseconds(2000 + _random.Next(3000)));
            try
            {
                await WatchOnceAsync(member, session.Token).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Cancelled && session.IsCancellationRequested)
            {
            }
            catch (RpcException e)
            {
                _log.Add($"watch on {member.Name} broke at revision {LastRevision}: {e.StatusCode} {e.Status.Detail}");
                await Pause(100, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            Resumes++;
        }
    }

    private static async Task Pause(int ms, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(ms, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WatchOnceAsync(ChaosMember member, CancellationToken cancellationToken)
    {
        using var call = new Watch.WatchClient(member.Channel).Watch(cancellationToken: cancellationToken);
        var start = LastRevision + 1;
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest
            {
                Key = ByteString.CopyFromUtf8(Workload.Prefix),
                RangeEnd = PrefixEnd(Workload.Prefix),
                StartRevision = start,
                PrevKv = true,
            },
        }, cancellationToken).ConfigureAwait(false);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var response = call.ResponseStream.Current;
            if (response.Canceled)
            {
                Problem($"watch from revision {start} on {member.Name} was canceled: compact_revision {response.CompactRevision}, reason '{response.CancelReason}'");
                return;
            }

            foreach (var e in response.Events)
            {
                Receive(e, member);
            }
        }
    }

    private void Problem(string text)
    {
        lock (_lock)
        {
            if (_problems.Count < 20)
            {
                _problems.Add(text);
            }
        }

        _log.Add("watch problem: " + text);
    }

    private void Receive(Event e, ChaosMember member)
    {
        var key = e.Kv.Key.ToStringUtf8();
        var revision = e.Kv.ModRevision;
        var isDelete = e.Type == Event.Types.EventType.Delete;
        if (revision <= LastRevision)
        {
            Problem($"{member.Name} sent revision {revision} ({key}) after revision {LastRevision}: duplicate or out of order");
            return;
        }

        var prev = e.PrevKv;
        var watched = new WatchedEvent(revision, key, isDelete ? null : e.Kv.Value.ToStringUtf8(), isDelete, prev?.Value.ToStringUtf8(), prev?.ModRevision ?? 0);
        lock (_lock)
        {
            if (_latest.TryGetValue(key, out var before) && before.Value is not null)
            {
                if (prev is null || prev.ModRevision != before.ModRevision || prev.Value.ToStringUtf8() != before.Value)
                {
                    Problem($"{member.Name}: event at revision {revision} on {key} has prev_kv " +
                        (prev is null ? "absent" : $"\"{prev.Value.ToStringUtf8()}\"@{prev.ModRevision}") +
                        $", but the previous event left \"{before.Value}\"@{before.ModRevision}");
                }
            }
            else if (prev is not null)
            {
                // The watch started at revision 1, so every earlier write of this key was seen.
                Problem($"{member.Name}: event at revision {revision} on {key} has prev_kv \"{prev.Value.ToStringUtf8()}\"@{prev.ModRevision}, but the key did not exist");
            }

            _latest[key] = (watched.Value, revision);
            _events.Add(watched);
            LastRevision = revision;
        }
    }

    /// <summary>Opens a fresh watch from <paramref name="from"/> and collects events up to <paramref name="to"/> (resumability check).</summary>
    public static async Task<List<WatchedEvent>> CollectAsync(ChaosMember member, long from, long to, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var call = new Watch.WatchClient(member.Channel).Watch(cancellationToken: timeout.Token);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest
            {
                Key = ByteString.CopyFromUtf8(Workload.Prefix),
                RangeEnd = PrefixEnd(Workload.Prefix),
                StartRevision = from,
                PrevKv = true,
            },
        }, timeout.Token).ConfigureAwait(false);
        var events = new List<WatchedEvent>();
        try
        {
            while (events.Count == 0 || events[^1].Revision < to)
            {
                if (!await call.ResponseStream.MoveNext(timeout.Token).ConfigureAwait(false))
                {
                    break;
                }

                var response = call.ResponseStream.Current;
                if (response.Canceled)
                {
                    throw new ChaosFailure($"watch from revision {from} on {member.Name} was canceled (compact_revision {response.CompactRevision}, '{response.CancelReason}')");
                }

                events.AddRange(response.Events.Select(e => new WatchedEvent(e.Kv.ModRevision, e.Kv.Key.ToStringUtf8(),
                    e.Type == Event.Types.EventType.Delete ? null : e.Kv.Value.ToStringUtf8(), e.Type == Event.Types.EventType.Delete,
                    e.PrevKv?.Value.ToStringUtf8(), e.PrevKv?.ModRevision ?? 0)));
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && timeout.IsCancellationRequested)
        {
            throw new ChaosFailure($"watch from revision {from} on {member.Name} got {events.Count} events up to revision {(events.Count > 0 ? events[^1].Revision : 0)} in 30 s, expected up to {to}");
        }

        return events;
    }
}
