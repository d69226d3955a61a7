using System.Globalization;
using System.Text;

namespace RaftKv;

/// <summary>
/// Durations as Go and Kubernetes write them (Go's <c>time.Duration</c> text, also what CEL's <c>duration()</c>
/// reads): a sequence of decimal numbers, each with an optional fraction and a unit among
/// <c>ns us µs ms s m h</c>, e.g. <c>"100ms"</c>, <c>"1.5s"</c>, <c>"1m30s"</c>. Only non-negative values are
/// accepted: every duration RaftKV reads (timings, retention) is a length of time, never an offset.
/// </summary>
internal static class GoDuration
{
    /// <summary>
    /// The pattern the CRD puts on duration fields so the API server rejects malformed text before a CEL
    /// rule calls <c>duration()</c> on it. It accepts exactly what <see cref="TryParse(string?, out TimeSpan, out string)"/> accepts, minus overflow.
    /// </summary>
    public const string Pattern = "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$";

    private const long TicksPerMicrosecond = TimeSpan.TicksPerMillisecond / 1000;

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says what is wrong and what is expected.</summary>
    public static bool TryParse(string? text, out TimeSpan value, out string error)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            error = "a duration is required, e.g. \"100ms\" or \"1.5s\"";
            return false;
        }

        if (text == "0")
        {
            error = "";
            return true;
        }

        if (text[0] is '-' or '+')
        {
            error = $"\"{text}\" is not a valid duration: it must not be signed (a length of time such as \"100ms\")";
            return false;
        }

        decimal totalTicks = 0;
        var i = 0;
        while (i < text.Length)
        {
            var numberStart = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            var number = text[numberStart..i];
            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            var unit = text[unitStart..i];
            if (number.Length == 0 || number[0] == '.' || number[^1] == '.' || number.Count(c => c == '.') > 1
                || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                error = $"\"{text}\" is not a valid duration: expected numbers with units such as \"100ms\", \"1.5s\" or \"1m30s\"";
                return false;
            }

            if (UnitTicks(unit) is not { } ticksPerUnit)
            {
                error = unit.Length == 0
                    ? $"\"{text}\" is not a valid duration: \"{number}\" has no unit (use ns, us, ms, s, m or h, e.g. \"{number}ms\")"
                    : $"\"{text}\" is not a valid duration: unknown unit \"{unit}\" (use ns, us, ms, s, m or h)";
                return false;
            }

            try
            {
                totalTicks += amount * ticksPerUnit;
            }
            catch (OverflowException)
            {
                totalTicks = decimal.MaxValue;
            }

            if (totalTicks > TimeSpan.MaxValue.Ticks)
            {
                error = $"\"{text}\" is not a valid duration: it is too long";
                return false;
            }
        }

        // TimeSpan counts 100 ns ticks; anything finer is truncated, as it is meaningless for Raft timing.
        value = TimeSpan.FromTicks((long)decimal.Truncate(totalTicks));
        error = "";
        return true;
    }

    /// <summary>Parses <paramref name="text"/>, without the reason on failure.</summary>
    public static bool TryParse(string? text, out TimeSpan value) => TryParse(text, out value, out _);

    /// <summary>Parses <paramref name="text"/> or throws <see cref="FormatException"/> with the reason.</summary>
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var value, out var error) ? value : throw new FormatException(error);

    /// <summary>
    /// Formats as Go's <c>Duration.String()</c> does: <c>"0s"</c>, <c>"250µs"</c>, <c>"100ms"</c>, <c>"1.5s"</c>,
    /// <c>"1m30s"</c>, <c>"2h0m0s"</c>; the shortest text that parses back to the same value.
    /// </summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "durations here are lengths of time, never negative");
        }

        var ticks = value.Ticks;
        if (ticks == 0)
        {
            return "0s";
        }

        if (ticks < TimeSpan.TicksPerSecond)
        {
            // Below a second Go picks the largest unit below the value: ns, µs or ms, with a fraction.
            if (ticks < TicksPerMicrosecond)
            {
                return (ticks * 100).ToString(CultureInfo.InvariantCulture) + "ns";
            }

            return ticks < TimeSpan.TicksPerMillisecond
                ? Fraction(ticks, TicksPerMicrosecond) + "µs"
                : Fraction(ticks, TimeSpan.TicksPerMillisecond) + "ms";
        }

        var text = new StringBuilder();
        var hours = ticks / TimeSpan.TicksPerHour;
        var minutes = ticks % TimeSpan.TicksPerHour / TimeSpan.TicksPerMinute;
        var secondTicks = ticks % TimeSpan.TicksPerMinute;
        if (hours > 0)
        {
            text.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }

        if (hours > 0 || minutes > 0)
        {
            text.Append(minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        }

        text.Append(Fraction(secondTicks, TimeSpan.TicksPerSecond)).Append('s');
        return text.ToString();
    }

    /// <summary>Formats <paramref name="ticks"/> in units of <paramref name="ticksPerUnit"/>, without trailing zeros.</summary>
    private static string Fraction(long ticks, long ticksPerUnit)
    {
        var whole = ticks / ticksPerUnit;
        var rest = ticks % ticksPerUnit;
        if (rest == 0)
        {
            return whole.ToString(CultureInfo.InvariantCulture);
        }

        var digits = (int)Math.Log10(ticksPerUnit);
        var fraction = rest.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        return whole.ToString(CultureInfo.InvariantCulture) + "." + fraction;
    }

    private static decimal? UnitTicks(string unit) => unit switch
    {
        "ns" => 0.01m,
        "us" or "µs" or "μs" => TicksPerMicrosecond,
        "ms" => TimeSpan.TicksPerMillisecond,
        "s" => TimeSpan.TicksPerSecond,
        "m" => TimeSpan.TicksPerMinute,
        "h" => TimeSpan.TicksPerHour,
        _ => null,
    };
}
