using System.Text.Json.Nodes;

namespace LocalKube.Storage;

/// <summary>One stored object: its resource key (for example <c>apps/statefulsets</c>), place and body.</summary>
/// <param name="Resource">The resource key: <c>group/plural</c>, with an empty group for core/v1.</param>
/// <param name="Namespace">The namespace, or null for cluster-scoped objects.</param>
/// <param name="Name">The object's name.</param>
/// <param name="Object">The object; callers own this copy.</param>
/// <param name="Revision">The revision at which the object was last written (its resourceVersion).</param>
internal sealed record StoredObject(string Resource, string? Namespace, string Name, JsonObject Object, long Revision);

/// <summary>A change to one object, as watches report it.</summary>
/// <param name="Type">ADDED, MODIFIED or DELETED.</param>
/// <param name="Resource">The resource key.</param>
/// <param name="Namespace">The namespace, or null for cluster-scoped objects.</param>
/// <param name="Name">The object's name.</param>
/// <param name="Revision">The revision of the change.</param>
/// <param name="Object">The object after the change (for DELETED: its last state, with the deletion's revision).</param>
internal sealed record StoreEvent(string Type, string Resource, string? Namespace, string Name, JsonObject Object, long Revision);

/// <summary>The object store behind the API server. Every write gets the next value of one global revision
/// counter, which becomes the object's <c>metadata.resourceVersion</c>; events are delivered to watchers in
/// revision order.</summary>
internal interface IObjectStore
{
    /// <summary>The revision of the latest write.</summary>
    long Revision { get; }

    StoredObject? Get(string resource, string? ns, string name);

    /// <summary>Objects of one resource, sorted by namespace then name; <paramref name="ns"/> null means all namespaces.</summary>
    IReadOnlyList<StoredObject> List(string resource, string? ns);

    /// <summary>Every object of every resource (used by the garbage collector and the namespace controller).</summary>
    IReadOnlyList<StoredObject> ListAll();

    /// <summary>Stores a new object. Throws <see cref="StoreException"/> with <see cref="StoreError.AlreadyExists"/>.</summary>
    StoredObject Create(string resource, string? ns, string name, JsonObject obj);

    /// <summary>Replaces an object if its revision is still <paramref name="expectedRevision"/> (when given).</summary>
    StoredObject Update(string resource, string? ns, string name, JsonObject obj, long? expectedRevision);

    /// <summary>Removes an object if its revision is still <paramref name="expectedRevision"/> (when given).</summary>
    StoredObject Delete(string resource, string? ns, string name, long? expectedRevision);

    /// <summary>Starts a watch of changes after <paramref name="afterRevision"/>. Resource null watches everything;
    /// namespace null watches all namespaces. Throws <see cref="StoreException"/> with
    /// <see cref="StoreError.Expired"/> when that revision is older than the retained history.</summary>
    StoreWatch Watch(string? resource, string? ns, long afterRevision);

    /// <summary>Atomically lists the current objects and starts a watch of every later change.</summary>
    StoreWatch WatchFromNow(string? resource, string? ns, out IReadOnlyList<StoredObject> snapshot, out long revision);
}

internal enum StoreError
{
    NotFound,
    AlreadyExists,
    Conflict,
    Expired,
}

internal sealed class StoreException(StoreError error, string message) : Exception(message)
{
    public StoreError Error { get; } = error;
}
