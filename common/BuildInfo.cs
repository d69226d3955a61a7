using System.Reflection;
using System.Runtime.InteropServices;

namespace RaftKv;

/// <summary>Version facts read from a program's assembly, printed by both programs' <c>--version</c> in etcd's layout.</summary>
internal static class BuildInfo
{
    /// <summary>The product version of <paramref name="assembly"/>, e.g. <c>0.1.0</c>, without the source revision suffix.</summary>
    public static string Version(Assembly assembly) => SplitInformationalVersion(assembly).Version;

    public static string Describe(string program, Assembly assembly)
    {
        var (version, sha) = SplitInformationalVersion(assembly);
        var os = RuntimeInformation.OSDescription.Split(' ')[0].ToLowerInvariant();
        var arch = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();
        return $"""
            {program} Version: {version}
            Git SHA: {sha}
            .NET Version: {RuntimeInformation.FrameworkDescription}
            OS/Arch: {os}/{arch}
            """;
    }

    private static (string Version, string Sha) SplitInformationalVersion(Assembly assembly)
    {
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? (informational, "unknown") : (informational[..plus], informational[(plus + 1)..]);
    }
}
