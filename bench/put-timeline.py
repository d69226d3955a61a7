#!/usr/bin/python3
"""Where a single-client put's time goes: a syscall timeline across the client, the leader and the followers.

Starts one 3-member cluster per system on loopback (bench/cpu-per-request.py's Cluster: the same etcd command lines),
warms it up, then traces the members and this client with `perf trace` (socket reads and writes, WAL fdatasync) while
it makes sequential 256 B puts to the leader, 20 ms apart so that each put's syscalls stand alone. Per put it finds the
milestones below and prints the median gap between consecutive ones per system, side by side:

  client send → leader reads the request → leader sends the append → a follower reads it → that follower's WAL
  fdatasync ends → it sends the ack → leader reads the ack → leader writes the response → client reads it

--gets traces linearizable gets instead: the leader's ReadIndex heartbeat and the follower's answer replace the append,
the fdatasync and the ack.

Tracing slows every traced syscall (a put takes ~2-3x longer under it): compare systems and segments within one run,
not with untraced latencies. Usage: bench/put-timeline.py [--system NAME=PROGRAM ...] [--puts N] [--gets] [--show N]
Defaults: raftkv=bin/raftkv and etcd=/usr/bin/etcd, 300 puts; --show N prints the N puts nearest the median in full.
"""
import argparse
import importlib.util
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("cpu_per_request", os.path.join(here, "bench", "cpu-per-request.py"))
cpr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpr)

SOCKET_READS = {"read", "recvfrom", "recvmsg"}
SOCKET_WRITES = {"write", "writev", "sendto", "sendmsg"}
LINE = re.compile(r"^\s*([\d.]+) \(\s*([\d.]+) ms\): (.+?)/(\d+) (\w+)\((.*?)\)\s+=\s+(-?\d+)")
STARTED = re.compile(r"^\s*([\d.]+) \(\s*\): .+?/(\d+) (\w+)\((.*?)\)\s+\.\.\.\s*$")
CONTINUED = re.compile(r"^\s*\S+ \(\s*([\d.]+) ms\): .+?/(\d+)\s+\.\.\. \[continued\]: (\w+)\(\)\)\s+=\s+(-?\d+)")
MILESTONES = ["client send", "leader reads request", "leader sends append", "follower reads append",
              "follower fdatasync ends", "follower sends ack", "leader reads ack", "leader writes response", "client reads response"]
# --gets: the leader's message is the ReadIndex heartbeat and the follower's answer waits for no fsync (None: not shown)
GET_MILESTONES = ["client send", "leader reads request", "leader sends heartbeat", "follower reads it", None,
                  "follower answers", "leader reads the answer", "leader writes response", "client reads response"]


def sockets_of(pid):
    """fd → True for the sockets of a process (files otherwise)."""
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return fds


def trace_requests(cluster, n, gets):
    """Traces n puts; returns (events, roles by pid, socket fds by pid). An event: (ms, duration ms, pid, call, fd, result)."""
    status = cluster.leader.status()
    leader_port = int(status.leader.client_urls[0].rsplit(":", 1)[1])
    leader = cluster.pids[cluster.client_ports.index(leader_port)]
    roles = {leader: "leader", os.getpid(): "client"}
    for p in cluster.pids:
        roles.setdefault(p, "follower")
    out = os.path.join(cluster.root, "trace.txt")
    pids = list(roles)
    tracer = subprocess.Popen(["perf", "trace", "-o", out, "-p", ",".join(map(str, pids)),
                               "-e", ",".join(sorted(SOCKET_READS | SOCKET_WRITES | {"fdatasync"}))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)  # perf attaches
    for i in range(n):
        if gets:
            cluster.leader.get(f"t{i:06d}")  # linearizable (python3-etcd3's default): a ReadIndex round
        else:
            cluster.leader.put(f"t{i:06d}", b"v" * 256)
        time.sleep(0.02)
    time.sleep(0.5)
    tracer.send_signal(signal.SIGINT)
    tracer.wait()
    fds = {p: sockets_of(p) for p in pids}
    tasks = {}
    for p in pids:
        for t in os.listdir(f"/proc/{p}/task"):
            tasks[int(t)] = p
    events = []
    started = {}  # a call that other events interrupted: its start line, then "... [continued]" with duration and result
    with open(out) as f:
        for line in f:
            if m := LINE.match(line):
                t, dur, _, tid, call, args, ret = m.groups()
            elif m := STARTED.match(line):
                started[m.group(2)] = m.groups()
                continue
            elif (m := CONTINUED.match(line)) and m.group(2) in started:
                t, tid, call, args = started.pop(m.group(2))
                dur, ret = m.group(1), m.group(4)
            else:
                continue
            fd = re.search(r"fd: (\d+)", args)
            if int(tid) in tasks and fd:
                events.append((float(t), float(dur), tasks[int(tid)], call, int(fd.group(1)), int(ret)))
    events.sort()
    return events, roles, fds


def milestones(window, roles, fds, gets):
    """The milestone times (ms) of one put's events, or None when one is missing."""
    def first(after, role, calls, want_socket=True, fd=None, end=False):
        for t, dur, pid, call, f, ret in window:
            if t >= after and roles[pid] == role and call in calls and ret > 0 if call != "fdatasync" else t >= after and roles[pid] == role and call in calls:
                if fds[pid].get(f, True) == want_socket and (fd is None or f == fd[1] and pid == fd[0]):
                    return (t + dur if end else t), (pid, f)
        return None, None

    client_send, _ = first(0, "client", SOCKET_WRITES)
    if client_send is None:
        return None
    request, client_fd = first(client_send, "leader", SOCKET_READS)
    if request is None:
        return None
    # the append goes to a peer socket: any leader socket write other than the client's connection
    append = next((t for t, _, pid, call, f, ret in window if t >= request and roles[pid] == "leader" and call in SOCKET_WRITES
                   and ret > 0 and fds[pid].get(f) and (pid, f) != client_fd), None)
    if append is None:
        return None
    follower_read, follower = first(append, "follower", SOCKET_READS)
    if follower_read is None:
        return None
    fsync_end = follower_read if gets else next(
        (t + d for t, d, pid, call, f, ret in window if t >= follower_read and pid == follower[0] and call == "fdatasync"), None)
    if fsync_end is None:
        return None
    ack = next((t for t, _, pid, call, f, ret in window if t >= fsync_end and pid == follower[0] and call in SOCKET_WRITES and ret > 0
                and fds[pid].get(f)), None)
    if ack is None:
        return None
    ack_read = next((t for t, _, pid, call, f, ret in window if t >= ack and roles[pid] == "leader" and call in SOCKET_READS and ret > 0
                     and (pid, f) != client_fd), None)
    if ack_read is None:
        return None
    response = next((t for t, _, pid, call, f, ret in window if t >= ack_read and (pid, f) == client_fd and call in SOCKET_WRITES and ret > 0), None)
    if response is None:
        return None
    client_read = next((t for t, _, pid, call, f, ret in window if t >= response and roles[pid] == "client" and call in SOCKET_READS and ret > 0), None)
    if client_read is None:
        return None
    return [client_send, request, append, follower_read, fsync_end, ack, ack_read, response, client_read]


def windows(events, gap_ms=5.0):
    """Splits the events where nothing happened for gap_ms; keeps those in which the client sent something."""
    out, current = [], []
    for e in events:
        if current and e[0] - max(c[0] + c[1] for c in current[-8:]) > gap_ms:
            out.append(current)
            current = []
        current.append(e)
    out.append(current)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", action="append", default=[], metavar="NAME=PROGRAM")
    ap.add_argument("--puts", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=1500)
    ap.add_argument("--show", type=int, default=0)
    ap.add_argument("--gets", action="store_true", help="linearizable gets instead of puts (the ReadIndex heartbeat round)")
    a = ap.parse_args()
    systems = [(n, os.path.abspath(p)) for n, p in (s.split("=", 1) for s in (a.system or [f"raftkv={os.path.join(here, 'bin', 'raftkv')}", "etcd=/usr/bin/etcd"]))]
    root = tempfile.mkdtemp(prefix="put-timeline-")
    clusters = []
    results = {}
    try:
        for name, program in systems:
            clusters.append(cpr.Cluster(name, program, root, perf_map=False))
        for c in clusters:
            c.wait_leader()
            cpr.run_puts(c, a.warmup, b"v" * 256)
        for c in clusters:
            events, roles, fds = trace_requests(c, a.puts, a.gets)
            pairs = sorted(((m, w) for w in windows(events) if (m := milestones(w, roles, fds, a.gets)) is not None), key=lambda p: p[0][-1] - p[0][0])
            results[c.name] = [m for m, _ in pairs]
            for m, w in pairs[len(pairs) // 2 - a.show // 2: len(pairs) // 2 - a.show // 2 + a.show]:
                print(f"{c.name}: " + ", ".join(f"{name} +{(t - m[0]) * 1000:.0f} µs" for name, t in zip(GET_MILESTONES if a.gets else MILESTONES, m) if name))
                for t, dur, pid, call, fd, ret in w:
                    if m[0] <= t <= m[-1]:
                        kind = "socket" if fds[pid].get(fd) else "file"
                        print(f"  +{(t - m[0]) * 1000:6.0f} µs {roles[pid]:8} {pid:>7} {call}({kind} {fd}) = {ret}  [{dur * 1000:.0f} µs]")
    finally:
        for c in clusters:
            c.stop()
        shutil.rmtree(root, ignore_errors=True)  # data dirs and traces
    names = GET_MILESTONES if a.gets else MILESTONES
    print(f"load average {os.getloadavg()[0]:.1f}; median µs per segment over traced {'gets' if a.gets else 'puts'} (n = found/{a.puts})")
    print("| segment | " + " | ".join(f"{n} (n={len(results[n])})" for n, _ in systems) + " |")
    print("|---|" + "---:|" * len(systems))
    for i in [i for i in range(1, len(names)) if names[i] is not None]:
        before = max(j for j in range(i) if names[j] is not None)
        row = [f"{statistics.median(m[i] - m[before] for m in results[n]) * 1000:.0f}" if results[n] else "-" for n, _ in systems]
        print(f"| {names[before]} → {names[i]} | " + " | ".join(row) + " |")
    row = [f"{statistics.median(m[-1] - m[0] for m in results[n]) * 1000:.0f}" if results[n] else "-" for n, _ in systems]
    print(f"| whole {'get' if a.gets else 'put'} (traced) | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
