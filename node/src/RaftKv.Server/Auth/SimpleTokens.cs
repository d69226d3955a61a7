using System.Globalization;

namespace RaftKv.Server.Auth;

/// <summary>
/// etcd's simple tokens: <c>&lt;16 random letters&gt;.&lt;Raft index&gt;</c>. The member that checks the password picks the letters;
/// every member issues the token to the user when it applies the Authenticate entry at that index, so a token is valid on
/// all members. A token lives <see cref="Ttl"/> since its last use (etcd's --auth-token-ttl); tokens are kept in memory only
/// (a restarted member knows the tokens of the entries it replays), as etcd's.
/// </summary>
internal sealed class SimpleTokens
{
    private const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    private const int PrefixLength = 16;

    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string User, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);
    private DateTimeOffset _lastSweep;

    public SimpleTokens(TimeSpan ttl, TimeProvider time)
    {
        Ttl = ttl;
        _time = time;
        _lastSweep = time.GetUtcNow();
    }

    public TimeSpan Ttl { get; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _tokens.Count;
            }
        }
    }

    /// <summary>16 letters from a cryptographic random source (etcd's genTokenPrefix).</summary>
    public static string NewPrefix() => System.Security.Cryptography.RandomNumberGenerator.GetString(Letters, PrefixLength);

    public static string Token(string prefix, ulong index) => prefix + "." + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The Raft index a well-formed token names (etcd's isValidSimpleToken: two parts, the second a number).</summary>
    public static bool TryParseIndex(string token, out ulong index)
    {
        index = 0;
        var parts = token.Split('.');
        return parts.Length == 2 && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out index);
    }

    public void Assign(string token, string user)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            _tokens[token] = (user, now + Ttl);
            if (now - _lastSweep > TimeSpan.FromSeconds(1))
            {
                _lastSweep = now;
                foreach (var expired in _tokens.Where(t => t.Value.Expires <= now).Select(t => t.Key).ToList())
                {
                    _tokens.Remove(expired);
                }
            }
        }
    }

    /// <summary>The user of a live token, whose lifetime starts over (etcd resets it on every use); null if unknown or expired.</summary>
    public string? Use(string token)
    {
        lock (_gate)
        {
            if (!_tokens.TryGetValue(token, out var entry))
            {
                return null;
            }

            var now = _time.GetUtcNow();
            if (entry.Expires <= now)
            {
                _tokens.Remove(token);
                return null;
            }

            _tokens[token] = (entry.User, now + Ttl);
            return entry.User;
        }
    }

    /// <summary>Drops the user's tokens (its password changed or it was deleted).</summary>
    public void InvalidateUser(string user)
    {
        lock (_gate)
        {
            foreach (var token in _tokens.Where(t => t.Value.User == user).Select(t => t.Key).ToList())
            {
                _tokens.Remove(token);
            }
        }
    }

    /// <summary>Drops every token whose user <paramref name="keep"/> refuses (all of them on auth disable).</summary>
    public void Retain(Func<string, bool> keep)
    {
        lock (_gate)
        {
            foreach (var token in _tokens.Where(t => !keep(t.Value.User)).Select(t => t.Key).ToList())
            {
                _tokens.Remove(token);
            }
        }
    }
}
