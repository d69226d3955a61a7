using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Prometheus;
using RaftKv.Server.Api;
using RaftKv.Server.Observability;

namespace RaftKv.Server.Node;

/// <summary>etcd's plain-HTTP endpoints on the client port: /health, /livez, /readyz, /version, /metrics.</summary>
internal static class HttpEndpoints
{
    public static void Map(IEndpointRouteBuilder app, RaftMember member, NodeMetrics metrics)
    {
        app.MapGet("/health", async context =>
        {
            var (healthy, reason) = await CheckHealthAsync(member, context.RequestAborted).ConfigureAwait(false);
            (healthy ? metrics.HealthSuccess : metrics.HealthFailures).Inc();
            context.Response.StatusCode = healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(
                JsonSerializer.Serialize(new Dictionary<string, string> { ["health"] = healthy ? "true" : "false", ["reason"] = reason }),
                context.RequestAborted).ConfigureAwait(false);
        });

        app.MapGet("/livez", context => WriteChecksAsync(context, [("serializable_read", Task.FromResult((true, "")))]));
        app.MapGet("/readyz", context => WriteChecksAsync(context,
        [
            ("data_corruption", Task.FromResult((true, ""))),
            ("serializable_read", Task.FromResult((true, ""))),
            ("linearizable_read", CheckHealthAsync(member, context.RequestAborted)),
        ]));

        app.MapGet("/version", async context =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(
                JsonSerializer.Serialize(new Dictionary<string, string> { ["etcdserver"] = EtcdVersion.Server, ["etcdcluster"] = EtcdVersion.Cluster }),
                context.RequestAborted).ConfigureAwait(false);
        });

        app.MapMetrics("/metrics", metrics.Registry);
    }

    /// <summary>etcd's health: a leader is known and a linearizable read completes in time.</summary>
    private static async Task<(bool Healthy, string Reason)> CheckHealthAsync(RaftMember member, CancellationToken cancellationToken)
    {
        if (member.Leader == 0)
        {
            return (false, "RAFT NO LEADER");
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(1) + TimeSpan.FromMilliseconds(member.Timing.ElectionMs));
            await member.ReadBarrierAsync(timeout.Token).ConfigureAwait(false);
            return (true, "");
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException)
        {
            return (false, "QGET ERROR:" + e.Message);
        }
    }

    /// <summary>etcd's /livez and /readyz: "ok" or a list of failed checks, 503; <c>?verbose</c> lists every check.</summary>
    private static async Task WriteChecksAsync(HttpContext context, (string Name, Task<(bool Ok, string Reason)> Check)[] checks)
    {
        var verbose = context.Request.Query.ContainsKey("verbose");
        var lines = new List<string>();
        var failed = false;
        foreach (var (name, check) in checks)
        {
            var (ok, _) = await check.ConfigureAwait(false);
            failed |= !ok;
            if (verbose || !ok)
            {
                lines.Add(ok ? $"[+]{name} ok" : $"[-]{name} failed: reason withheld");
            }
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.StatusCode = failed ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
        lines.Add(failed ? $"{context.Request.Path.Value?.TrimStart('/')} check failed" : "ok");
        await context.Response.WriteAsync(string.Join('\n', lines) + "\n", context.RequestAborted).ConfigureAwait(false);
    }
}
