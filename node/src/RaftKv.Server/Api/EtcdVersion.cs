namespace RaftKv.Server.Api;

/// <summary>
/// The etcd version raftkv reports (Status, /version, etcd_server_version). Clients switch features on by version
/// (kube-apiserver: watch progress requests only from 3.5.13), so this names only what is really implemented.
/// </summary>
internal static class EtcdVersion
{
    /// <summary>The server version: etcd 3.4's API surface.</summary>
    public const string Server = "3.4.0";

    /// <summary>The cluster version (major.minor.0, as etcd reports it).</summary>
    public const string Cluster = "3.4.0";
}
