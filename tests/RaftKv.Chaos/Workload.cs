using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using RaftKv.Linearizability;
using RaftKv.Protocol.Etcd;

namespace RaftKv.Chaos;

/// <summary>
/// Concurrent clients writing unique values, reading linearizably and doing compare-and-set on single keys of one
/// prefix, each through a member it picks at random (another one after an error). Every request is recorded with its
/// invoke and complete times; errors and timeouts are unknown outcomes.
/// </summary>
internal sealed class Workload
{
    public const string Prefix = "chaos/";

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(2);

    private readonly ChaosCluster _cluster;
    private readonly History<KvInput, KvOutput> _history = new();
    private readonly Lock _lock = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly int _keys;
    private readonly int _seed;

    public Workload(ChaosCluster cluster, int keys, int seed)
    {
        _cluster = cluster;
        _keys = keys;
        _seed = seed;
    }

    public int Completed { get; private set; }

    public int Unknown { get; private set; }

    public static string Key(int i) => Prefix + i.ToString("D4", CultureInfo.InvariantCulture);

    public IReadOnlyList<Operation<KvInput, KvOutput>> Operations()
    {
        lock (_lock)
        {
            return _history.ToOperations();
        }
    }

    private long Now() => _clock.Elapsed.Ticks;

    /// <summary>Runs <paramref name="clients"/> clients until <paramref name="cancellationToken"/> is canceled.</summary>
    public Task RunAsync(int clients, CancellationToken cancellationToken) =>
        Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c, cancellationToken), CancellationToken.None)));

    private async Task ClientAsync(int client, CancellationToken cancellationToken)
    {
        var random = new Random(HashCode.Combine(_seed, client));
        var lastSeen = new Dictionary<string, string?>(StringComparer.Ordinal);
        var sequence = 0;
        ChaosMember? target = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var members = _cluster.Current.Where(m => m.IsRunning).ToList();
            if (members.Count == 0)
            {
                await Delay(50, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (target is null || !members.Contains(target))
            {
                target = members[random.Next(members.Count)];
            }

            var key = Key(random.Next(_keys));
            var roll = random.Next(100);
            KvInput input = roll switch
            {
                < 45 => new KvPut(key, $"c{client}-{sequence++}"),
                < 85 => new KvGet(key),
                _ => new KvCompareAndSet(key, lastSeen.GetValueOrDefault(key), $"c{client}-{sequence++}"),
            };
            var called = Now();
            var (output, sent) = await ExecuteAsync(target, input, cancellationToken).ConfigureAwait(false);
            if (sent)
            {
                // Recorded once its fate is known (with the time it was called): a request that never left is no operation.
                lock (_lock)
                {
                    var handle = _history.Invoke(client, input, called);
                    if (output is not null)
                    {
                        _history.Complete(handle, output, Now());
                        Completed++;
                    }
                    else
                    {
                        Unknown++;
                    }
                }
            }

            switch (input, output)
            {
                case (KvGet g, KvGetResult r):
                    lastSeen[g.Key] = r.Value;
                    break;
                case (KvPut p, KvPutResult):
                    lastSeen[p.Key] = p.Value;
                    break;
                case (KvCompareAndSet c, KvCompareAndSetResult { Succeeded: true }):
                    lastSeen[c.Key] = c.NewValue;
                    break;
                case (_, null):
                    // Another member next time, after a pause (a member that is down refuses connections at once).
                    target = null;
                    await Delay(random.Next(100, 300), cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
    }

    private static async Task Delay(int ms, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(ms, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Sends one request. The output is null when the outcome is unknown (error, timeout, or canceled at the end of the
    /// run); Sent is false when the request certainly never reached a member (no connection could be made).
    /// </summary>
    public static async Task<(KvOutput? Output, bool Sent)> ExecuteAsync(ChaosMember member, KvInput input, CancellationToken cancellationToken)
    {
        var kv = new KV.KVClient(member.Channel);
        var deadline = DateTime.UtcNow + RequestTimeout;
        try
        {
            switch (input)
            {
                case KvGet g:
                    var range = await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(g.Key) }, deadline: deadline, cancellationToken: cancellationToken)
                        .ConfigureAwait(false);
                    // Versions are not checked: with many unknown-outcome writes they multiply the checker's states.
                    return (range.Kvs.Count == 0 ? new KvGetResult(null) : new KvGetResult(range.Kvs[0].Value.ToStringUtf8()), true);
                case KvPut p:
                    await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(p.Key), Value = ByteString.CopyFromUtf8(p.Value) }, deadline: deadline,
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                    return (new KvPutResult(), true);
                case KvCompareAndSet c:
                    var key = ByteString.CopyFromUtf8(c.Key);
                    var compare = c.Expected is null
                        ? new Compare { Key = key, Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 }
                        : new Compare { Key = key, Target = Compare.Types.CompareTarget.Value, Result = Compare.Types.CompareResult.Equal, Value = ByteString.CopyFromUtf8(c.Expected) };
                    var txn = new TxnRequest { Compare = { compare } };
                    txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(c.NewValue!) } });
                    var response = await kv.TxnAsync(txn, deadline: deadline, cancellationToken: cancellationToken).ConfigureAwait(false);
                    return (new KvCompareAndSetResult(response.Succeeded), true);
                default:
                    throw new ArgumentException($"unsupported request {input}", nameof(input));
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && e.Status.DebugException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return (null, false);
        }
        catch (RpcException)
        {
            return (null, true);
        }
        catch (OperationCanceledException)
        {
            return (null, true);
        }
    }

    /// <summary>After the faults healed: reads every key (recorded as client -1) so lost or resurrected writes show up in the check.</summary>
    public async Task ReadBackAsync(CancellationToken cancellationToken)
    {
        var random = new Random(_seed);
        for (var i = 0; i < _keys; i++)
        {
            var input = new KvGet(Key(i));
            for (var attempt = 0; ; attempt++)
            {
                var members = _cluster.Current.Where(m => m.IsRunning).ToList();
                var member = members[random.Next(members.Count)];
                int handle;
                lock (_lock)
                {
                    handle = _history.Invoke(-1, input, Now());
                }

                var (output, _) = await ExecuteAsync(member, input, cancellationToken).ConfigureAwait(false);
                if (output is not null)
                {
                    lock (_lock)
                    {
                        _history.Complete(handle, output, Now());
                    }

                    break;
                }

                if (attempt == 20)
                {
                    throw new ChaosFailure($"reading {input.Key} back after healing failed 20 times");
                }
            }
        }
    }
}
