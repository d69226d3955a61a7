namespace RaftKv.Raft;

/// <summary>
/// Sliding window of MsgApp sent to one follower and not yet acknowledged: (last index, bytes) per message, in
/// increasing index order. Bounds the pipeline to <see cref="RaftConfig.MaxInflightMessages"/> messages and
/// <see cref="RaftConfig.MaxInflightBytes"/> bytes.
/// </summary>
internal sealed class Inflights(int capacity, ulong maxBytes)
{
    private readonly ulong[] _index = new ulong[capacity];
    private readonly ulong[] _bytes = new ulong[capacity];
    private int _start;

    public int Count { get; private set; }

    public ulong Bytes { get; private set; }

    public bool Full => Count == _index.Length || (maxBytes != 0 && Bytes >= maxBytes);

    public void Add(ulong index, ulong bytes)
    {
        if (Count == _index.Length)
        {
            throw new InvalidOperationException("Inflights window is full; the caller must check Full first.");
        }

        var slot = (_start + Count) % _index.Length;
        _index[slot] = index;
        _bytes[slot] = bytes;
        Count++;
        Bytes += bytes;
    }

    /// <summary>Frees every message whose last index is &lt;= <paramref name="to"/> (acknowledged).</summary>
    public void FreeLE(ulong to)
    {
        while (Count > 0 && _index[_start] <= to)
        {
            Bytes -= _bytes[_start];
            _start = (_start + 1) % _index.Length;
            Count--;
        }

        if (Count == 0)
        {
            _start = 0;
        }
    }

    /// <summary>Frees the oldest message: lets a full window make progress when acknowledgements were lost.</summary>
    public void FreeFirstOne()
    {
        if (Count > 0)
        {
            FreeLE(_index[_start]);
        }
    }

    public void Reset()
    {
        Count = 0;
        Bytes = 0;
        _start = 0;
    }
}

/// <summary>
/// The leader's bookkeeping for one member (etcd-io/raft's <c>tracker.Progress</c>).
/// Invariant: Match &lt; Next. In Probe at most one MsgApp is outstanding (<see cref="ProbeSent"/>); in Replicate
/// messages stream while the window has room; in Snapshot nothing is sent until the snapshot is acknowledged.
/// </summary>
internal sealed class Progress(ulong next, int maxInflight, ulong maxInflightBytes, bool isLearner)
{
    public ulong Match { get; set; }

    public ulong Next { get; set; } = next;

    public ProgressState State { get; private set; } = ProgressState.Probe;

    /// <summary>Snapshot state: index of the snapshot in flight.</summary>
    public ulong PendingSnapshot { get; private set; }

    /// <summary>Heard from since the last check-quorum round (set on every response).</summary>
    public bool RecentActive { get; set; }

    /// <summary>Probe state: a MsgApp was sent and not answered; wait (until a response or heartbeat response).</summary>
    public bool ProbeSent { get; set; }

    public Inflights Inflights { get; } = new(maxInflight, maxInflightBytes);

    public bool IsLearner { get; set; } = isLearner;

    public bool IsPaused => State switch
    {
        ProgressState.Probe => ProbeSent,
        ProgressState.Replicate => Inflights.Full,
        _ => true,
    };

    private void ResetState(ProgressState state)
    {
        ProbeSent = false;
        PendingSnapshot = 0;
        State = state;
        Inflights.Reset();
    }

    public void BecomeProbe()
    {
        if (State == ProgressState.Snapshot)
        {
            // The snapshot may have arrived: resume after it rather than from Match.
            var pending = PendingSnapshot;
            ResetState(ProgressState.Probe);
            Next = Math.Max(Match + 1, pending + 1);
        }
        else
        {
            ResetState(ProgressState.Probe);
            Next = Match + 1;
        }
    }

    /// <summary>The snapshot failed: resume probing from Match instead of after it.</summary>
    public void ClearPendingSnapshot() => PendingSnapshot = 0;

    public void BecomeReplicate()
    {
        ResetState(ProgressState.Replicate);
        Next = Match + 1;
    }

    public void BecomeSnapshot(ulong snapshotIndex)
    {
        ResetState(ProgressState.Snapshot);
        PendingSnapshot = snapshotIndex;
        Next = snapshotIndex + 1;
    }

    /// <summary>A MsgApp with <paramref name="count"/> entries ending at <paramref name="lastIndex"/> was sent.</summary>
    public void SentEntries(int count, ulong lastIndex, ulong bytes)
    {
        switch (State)
        {
            case ProgressState.Replicate:
                if (count > 0)
                {
                    Next = lastIndex + 1;
                    Inflights.Add(lastIndex, bytes);
                }

                break;
            case ProgressState.Probe:
                // Every MsgApp in probe state is a probe: wait for its answer.
                ProbeSent = true;
                break;
            default:
                throw new InvalidOperationException($"Sending entries in state {State}.");
        }
    }

    /// <summary>Acknowledgement up to n. Returns true if Match moved.</summary>
    public bool MaybeUpdate(ulong n)
    {
        var updated = false;
        if (Match < n)
        {
            Match = n;
            updated = true;
            ProbeSent = false;
        }

        Next = Math.Max(Next, n + 1);
        return updated;
    }

    /// <summary>
    /// A MsgApp probing at <paramref name="rejected"/> was refused; the follower hinted that its log may match up to
    /// <paramref name="matchHint"/>. Returns false when the rejection is stale (answers an older probe).
    /// </summary>
    public bool MaybeDecrTo(ulong rejected, ulong matchHint)
    {
        if (State == ProgressState.Replicate)
        {
            if (rejected <= Match)
            {
                return false; // stale
            }

            Next = Match + 1;
            return true;
        }

        if (Next - 1 != rejected)
        {
            return false; // not the probe we are waiting for
        }

        if (rejected <= Match)
        {
            // The follower no longer has an entry it acknowledged (it lost data, or safety rules were switched off in
            // tests). Believe the rejection so probing can go further back instead of repeating the same probe.
            Match = Math.Min(rejected - 1, matchHint);
        }

        Next = Math.Max(Math.Min(rejected, matchHint + 1), Match + 1);
        ProbeSent = false;
        return true;
    }

    public ProgressStatus ToStatus() =>
        new(Match, Next, State, IsLearner, RecentActive, IsPaused, Inflights.Count, PendingSnapshot);
}
