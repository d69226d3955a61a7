namespace RaftKv.Server.Configuration;

/// <summary>A command line or environment that cannot start a member; the message says what to change.</summary>
internal sealed class ConfigException(string message) : Exception(message);
