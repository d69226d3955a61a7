using System.Reflection;
using System.Runtime.InteropServices;
using LightningDB;

namespace RaftKv.Storage.Mvcc;

/// <summary>
/// Where LMDB's native library comes from. LightningDB ships one built against glibc 2.38; on older systems (Debian 12 has
/// 2.36) it cannot load, so we fall back to the system's <c>liblmdb.so.0</c> (Debian package <c>liblmdb0</c>).
/// </summary>
internal static class LmdbLibrary
{
    private static int _installed;

    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 1)
        {
            return;
        }

        NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly, Resolve);
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!name.Contains("lmdb", StringComparison.OrdinalIgnoreCase))
        {
            return IntPtr.Zero;
        }

        if (NativeLibrary.TryLoad(name, assembly, searchPath, out var bundled))
        {
            return bundled;
        }

        foreach (var candidate in new[] { "liblmdb.so.0", "liblmdb.so" })
        {
            if (NativeLibrary.TryLoad(candidate, out var system))
            {
                return system;
            }
        }

        throw new DllNotFoundException(
            "LMDB could not be loaded: LightningDB's bundled library needs glibc 2.38 and no system liblmdb was found. " +
            "Install it (Debian/Ubuntu: apt-get install liblmdb0).");
    }
}
