using System.Diagnostics;
using System.Text;

namespace RaftKv.Server.Tests.Cluster;

/// <summary>etcd's Watch API driven with etcdctl 3.4's long-running watch command.</summary>
public sealed class WatchTests
{
    [Fact]
    public async Task Watch_replays_history_with_prev_kv_and_then_follows_live_writes()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.WaitForLeaderAsync();
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "w/a", "1");
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "w/a", "2");
        await Etcdctl.OkAsync(cluster.Endpoint(0), "put", "other", "x");

        await using var watch = WatchProcess.Start(cluster.Endpoint(1), "watch", "w/", "--prefix", "--rev=2", "--prev-kv");
        // etcdctl prints the event type, then the previous key/value (when there is one), then the key/value.
        await watch.WaitForAsync("PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\n");

        await Etcdctl.OkAsync(cluster.Endpoint(2), "del", "w/a");
        await Etcdctl.OkAsync(cluster.Endpoint(2), "put", "w/b", "3");
        await watch.WaitForAsync("DELETE\nw/a\n2\nw/a\n\nPUT\nw/b\n3\n");
        Assert.DoesNotContain("other", watch.Output, StringComparison.Ordinal);
    }

    /// <summary>An etcdctl process that keeps running; its output is collected as it comes.</summary>
    private sealed class WatchProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly Lock _lock = new();

        private WatchProcess(Process process) => _process = process;

        public string Output
        {
            get
            {
                lock (_lock)
                {
                    return _output.ToString();
                }
            }
        }

        public static WatchProcess Start(string endpoints, params string[] args)
        {
            var psi = new ProcessStartInfo(Etcdctl.Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.Environment["ETCDCTL_API"] = "3";
            psi.ArgumentList.Add("--endpoints=" + endpoints);
            foreach (var a in args)
            {
                psi.ArgumentList.Add(a);
            }

            var process = new Process { StartInfo = psi };
            var watch = new WatchProcess(process);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (watch._lock)
                    {
                        watch._output.Append(e.Data).Append('\n');
                    }
                }
            };
            process.ErrorDataReceived += (_, _) => { };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return watch;
        }

        public Task WaitForAsync(string expected) =>
            Eventually.TrueAsync(() => Output.Contains(expected, StringComparison.Ordinal), () => $"watch output so far:\n{Output}\n--- expected to contain:\n{expected}");

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync();
            _process.Dispose();
        }
    }
}
