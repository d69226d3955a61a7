namespace RaftKv.Simulator;

/// <summary>
/// The virtual clock: a priority queue of actions keyed by (time, insertion sequence). Time only moves when the
/// next action runs, so a run is a pure function of its seed. Times are microseconds.
/// </summary>
internal sealed class EventQueue
{
    private readonly PriorityQueue<Action, (long Time, long Sequence)> _queue = new();
    private long _sequence;

    /// <summary>Virtual time of the action running now (µs).</summary>
    public long Now { get; private set; }

    public int Pending => _queue.Count;

    /// <summary>Schedules <paramref name="action"/> at <paramref name="time"/> (not before now). Equal times run in scheduling order.</summary>
    public void At(long time, Action action) => _queue.Enqueue(action, (Math.Max(time, Now), _sequence++));

    public void After(long delay, Action action) => At(Now + delay, action);

    /// <summary>Runs the next action if it is due at or before <paramref name="until"/>; false when none is.</summary>
    public bool RunNext(long until)
    {
        if (!_queue.TryPeek(out _, out var key) || key.Time > until)
        {
            return false;
        }

        var action = _queue.Dequeue();
        Now = key.Time;
        action();
        return true;
    }

    /// <summary>Moves the clock forward to <paramref name="time"/> once nothing earlier is pending.</summary>
    public void AdvanceTo(long time) => Now = Math.Max(Now, time);
}
