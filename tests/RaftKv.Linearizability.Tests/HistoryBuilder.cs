namespace RaftKv.Linearizability.Tests;

/// <summary>Terse construction of hand-written key-value histories.</summary>
internal sealed class HistoryBuilder
{
    private readonly List<Operation<KvInput, KvOutput>> _ops = [];

    public HistoryBuilder Put(int client, long call, long? ret, string key, string value) =>
        Add(client, new KvPut(key, value), ret is null ? null : new KvPutResult(), call, ret);

    public HistoryBuilder Get(int client, long call, long? ret, string key, string? value, long? version = null) =>
        Add(client, new KvGet(key), ret is null ? null : new KvGetResult(value, version), call, ret);

    public HistoryBuilder Delete(int client, long call, long? ret, string key, long? deleted = null) =>
        Add(client, new KvDelete(key), ret is null ? null : new KvDeleteResult(deleted), call, ret);

    public HistoryBuilder Cas(int client, long call, long? ret, string key, string? expected, string? newValue, bool succeeded) =>
        Add(client, new KvCompareAndSet(key, expected, newValue), ret is null ? null : new KvCompareAndSetResult(succeeded), call, ret);

    public IReadOnlyList<Operation<KvInput, KvOutput>> Build() => _ops;

    public CheckResult Check(CheckOptions? options = null) => LinearizabilityChecker.Check(KvModel.Instance, _ops, options);

    private HistoryBuilder Add(int client, KvInput input, KvOutput? output, long call, long? ret)
    {
        _ops.Add(new Operation<KvInput, KvOutput>(client, input, output, call, ret));
        return this;
    }
}
