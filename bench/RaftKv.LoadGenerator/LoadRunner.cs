using System.Buffers.Binary;
using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using RaftKv.Protocol.Etcd;

namespace RaftKv.LoadGenerator;

/// <summary>
/// Runs one workload against running members over gRPC: <c>Conns</c> HTTP/2 connections (spread over the endpoints),
/// <c>Clients</c> concurrent callers sharing them round robin, each timing its own calls into its own histogram.
/// </summary>
internal static class LoadRunner
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    public static async Task<WorkloadResult> RunAsync(string system, WorkloadSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var endpoints = spec.Target == Target.Leader ? [await FindLeaderAsync(spec.Endpoints, cancellationToken)] : spec.Endpoints;
        var channels = Enumerable.Range(0, spec.Conns).Select(i => Open(endpoints[i % endpoints.Count])).ToArray();
        try
        {
            // Connect every channel before timing anything.
            await Task.WhenAll(channels.Select(c => new KV.KVClient(c).RangeAsync(
                new RangeRequest { Key = ByteString.CopyFromUtf8("loadgen-warmup"), Serializable = true }, deadline: Deadline(), cancellationToken: cancellationToken).ResponseAsync));
            return spec.Kind == WorkloadKind.Watch
                ? await RunWatchAsync(system, spec, channels, cancellationToken)
                : await RunRequestsAsync(system, spec, channels, cancellationToken);
        }
        finally
        {
            foreach (var channel in channels)
            {
                channel.Dispose();
            }
        }
    }

    /// <summary>The client URL of the member every endpoint names as leader (Maintenance.Status).</summary>
    public static async Task<string> FindLeaderAsync(IReadOnlyList<string> endpoints, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        foreach (var endpoint in endpoints)
        {
            using var channel = Open(endpoint);
            var status = await new Maintenance.MaintenanceClient(channel).StatusAsync(new StatusRequest(), deadline: Deadline(), cancellationToken: cancellationToken);
            if (status.Leader != 0 && status.Leader == status.Header.MemberId)
            {
                return endpoint;
            }
        }

        throw new InvalidOperationException($"none of {string.Join(", ", endpoints)} reports itself as leader; is the cluster up?");
    }

    /// <summary>
    /// One HTTP/2 connection to <paramref name="endpoint"/>. The handler leaves out what a gRPC call never uses (redirects,
    /// cookies, proxy look-up), each of which is a layer every request passes through.
    /// </summary>
    public static GrpcChannel Open(string endpoint) =>
        GrpcChannel.ForAddress(endpoint.Contains("://", StringComparison.Ordinal) ? endpoint : "http://" + endpoint, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                ConnectTimeout = TimeSpan.FromSeconds(5),
                EnableMultipleHttp2Connections = false,
                AllowAutoRedirect = false,
                UseCookies = false,
                UseProxy = false,
            },
            MaxReceiveMessageSize = 16 << 20,
        });

    private static DateTime Deadline() => DateTime.UtcNow + CallTimeout;

    private static async Task<WorkloadResult> RunRequestsAsync(string system, WorkloadSpec spec, GrpcChannel[] channels, CancellationToken cancellationToken)
    {
        var value = ByteString.CopyFrom(new byte[spec.ValSize].AsSpan());
        if (spec.Kind == WorkloadKind.Range)
        {
            await PopulateAsync(spec, channels, value, cancellationToken);
        }

        var histograms = Enumerable.Range(0, spec.Clients).Select(_ => new LatencyHistogram()).ToArray();
        var keys = new KeyTable(spec.KeySpace, spec.KeySize);
        long issued = 0;
        long errors = 0;
        string? firstError = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(spec.MaxDuration);

        // A call still unanswered CallTimeout after the last one may have started fails (counted as an error): one timer
        // for the whole run instead of a deadline per call (which costs a timer per call here and a grpc-timeout header
        // the server turns into a timer of its own; etcd's benchmark tool sets no deadline either).
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        abandon.CancelAfter(spec.MaxDuration + CallTimeout);
        var costBefore = ClientCost.Now();
        var started = Stopwatch.GetTimestamp();

        async Task Client(int index)
        {
            var kv = new KV.KVClient(channels[index % channels.Length]);
            var requests = new ClientRequests(spec, keys, value);
            var random = new Random(index + 1);
            var histogram = histograms[index];
            while (!stop.IsCancellationRequested && Interlocked.Increment(ref issued) <= spec.Total)
            {
                var key = random.Next(spec.KeySpace);
                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    await requests.SendAsync(kv, key, abandon.Token);
                    histogram.Record(Micros(t0));
                }
                catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                {
                    if (Interlocked.Increment(ref errors) == 1)
                    {
                        firstError = $"{e.StatusCode}: {e.Status.Detail}";
                    }
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, spec.Clients).Select(i => Task.Run(() => Client(i), CancellationToken.None)));
        var elapsed = Stopwatch.GetElapsedTime(started);
        var cost = ClientCost.Now().Minus(costBefore);
        var merged = Merge(histograms);
        return new WorkloadResult(system, spec, merged.Count, errors, elapsed, merged, firstError) { ClientCost = cost };
    }

    /// <summary>Range reads find values: every key of the key space is written once before the timed part.</summary>
    private static async Task PopulateAsync(WorkloadSpec spec, GrpcChannel[] channels, ByteString value, CancellationToken cancellationToken)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, Math.Min(64, channels.Length * 8)).Select(async worker =>
        {
            var kv = new KV.KVClient(channels[worker % channels.Length]);
            int key;
            while ((key = Interlocked.Increment(ref next)) < spec.KeySpace)
            {
                await kv.PutAsync(new PutRequest { Key = Key(key, spec), Value = value }, deadline: Deadline(), cancellationToken: cancellationToken);
            }
        }));
    }

    /// <summary>
    /// Watchers on one key (spread over streams), then <c>Total</c> puts to it from <c>Clients</c> putters; a latency is
    /// the time from starting a put to a watcher receiving its event (the value carries the put's sequence number).
    /// </summary>
    private static async Task<WorkloadResult> RunWatchAsync(string system, WorkloadSpec spec, GrpcChannel[] channels, CancellationToken cancellationToken)
    {
        var key = ByteString.CopyFromUtf8("loadgen-watch-" + WorkloadSpec.KeyText(0, spec.KeySize));
        var sentAt = new long[spec.Total];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var streams = new List<AsyncDuplexStreamingCall<WatchRequest, WatchResponse>>();
        var readers = new List<Task<LatencyHistogram>>();
        var received = new long[spec.WatchStreams];
        var watchersOn = new int[spec.WatchStreams];
        long errors = 0;
        string? firstError = null;
        try
        {
            for (var s = 0; s < spec.WatchStreams; s++)
            {
                var watchers = (spec.Watchers / spec.WatchStreams) + (s < spec.Watchers % spec.WatchStreams ? 1 : 0);
                watchersOn[s] = watchers;
                var call = new Watch.WatchClient(channels[s % channels.Length]).Watch(cancellationToken: stop.Token);
                streams.Add(call);
                for (var w = 0; w < watchers; w++)
                {
                    await call.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = key } }, cancellationToken);
                    if (!await call.ResponseStream.MoveNext(cancellationToken) || !call.ResponseStream.Current.Created)
                    {
                        throw new InvalidOperationException($"watch stream {s}: expected a 'created' response for watcher {w}");
                    }
                }

                var stream = s;
                readers.Add(ReadEventsAsync(call, sentAt, n => Interlocked.Add(ref received[stream], n), stop.Token));
            }

            var value = new byte[Math.Max(8, spec.ValSize)];
            long issued = -1;
            long written = 0;
            using var putStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            putStop.CancelAfter(spec.MaxDuration);
            var costBefore = ClientCost.Now();
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(Enumerable.Range(0, spec.Clients).Select(i => Task.Run(async () =>
            {
                var kv = new KV.KVClient(channels[i % channels.Length]);
                long seq;
                while (!putStop.IsCancellationRequested && (seq = Interlocked.Increment(ref issued)) < spec.Total)
                {
                    var bytes = (byte[])value.Clone();
                    BinaryPrimitives.WriteInt64LittleEndian(bytes, seq);
                    Volatile.Write(ref sentAt[seq], Stopwatch.GetTimestamp());
                    try
                    {
                        await kv.PutAsync(new PutRequest { Key = key, Value = ByteString.CopyFrom(bytes) }, deadline: Deadline(), cancellationToken: cancellationToken);
                        Interlocked.Increment(ref written);
                    }
                    catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                    {
                        if (Interlocked.Increment(ref errors) == 1)
                        {
                            firstError = $"{e.StatusCode}: {e.Status.Detail}";
                        }
                    }
                }
            }, CancellationToken.None)));

            // Every watcher should see every written put; events still in flight get up to 10 s after the last put.
            var puts = Interlocked.Read(ref written);
            var expected = spec.Watchers * puts;
            var grace = Stopwatch.GetTimestamp();
            while (Enumerable.Range(0, received.Length).Any(s => Interlocked.Read(ref received[s]) < watchersOn[s] * puts) && Stopwatch.GetElapsedTime(grace) < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(5, cancellationToken);
            }

            var elapsed = Stopwatch.GetElapsedTime(started);
            var cost = ClientCost.Now().Minus(costBefore);
            await stop.CancelAsync();
            var merged = Merge(await Task.WhenAll(readers));
            if (merged.Count < expected)
            {
                errors += expected - merged.Count;
                firstError ??= $"{expected - merged.Count} of {expected} events did not arrive within 10 s of the last put";
            }

            return new WorkloadResult(system, spec, merged.Count, errors, elapsed, merged, firstError) { ClientCost = cost };
        }
        finally
        {
            await stop.CancelAsync();
            foreach (var call in streams)
            {
                call.Dispose();
            }
        }
    }

    private static async Task<LatencyHistogram> ReadEventsAsync(AsyncDuplexStreamingCall<WatchRequest, WatchResponse> call, long[] sentAt, Action<long> onEvents, CancellationToken cancellationToken)
    {
        var histogram = new LatencyHistogram();
        try
        {
            while (await call.ResponseStream.MoveNext(cancellationToken))
            {
                var now = Stopwatch.GetTimestamp();
                var events = call.ResponseStream.Current.Events;
                foreach (var ev in events)
                {
                    var seq = BinaryPrimitives.ReadInt64LittleEndian(ev.Kv.Value.Span);
                    if (seq >= 0 && seq < sentAt.Length)
                    {
                        histogram.Record((long)Stopwatch.GetElapsedTime(Volatile.Read(ref sentAt[seq]), now).TotalMicroseconds);
                    }
                }

                onEvents(events.Count);
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
        }
        catch (OperationCanceledException)
        {
        }

        return histogram;
    }

    private static ByteString Key(int index, WorkloadSpec spec) => ByteString.CopyFromUtf8(WorkloadSpec.KeyText(index, spec.KeySize));

    private static long Micros(long startTimestamp) => (long)Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds;

    private static LatencyHistogram Merge(IEnumerable<LatencyHistogram> histograms)
    {
        var merged = new LatencyHistogram();
        foreach (var h in histograms)
        {
            merged.Merge(h);
        }

        return merged;
    }
}
