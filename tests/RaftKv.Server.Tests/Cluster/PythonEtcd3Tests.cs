using System.Diagnostics;
using System.Globalization;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>The storage patterns kube-apiserver uses, driven with Debian's python3-etcd3 (a client no one here wrote).</summary>
public sealed class PythonEtcd3Tests
{
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import sys, etcd3
        from etcd3 import etcdrpc
        host, port = sys.argv[1].split(':')
        c = etcd3.client(host=host, port=int(port), timeout=10)
        t = c.transactions

        # get_range_response drops limit/revision/count_only, so paging goes through the client's generated KV stub.
        def rng(key, end, **fields):
            return c.kvstub.Range(etcdrpc.RangeRequest(key=key.encode() if isinstance(key, str) else key, range_end=end.encode(), **fields), c.timeout)

        # create: txn on mod_revision == 0, succeeds once
        ok, _ = c.transaction(compare=[t.mod('/registry/pods/a') == 0], success=[t.put('/registry/pods/a', 'v1')], failure=[])
        assert ok, 'first create must succeed'
        ok, _ = c.transaction(compare=[t.mod('/registry/pods/a') == 0], success=[t.put('/registry/pods/a', 'v1-again')], failure=[])
        assert not ok, 'second create must fail'

        # guaranteed update: compare on the mod_revision read before
        value, meta = c.get('/registry/pods/a')
        ok, _ = c.transaction(compare=[t.mod('/registry/pods/a') == meta.mod_revision], success=[t.put('/registry/pods/a', 'v2')], failure=[])
        assert ok, 'update at the read revision must succeed'
        ok, responses = c.transaction(compare=[t.mod('/registry/pods/a') == meta.mod_revision], success=[t.put('/registry/pods/a', 'v3')],
                                      failure=[t.get('/registry/pods/a')])
        assert not ok and responses[0][0][0] == b'v2', ('stale update must fail and return the current value', responses)

        # paged list with continue at a pinned revision; count_only
        for i in range(5):
            c.put('/registry/cm/%d' % i, 'x%d' % i)
        first = rng('/registry/cm/', '/registry/cm0', limit=2)
        pinned = first.header.revision
        assert first.more and first.count == 5 and len(first.kvs) == 2, first
        c.put('/registry/cm/9', 'late')
        keys = [kv.key for kv in first.kvs]
        cont = first.kvs[-1].key + b'\x00'
        while True:
            page = rng(cont, '/registry/cm0', limit=2, revision=pinned)
            keys += [kv.key for kv in page.kvs]
            if not page.more:
                break
            cont = page.kvs[-1].key + b'\x00'
        assert keys == [('/registry/cm/%d' % i).encode() for i in range(5)], keys
        counted = rng('/registry/cm/', '/registry/cm0', count_only=True)
        assert counted.count == 6 and len(counted.kvs) == 0, counted

        # watch with prev_kv from a revision
        events, cancel = c.watch('/registry/pods/a', start_revision=meta.mod_revision, prev_kv=True)
        seen = []
        for ev in events:
            seen.append((type(ev).__name__, ev.value, ev.prev_value))
            if len(seen) == 2:
                break
        cancel()
        assert seen == [('PutEvent', b'v1', b''), ('PutEvent', b'v2', b'v1')], seen

        # compaction errors
        c.compact(pinned)
        try:
            rng('/registry/cm/', '/registry/cm0', revision=pinned - 1)
            raise AssertionError('read below the compaction must fail')
        except Exception as e:
            assert 'required revision has been compacted' in str(e), e

        # lease expiry (kube-apiserver's events and masterleases): the attached key is deleted with a DELETE event
        lease = c.lease(1)
        assert lease.ttl == 2, ('a TTL below the minimum is raised to it', lease.ttl)
        c.put('/registry/events/e1', 'x', lease=lease)
        _, meta = c.get('/registry/events/e1')
        assert meta.lease_id == lease.id, meta.lease_id
        assert list(lease.keys) == [b'/registry/events/e1'], lease.keys
        ev = c.watch_once('/registry/events/e1', timeout=20, start_revision=meta.mod_revision + 1)
        assert type(ev).__name__ == 'DeleteEvent', ev
        assert c.get('/registry/events/e1') == (None, None)
        assert lease.remaining_ttl == -1, lease.remaining_ttl
        print('OK')
        """;

    [Fact]
    public async Task Kube_apiserver_storage_patterns_work_through_python_etcd3()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();

        var psi = new ProcessStartInfo(Python);
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add(cluster.Endpoint(1));
        var (code, stdout, stderr) = await ChildProcess.RunAsync(psi, TimeSpan.FromSeconds(60));
        Assert.True(code == 0 && stdout.Trim() == "OK", $"exit {code?.ToString(CultureInfo.InvariantCulture) ?? "none (killed after 60 s)"}\nstdout: {stdout}\nstderr: {stderr}");
    }
}
