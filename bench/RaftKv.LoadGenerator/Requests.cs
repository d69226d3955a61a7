using Google.Protobuf;
using RaftKv.Protocol.Etcd;

namespace RaftKv.LoadGenerator;

/// <summary>
/// The keys of a workload's key space as ready-made <see cref="ByteString"/>s, each built on first use and then shared
/// by every client (a request no longer formats and encodes its key). Key spaces above <see cref="MaxCached"/> keys
/// build each key per request instead of holding them all.
/// </summary>
internal sealed class KeyTable
{
    public const int MaxCached = 1 << 20;

    private readonly ByteString?[]? _keys;

    public KeyTable(int keySpace, int keySize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keySpace);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keySize);
        KeySpace = keySpace;
        KeySize = keySize;
        _keys = keySpace <= MaxCached ? new ByteString?[keySpace] : null;
    }

    public int KeySpace { get; }

    public int KeySize { get; }

    /// <summary>Key number <paramref name="index"/> (0 ≤ index &lt; key space).</summary>
    public ByteString this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, KeySpace);
            if (_keys is null)
            {
                return Build(index);
            }

            // Two clients may build the same key at once: both results are equal, either one may stay.
            var key = Volatile.Read(ref _keys[index]);
            if (key is null)
            {
                key = Build(index);
                Volatile.Write(ref _keys[index], key);
            }

            return key;
        }
    }

    private ByteString Build(int index) => ByteString.CopyFromUtf8(WorkloadSpec.KeyText(index, KeySize));
}

/// <summary>
/// One client's requests: the request message of its workload kind is made once and only its key is set before each
/// call. That is safe because a client has one call in flight at a time and awaits its response before the next
/// (Grpc.Net.Client serializes the message before the server can answer it, and keeps no copy for retries: none are
/// configured).
/// </summary>
internal sealed class ClientRequests
{
    private readonly WorkloadSpec _spec;
    private readonly KeyTable _keys;
    private readonly PutRequest _put;
    private readonly RangeRequest _range;
    private readonly TxnRequest _txn;

    public ClientRequests(WorkloadSpec spec, KeyTable keys, ByteString value)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(value);
        _spec = spec;
        _keys = keys;
        _put = new PutRequest { Value = value };
        _range = new RangeRequest { Serializable = !spec.Linearizable };
        _txn = new TxnRequest();
        if (spec.Kind == WorkloadKind.TxnPut)
        {
            for (var op = 0; op < spec.TxnOps; op++)
            {
                _txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Value = value } });
            }
        }
    }

    /// <summary>Sends the workload's request for key number <paramref name="key"/> and waits for its response.</summary>
    public async Task SendAsync(KV.KVClient kv, int key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(kv);
        switch (_spec.Kind)
        {
            case WorkloadKind.Put:
                _put.Key = _keys[key];
                await kv.PutAsync(_put, cancellationToken: cancellationToken);
                break;
            case WorkloadKind.Range:
                _range.Key = _keys[key];
                await kv.RangeAsync(_range, cancellationToken: cancellationToken);
                break;
            case WorkloadKind.TxnPut:
                // One transaction puts TxnOps consecutive keys (wrapping around the key space).
                for (var op = 0; op < _txn.Success.Count; op++)
                {
                    _txn.Success[op].RequestPut.Key = _keys[(key + op) % _keys.KeySpace];
                }

                await kv.TxnAsync(_txn, cancellationToken: cancellationToken);
                break;
            default:
                throw new InvalidOperationException($"{_spec.Kind} is not a request workload");
        }
    }
}
