using System.Text.Json.Nodes;

namespace LocalKube.Storage;

/// <summary>The in-memory store. One lock guards the objects, the revision counter, the retained event history
/// and the watcher list, so a watch started at revision R sees exactly the writes after R.</summary>
internal sealed class InMemoryObjectStore(int historyLimit = 20_000) : IObjectStore
{
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, StoredObject> _objects = new(StringComparer.Ordinal);
    private readonly LinkedList<StoreEvent> _history = new();
    private readonly List<StoreWatch> _watches = [];
    private long _revision = 1;

    public long Revision
    {
        get
        {
            lock (_lock)
            {
                return _revision;
            }
        }
    }

    private static string Key(string resource, string? ns, string name) => $"{resource}\u0000{ns}\u0000{name}";

    private static StoredObject Copy(StoredObject o) => o with { Object = (JsonObject)o.Object.DeepClone() };

    public StoredObject? Get(string resource, string? ns, string name)
    {
        lock (_lock)
        {
            return _objects.TryGetValue(Key(resource, ns, name), out var o) ? Copy(o) : null;
        }
    }

    public IReadOnlyList<StoredObject> List(string resource, string? ns)
    {
        var prefix = ns is null ? resource + "\u0000" : $"{resource}\u0000{ns}\u0000";
        lock (_lock)
        {
            // Keys sort by resource, namespace, name, so one resource's objects are contiguous.
            return _objects.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => Copy(kv.Value)).ToList();
        }
    }

    public IReadOnlyList<StoredObject> ListAll()
    {
        lock (_lock)
        {
            return _objects.Values.Select(Copy).ToList();
        }
    }

    public StoredObject Create(string resource, string? ns, string name, JsonObject obj)
    {
        lock (_lock)
        {
            var key = Key(resource, ns, name);
            if (_objects.ContainsKey(key))
            {
                throw new StoreException(StoreError.AlreadyExists, $"{resource} {ns}/{name} already exists");
            }

            return Write(key, "ADDED", resource, ns, name, obj);
        }
    }

    public StoredObject Update(string resource, string? ns, string name, JsonObject obj, long? expectedRevision)
    {
        lock (_lock)
        {
            var key = Key(resource, ns, name);
            if (!_objects.TryGetValue(key, out var current))
            {
                throw new StoreException(StoreError.NotFound, $"{resource} {ns}/{name} not found");
            }

            if (expectedRevision is { } expected && expected != current.Revision)
            {
                throw new StoreException(StoreError.Conflict, $"{resource} {ns}/{name} is at revision {current.Revision}, not {expected}");
            }

            return Write(key, "MODIFIED", resource, ns, name, obj);
        }
    }

    public StoredObject Delete(string resource, string? ns, string name, long? expectedRevision)
    {
        lock (_lock)
        {
            var key = Key(resource, ns, name);
            if (!_objects.TryGetValue(key, out var current))
            {
                throw new StoreException(StoreError.NotFound, $"{resource} {ns}/{name} not found");
            }

            if (expectedRevision is { } expected && expected != current.Revision)
            {
                throw new StoreException(StoreError.Conflict, $"{resource} {ns}/{name} is at revision {current.Revision}, not {expected}");
            }

            _objects.Remove(key);
            var revision = ++_revision;
            var last = (JsonObject)current.Object.DeepClone();
            SetRevision(last, revision);
            Publish(new StoreEvent("DELETED", resource, ns, name, last, revision));
            return new StoredObject(resource, ns, name, (JsonObject)last.DeepClone(), revision);
        }
    }

    public StoreWatch Watch(string? resource, string? ns, long afterRevision)
    {
        lock (_lock)
        {
            var oldest = _history.First?.Value.Revision ?? _revision + 1;
            // History holds every event from `oldest` on; a watch from R needs all events after R.
            if (afterRevision < oldest - 1 && afterRevision < _revision)
            {
                throw new StoreException(StoreError.Expired, $"too old resource version: {afterRevision} ({oldest - 1})");
            }

            var watch = new StoreWatch(resource, ns, RemoveWatch);
            foreach (var e in _history)
            {
                if (e.Revision > afterRevision && watch.Matches(e))
                {
                    watch.Publish(e with { Object = (JsonObject)e.Object.DeepClone() });
                }
            }

            _watches.Add(watch);
            return watch;
        }
    }

    public StoreWatch WatchFromNow(string? resource, string? ns, out IReadOnlyList<StoredObject> snapshot, out long revision)
    {
        lock (_lock)
        {
            revision = _revision;
            snapshot = resource is null ? ListAll() : List(resource, ns);
            var watch = new StoreWatch(resource, ns, RemoveWatch);
            _watches.Add(watch);
            return watch;
        }
    }

    /// <summary>Drops the retained event history (the objects and the revision counter stay): a watch from any
    /// revision before now gets <see cref="StoreError.Expired"/>, as from a restarted API server's fresh watch cache.</summary>
    public void ForgetHistory()
    {
        lock (_lock)
        {
            _history.Clear();
        }
    }

    private void RemoveWatch(StoreWatch watch)
    {
        lock (_lock)
        {
            _watches.Remove(watch);
        }
    }

    private StoredObject Write(string key, string type, string resource, string? ns, string name, JsonObject obj)
    {
        var revision = ++_revision;
        var stored = (JsonObject)obj.DeepClone();
        SetRevision(stored, revision);
        var record = new StoredObject(resource, ns, name, stored, revision);
        _objects[key] = record;
        Publish(new StoreEvent(type, resource, ns, name, (JsonObject)stored.DeepClone(), revision));
        return Copy(record);
    }

    private static void SetRevision(JsonObject obj, long revision)
    {
        if (obj["metadata"] is not JsonObject meta)
        {
            meta = [];
            obj["metadata"] = meta;
        }

        meta["resourceVersion"] = revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Publish(StoreEvent e)
    {
        _history.AddLast(e);
        while (_history.Count > historyLimit)
        {
            _history.RemoveFirst();
        }

        foreach (var w in _watches)
        {
            if (w.Matches(e))
            {
                w.Publish(e with { Object = (JsonObject)e.Object.DeepClone() });
            }
        }
    }
}
