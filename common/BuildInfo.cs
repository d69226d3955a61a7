using System.Reflection;
using System.Runtime.InteropServices;

namespace RaftKv;

/// <summary>Version facts read from the entry assembly, printed by both programs' <c>--version</c> in etcd's layout.</summary>
internal static class BuildInfo
{
    /// <summary>The product version, e.g. <c>0.1.0</c>, without the source revision suffix.</summary>
    public static string Version => SplitInformationalVersion().Version;

    /// <summary>The git commit the binary was built from, or <c>unknown</c>.</summary>
    public static string GitSha => SplitInformationalVersion().Sha;

    public static string Describe(string program) =>
        $"""
        {program} Version: {Version}
        Git SHA: {GitSha}
        .NET Version: {RuntimeInformation.FrameworkDescription}
        OS/Arch: {RuntimeInformation.OSDescription.Split(' ')[0].ToLowerInvariant()}/{RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant()}
        """;

    private static (string Version, string Sha) SplitInformationalVersion()
    {
        var informational = (Assembly.GetEntryAssembly() ?? typeof(BuildInfo).Assembly)
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? (informational, "unknown") : (informational[..plus], informational[(plus + 1)..]);
    }
}
