using Google.Protobuf;
using Grpc.Core;
using RaftKv.Protocol.Etcd;

namespace RaftKv.LoadGenerator.Tests;

public sealed class RequestsTests
{
    [Fact]
    public void Key_table_gives_every_key_as_its_zero_padded_text_and_builds_each_once()
    {
        var keys = new KeyTable(1_000, 8);
        for (var i = 0; i < keys.KeySpace; i++)
        {
            Assert.Equal(WorkloadSpec.KeyText(i, 8), keys[i].ToStringUtf8());
        }

        Assert.Same(keys[7], keys[7]);
        Assert.Equal("00000999", keys[999].ToStringUtf8());
        Assert.Throws<ArgumentOutOfRangeException>(() => keys[1_000]);
        Assert.Throws<ArgumentOutOfRangeException>(() => keys[-1]);
    }

    [Fact]
    public void Key_table_above_the_cached_size_builds_keys_per_request()
    {
        var keys = new KeyTable(KeyTable.MaxCached + 1, 12);
        Assert.Equal("000001048576", keys[KeyTable.MaxCached].ToStringUtf8());
        Assert.Equal("000000000003", keys[3].ToStringUtf8());
    }

    [Fact]
    public async Task A_reused_put_request_carries_the_key_of_its_own_call_and_the_value()
    {
        var invoker = new RecordingInvoker();
        var value = ByteString.CopyFrom(new byte[256]);
        var requests = new ClientRequests(new WorkloadSpec(WorkloadKind.Put) { KeySpace = 100_000, KeySize = 8 }, new KeyTable(100_000, 8), value);
        int[] sequence = [5, 17, 5, 99_999, 0];
        await Pump.RunAsync(async () =>
        {
            foreach (var key in sequence)
            {
                await requests.SendAsync(new KV.KVClient(invoker), key, CancellationToken.None);
            }
        });

        var sent = invoker.Sent.Select(PutRequest.Parser.ParseFrom).ToList();
        Assert.Equal(["/etcdserverpb.KV/Put"], invoker.Methods.Distinct());
        Assert.Equal(sequence.Select(k => WorkloadSpec.KeyText(k, 8)), sent.Select(p => p.Key.ToStringUtf8()));
        Assert.All(sent, p => Assert.Equal(value, p.Value));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reused_range_request_carries_its_own_key_and_the_consistency(bool linearizable)
    {
        var invoker = new RecordingInvoker();
        var spec = new WorkloadSpec(WorkloadKind.Range) { KeySpace = 1_000, Linearizable = linearizable };
        var requests = new ClientRequests(spec, new KeyTable(1_000, 8), ByteString.Empty);
        int[] sequence = [999, 1, 2, 1];
        await Pump.RunAsync(async () =>
        {
            foreach (var key in sequence)
            {
                await requests.SendAsync(new KV.KVClient(invoker), key, CancellationToken.None);
            }
        });

        var sent = invoker.Sent.Select(RangeRequest.Parser.ParseFrom).ToList();
        Assert.Equal(["/etcdserverpb.KV/Range"], invoker.Methods.Distinct());
        Assert.Equal(sequence.Select(k => WorkloadSpec.KeyText(k, 8)), sent.Select(r => r.Key.ToStringUtf8()));
        Assert.All(sent, r => Assert.Equal(!linearizable, r.Serializable));
        Assert.All(sent, r => Assert.True(r.RangeEnd.IsEmpty, $"range_end {r.RangeEnd.ToStringUtf8()}"));
    }

    [Fact]
    public async Task A_reused_txn_puts_consecutive_keys_from_its_own_key_wrapping_around_the_key_space()
    {
        var invoker = new RecordingInvoker();
        var value = ByteString.CopyFromUtf8("v");
        var spec = new WorkloadSpec(WorkloadKind.TxnPut) { KeySpace = 10, TxnOps = 3 };
        var requests = new ClientRequests(spec, new KeyTable(10, 8), value);
        await Pump.RunAsync(async () =>
        {
            await requests.SendAsync(new KV.KVClient(invoker), 9, CancellationToken.None);
            await requests.SendAsync(new KV.KVClient(invoker), 4, CancellationToken.None);
        });

        var sent = invoker.Sent.Select(TxnRequest.Parser.ParseFrom).ToList();
        string[] Keys(TxnRequest t) => [.. t.Success.Select(op => op.RequestPut.Key.ToStringUtf8())];
        Assert.Equal(["00000009", "00000000", "00000001"], Keys(sent[0]));
        Assert.Equal(["00000004", "00000005", "00000006"], Keys(sent[1]));
        Assert.All(sent.SelectMany(t => t.Success), op => Assert.Equal(value, op.RequestPut.Value));
        Assert.All(sent, t => Assert.Empty(t.Compare));
    }

    [Fact]
    public void Client_cost_is_reported_per_request()
    {
        var before = new ClientCost(TimeSpan.FromSeconds(1), 1_000, 1, 0, 0);
        var after = new ClientCost(TimeSpan.FromSeconds(3), 1_000 + (4 * 1024 * 1000), 5, 1, 0);
        var cost = after.Minus(before);
        Assert.Equal(new ClientCost(TimeSpan.FromSeconds(2), 4 * 1024 * 1000, 4, 1, 0), cost);
        Assert.Equal("load generator: 2000 µs CPU and 4.0 KiB allocated per request; GCs gen0 4, gen1 1, gen2 0", cost.Describe(1000));
        Assert.Equal("load generator: 2.00 s CPU", cost.Describe(0));
    }

    /// <summary>
    /// Runs an async function on one thread, posted continuations one after another, so the order is fixed: whatever a
    /// caller does synchronously after starting a call happens before the call's own continuation runs.
    /// </summary>
    private sealed class Pump : SynchronizationContext, IDisposable
    {
        private readonly System.Collections.Concurrent.BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = [];

        public static Task RunAsync(Func<Task> body) => Task.Factory.StartNew(
            () =>
            {
                using var pump = new Pump();
                var previous = Current;
                SetSynchronizationContext(pump);
                try
                {
                    var task = body();
                    _ = task.ContinueWith(_ => pump._queue.CompleteAdding(), TaskScheduler.Default);
                    foreach (var (callback, state) in pump._queue.GetConsumingEnumerable())
                    {
                        callback(state);
                    }

                    task.GetAwaiter().GetResult();
                }
                finally
                {
                    SetSynchronizationContext(previous);
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

        public override void Send(SendOrPostCallback d, object? state) => throw new NotSupportedException();

        public override SynchronizationContext CreateCopy() => this;

        public void Dispose() => _queue.Dispose();
    }

    /// <summary>
    /// Answers unary calls with an empty response and records each request's bytes when the call completes, after
    /// yielding (as a real channel serializes the message while the caller already waits), so a request changed before
    /// its call finished would show the wrong content.
    /// </summary>
    private sealed class RecordingInvoker : CallInvoker
    {
        public List<byte[]> Sent { get; } = [];

        public List<string> Methods { get; } = [];

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            async Task<TResponse> Respond()
            {
                await Task.Yield();
                lock (Sent)
                {
                    Sent.Add(((IMessage)request).ToByteArray());
                    Methods.Add(method.FullName);
                }

                return Activator.CreateInstance<TResponse>();
            }

            return new AsyncUnaryCall<TResponse>(Respond(), Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
        }

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            throw new NotSupportedException();

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
            throw new NotSupportedException();

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
            throw new NotSupportedException();

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
            throw new NotSupportedException();
    }
}
