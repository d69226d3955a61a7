using RaftKv.Raft;

namespace RaftKv.Simulator;

/// <summary>
/// Checks Raft's safety properties (paper figure 3) as the run goes, on what the nodes do and persist:
/// election safety, log matching, leader completeness and state machine safety. The first violation throws
/// <see cref="InvariantViolationException"/>, which ends the run.
/// </summary>
internal sealed class SafetyMonitor
{
    // Election safety: the one leader of each term.
    private readonly Dictionary<ulong, ulong> _leaderOfTerm = [];

    // State machine safety: the entry first applied at each index (by any node).
    private readonly Dictionary<ulong, (ulong Node, Entry Entry)> _applied = [];

    // For leader completeness: the highest commit index any node reported (in a persisted hard state) while at
    // each term. An index <= that commit was committed in that term or earlier.
    private readonly SortedDictionary<ulong, ulong> _maxCommitInTerm = [];

    public int AppliedEntries => _applied.Count;

    /// <summary>At most one leader per term (§5.2).</summary>
    public void ObserveRole(SimNode node)
    {
        var raft = node.Raft!;
        if (raft.Role != StateRole.Leader)
        {
            return;
        }

        if (_leaderOfTerm.TryGetValue(raft.Term, out var other))
        {
            if (other != node.Id)
            {
                throw new InvariantViolationException(
                    $"election safety: n{node.Id} and n{other} are both leaders of term {raft.Term}");
            }
        }
        else
        {
            _leaderOfTerm[raft.Term] = node.Id;
        }
    }

    /// <summary>Records a persisted hard state: its commit index was committed in its term or earlier.</summary>
    public void ObserveHardState(HardState hardState)
    {
        if (hardState.Commit > _maxCommitInTerm.GetValueOrDefault(hardState.Term))
        {
            _maxCommitInTerm[hardState.Term] = hardState.Commit;
        }
    }

    /// <summary>Every node applies the same entry at each index (§5.4.3).</summary>
    public void ObserveApply(SimNode node, Entry entry)
    {
        if (!_applied.TryGetValue(entry.Index, out var first))
        {
            _applied[entry.Index] = (node.Id, entry);
            return;
        }

        if (!SameEntry(first.Entry, entry))
        {
            throw new InvariantViolationException(
                $"state machine safety: n{node.Id} applied {Describe(entry)} at index {entry.Index}, but n{first.Node} applied {Describe(first.Entry)} there");
        }
    }

    /// <summary>The term of the entry applied at <paramref name="index"/>, if any node applied one.</summary>
    public ulong? AppliedTerm(ulong index) => _applied.TryGetValue(index, out var e) ? e.Entry.Term : null;

    /// <summary>
    /// Leader completeness (§5.4): a leader of term T holds every entry committed in a term before T. Called once
    /// the leader has persisted a Ready taken while leading, so its whole log is on its disk.
    /// </summary>
    public void CheckLeaderCompleteness(SimNode leader, ulong term)
    {
        ulong committedBefore = 0;
        foreach (var (t, commit) in _maxCommitInTerm)
        {
            if (t >= term)
            {
                break;
            }

            committedBefore = Math.Max(committedBefore, commit);
        }

        var disk = leader.Disk;
        var first = disk.FirstIndex();
        var last = disk.LastIndex();
        for (var index = first; index <= committedBefore; index++)
        {
            if (!_applied.TryGetValue(index, out var committed))
            {
                continue; // committed, but no node applied it yet: its term is not known here
            }

            if (index > last)
            {
                throw new InvariantViolationException(
                    $"leader completeness: n{leader.Id} leads term {term} with a log ending at {last}, but index {index} ({Describe(committed.Entry)}) was committed before term {term}");
            }

            var termThere = disk.Term(index);
            if (termThere != committed.Entry.Term)
            {
                throw new InvariantViolationException(
                    $"leader completeness: n{leader.Id} leads term {term} with an entry of term {termThere} at index {index}, but {Describe(committed.Entry)} was committed there before term {term}");
            }
        }
    }

    /// <summary>
    /// Log matching (§5.3): if two logs hold an entry with the same index and term, they are identical up to it.
    /// Checked on the synced logs of every pair of nodes, over the range both still hold.
    /// </summary>
    public static void CheckLogMatching(IReadOnlyList<SimNode> nodes)
    {
        for (var i = 0; i < nodes.Count; i++)
        {
            for (var j = i + 1; j < nodes.Count; j++)
            {
                CheckPair(nodes[i], nodes[j]);
            }
        }
    }

    private static void CheckPair(SimNode a, SimNode b)
    {
        var lo = Math.Max(a.Disk.FirstIndex(), b.Disk.FirstIndex());
        var hi = Math.Min(a.Disk.LastIndex(), b.Disk.LastIndex());
        if (lo > hi)
        {
            return;
        }

        var left = a.Disk.Entries(lo, hi + 1, ulong.MaxValue);
        var right = b.Disk.Entries(lo, hi + 1, ulong.MaxValue);
        var matchUpTo = -1;
        for (var k = left.Count - 1; k >= 0; k--)
        {
            if (left[k].Term == right[k].Term)
            {
                matchUpTo = k;
                break;
            }
        }

        for (var k = 0; k <= matchUpTo; k++)
        {
            if (!SameEntry(left[k], right[k]))
            {
                throw new InvariantViolationException(
                    $"log matching: n{a.Id} and n{b.Id} agree on index {left[matchUpTo].Index} term {left[matchUpTo].Term}, but differ at index {left[k].Index}: {Describe(left[k])} vs {Describe(right[k])}");
            }
        }
    }

    private static bool SameEntry(Entry x, Entry y) =>
        x.Index == y.Index && x.Term == y.Term && x.Type == y.Type && x.Data.Span.SequenceEqual(y.Data.Span);

    public static string Describe(Entry entry)
    {
        var what = entry.Type == EntryType.ConfChange
            ? DescribeConfChange(ConfChange.Decode(entry.Data))
            : entry.Data.IsEmpty ? "empty" : KvCommand.Decode(entry.Data.Span).ToString();
        return $"[{entry.Index} t{entry.Term} {what}]";
    }

    public static string DescribeConfChange(ConfChange change) => $"{change.Type} n{change.NodeId}";
}
