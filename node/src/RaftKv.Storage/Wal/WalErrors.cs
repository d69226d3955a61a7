namespace RaftKv.Storage.Wal;

/// <summary>
/// The WAL is damaged somewhere a crash cannot explain (not a torn write at the end of the newest segment).
/// The member must not start: its log may be missing acknowledged entries.
/// </summary>
public sealed class WalCorruptException : Exception
{
    public WalCorruptException(string file, long offset, string what)
        : base($"WAL file '{file}' is damaged at offset {offset}: {what}. Refusing to start: this member's log can no longer be trusted. " +
            "Remove this member from the cluster (etcdctl member remove <member-id>), then re-add it (etcdctl member add) and start it " +
            "with an empty --data-dir and --initial-cluster-state=existing so it receives a fresh copy from the leader.")
    {
        File = file;
        Offset = offset;
        What = what;
    }

    public WalCorruptException()
        : base("The WAL is damaged.")
    {
        File = string.Empty;
        What = string.Empty;
    }

    public WalCorruptException(string message)
        : base(message)
    {
        File = string.Empty;
        What = message;
    }

    public WalCorruptException(string message, Exception innerException)
        : base(message, innerException)
    {
        File = string.Empty;
        What = message;
    }

    /// <summary>Path of the damaged segment.</summary>
    public string File { get; }

    /// <summary>Byte offset of the first damaged record in <see cref="File"/>.</summary>
    public long Offset { get; }

    /// <summary>What is wrong there.</summary>
    public string What { get; }
}

/// <summary>The data dir belongs to another cluster or another member.</summary>
public sealed class WalIdentityMismatchException : Exception
{
    public WalIdentityMismatchException(string directory, WalMetadata found, WalMetadata expected)
        : base($"The data dir '{directory}' belongs to {found}, but this process is {expected}. Refusing to start. " +
            "Point --data-dir at this member's own directory; if this member is new, give it an empty data dir; " +
            "if the directory is stale, remove the member and re-add it with an empty data dir.")
    {
    }

    public WalIdentityMismatchException()
    {
    }

    public WalIdentityMismatchException(string message)
        : base(message)
    {
    }

    public WalIdentityMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
