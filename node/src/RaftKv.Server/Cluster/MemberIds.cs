using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace RaftKv.Server.Cluster;

/// <summary>
/// Member and cluster ids computed exactly as etcd computes them, so a raftkv cluster started with an etcd command line
/// has the ids etcd would have given it.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5350:Do Not Use Weak Cryptographic Algorithms",
    Justification = "SHA-1 here is an id derivation that must equal etcd's, not a security measure.")]
internal static class MemberIds
{
    /// <summary>
    /// etcd's <c>computeMemberID</c>: SHA-1 over the member's peer URLs (sorted, concatenated), then the cluster token
    /// (for founding members) and the Unix time in seconds (for members added later), first 8 bytes big-endian.
    /// </summary>
    public static ulong ComputeMemberId(IEnumerable<string> peerUrls, string clusterToken, DateTimeOffset? addedAt = null)
    {
        var sorted = peerUrls.ToList();
        sorted.Sort(StringComparer.Ordinal);
        var text = string.Concat(sorted) + clusterToken;
        if (addedAt is { } t)
        {
            text += t.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var hash = SHA1.HashData(Encoding.UTF8.GetBytes(text));
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }

    /// <summary>etcd's <c>genID</c>: SHA-1 over the sorted member ids as 8-byte big-endian values, first 8 bytes big-endian.</summary>
    public static ulong ComputeClusterId(IEnumerable<ulong> memberIds)
    {
        var ids = memberIds.Order().ToArray();
        var buffer = new byte[8 * ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(buffer.AsSpan(8 * i), ids[i]);
        }

        return BinaryPrimitives.ReadUInt64BigEndian(SHA1.HashData(buffer));
    }

    /// <summary>A URL as Go's <c>url.URL.String()</c> prints what the user wrote (the text as given).</summary>
    public static string UrlText(Uri url) => url.OriginalString;

    /// <summary>Ids are shown as etcd shows them: lowercase hex without padding.</summary>
    public static string Hex(ulong id) => id.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
}
