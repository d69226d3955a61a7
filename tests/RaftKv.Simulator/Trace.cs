using System.Globalization;

namespace RaftKv.Simulator;

/// <summary>
/// A readable, deterministic log of a run: one line per event, prefixed by virtual time. Kept only when asked
/// (tracing every run would cost more than the run); the last lines are kept regardless, for failure reports.
/// </summary>
internal sealed class Trace(EventQueue clock, bool enabled, TextWriter? sink)
{
    private const int TailLength = 60;
    private readonly Queue<string> _tail = new();

    public bool Enabled => enabled;

    /// <summary>Lines written (when enabled) or the tail (when not).</summary>
    public IReadOnlyCollection<string> Tail => _tail;

    public void Line(string text)
    {
        var line = Format(clock.Now) + " " + text;
        if (enabled)
        {
            sink?.WriteLine(line);
        }

        _tail.Enqueue(line);
        if (_tail.Count > TailLength)
        {
            _tail.Dequeue();
        }
    }

    /// <summary>Microseconds as "12345.678ms".</summary>
    public static string Format(long micros) =>
        string.Create(CultureInfo.InvariantCulture, $"{micros / 1000,7}.{micros % 1000:D3}ms");
}
