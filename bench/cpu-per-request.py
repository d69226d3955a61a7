#!/usr/bin/python3
"""CPU and latency per single-client request (or, with --many, per put under 1000 clients), raftkv against etcd side by side.

Starts one 3-member cluster per system on loopback free ports (the same etcd command lines for each), warms each up
with sequential puts, then runs rounds of sequential 256 B puts and linearizable gets from python3-etcd3 against each
leader, alternating the systems within every round so they meet the same noise. For every round and system it prints
the members' CPU (utime+stime from /proc/PID/stat, summed over the three members) per request and the wall-clock
p50/p90 per request. Compare systems within one run: this machine is shared and its absolute figures wander.

Usage:
  bench/cpu-per-request.py [--system NAME=PROGRAM ...] [--puts N] [--gets N] [--rounds N] [--warmup N] [--perf SYSTEM]
  bench/cpu-per-request.py --many N [--clients 1000] [--loadgen DLL] [--syscalls NAME,...] [--perf SYSTEM [--perf-event EV]]
                           [--system NAME=PROGRAM ...] [--rounds N]

Defaults: raftkv=bin/raftkv and etcd=/usr/bin/etcd, 1000 puts and 1000 gets per round, 3 rounds, 1500 warm-up puts.
A system may be given twice under different names (say, a build of main and a build of a branch).
--perf NAME records `perf record -F 2000 -g` of that system's members during its puts of the last round
(perf.data in the run's temp dir, printed at the end; raftkv members then run with DOTNET_PerfMapEnabled=1).
--many N runs N puts per round from --clients concurrent clients (the comparison run's 1000-client put shape, through
the load generator's workload mode; build it first: dotnet build bench/RaftKv.LoadGenerator -c Release) and prints
members' CPU per put, throughput and p99 per system. With it, --syscalls futex,pwrite64,... counts those syscalls of the
members per put (perf stat), and --perf-event syscalls:sys_enter_futex makes --perf record that event instead of samples.
--futex counts the members' futex calls per put with `perf stat` (thread wake-ups and sleeps: the cost that separates
raftkv from etcd; strace -c slows every call so much that it blurs the difference between builds).
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import etcd3

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total


class Cluster:
    def __init__(self, name, program, root, perf_map):
        self.name = name
        self.root = os.path.join(root, name)
        os.makedirs(self.root)
        ports = free_ports(6)
        self.client_ports = ports[:3]
        names = ["m1", "m2", "m3"]
        initial = ",".join(f"{n}=http://127.0.0.1:{ports[3 + i]}" for i, n in enumerate(names))
        env = dict(os.environ)
        if perf_map:
            env["DOTNET_PerfMapEnabled"] = "1"
            env["DOTNET_EnableWriteXorExecute"] = "0"
        self.procs = []
        for i, n in enumerate(names):
            log = open(os.path.join(self.root, n + ".log"), "w")
            args = [program, "--name", n, "--data-dir", os.path.join(self.root, n),
                    "--listen-client-urls", f"http://127.0.0.1:{ports[i]}",
                    "--advertise-client-urls", f"http://127.0.0.1:{ports[i]}",
                    "--listen-peer-urls", f"http://127.0.0.1:{ports[3 + i]}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports[3 + i]}",
                    "--initial-cluster", initial, "--initial-cluster-token", "cpu-" + name,
                    "--initial-cluster-state", "new"]
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                               cwd=self.root, start_new_session=True))
        self.pids = [p.pid for p in self.procs]
        self.leader = None

    def wait_leader(self, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name}: member {p.pid} exited with {p.returncode}; see {self.root}")
            try:
                c = etcd3.client("127.0.0.1", self.client_ports[0], timeout=2)
                leader = c.status().leader
                url = leader.client_urls[0]
                port = int(url.rsplit(":", 1)[1])
                self.leader = etcd3.client("127.0.0.1", port, timeout=10)
                self.leader.put("probe", "x")
                return
            except Exception as e:  # not up yet
                last = e
                time.sleep(0.2)
        raise RuntimeError(f"{self.name}: no leader within {timeout} s ({last}); see {self.root}")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()


def run_puts(cluster, n, value, key_space=100000):
    lat = []
    c = cluster.leader
    before, sw = cpu_ticks(cluster.pids), switches(cluster.pids)
    for i in range(n):
        t = time.perf_counter()
        c.put(f"k{(i * 7919) % key_space:07d}", value)
        lat.append(time.perf_counter() - t)
    after, sw = cpu_ticks(cluster.pids), switches(cluster.pids) - sw
    return lat, (after - before) / CLK_TCK / n, sw / n


def run_gets(cluster, n):
    lat = []
    c = cluster.leader
    before, sw = cpu_ticks(cluster.pids), switches(cluster.pids)
    for i in range(n):
        t = time.perf_counter()
        c.get(f"k{(i * 7919) % 1000:07d}")  # linearizable (python3-etcd3's default)
        lat.append(time.perf_counter() - t)
    after, sw = cpu_ticks(cluster.pids), switches(cluster.pids) - sw
    return lat, (after - before) / CLK_TCK / n, sw / n


def run_many(cluster, loadgen, n, clients):
    """n puts from `clients` concurrent clients on clients/10 connections to every member (the comparison run's 1000-client
    put row), by the load generator; returns (throughput/s, p99 ms, members' CPU per put in seconds, errors)."""
    endpoints = ",".join(f"127.0.0.1:{p}" for p in cluster.client_ports)
    before = cpu_ticks(cluster.pids)
    out = subprocess.run(["dotnet", loadgen, "put", "--endpoints", endpoints, "--clients", str(clients),
                          "--conns", str(max(1, clients // 10)), "--total", str(n), "--key-space", "100000",
                          "--target", "all", "--max-seconds", "60"],
                         capture_output=True, text=True, check=True).stdout
    after = cpu_ticks(cluster.pids)
    # "<system>: N done, E errors in S s = T/s; p50 .. p90 .. p99 X ms max .."
    line = [ln for ln in out.splitlines() if " done, " in ln][-1]
    done = int(line.split(": ", 1)[1].split(" done")[0])
    errors = int(line.split(" done, ")[1].split(" errors")[0])
    rate = float(line.split(" = ")[1].split("/s")[0].replace(",", ""))
    p99 = line.split(" p99 ")[1].split(" ms")[0]
    return rate, float(p99), (after - before) / CLK_TCK / max(1, done), errors


def switches(pids):
    """Context switches summed over every thread of the members (thread hops: each wake of a sleeping thread is one)."""
    total = 0
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except FileNotFoundError:
                pass  # thread ended meanwhile
    return total


def start_syscall_count(pids, names, out):
    """perf stat counting entries into the syscalls NAMES (e.g. futex, pwrite64) by PIDS, written to OUT."""
    events = ",".join(f"syscalls:sys_enter_{n}" for n in names)
    proc = subprocess.Popen(["perf", "stat", "-e", events, "-o", out, "-p", ",".join(map(str, pids))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches
    return proc


def stop_syscall_count(proc, out):
    """Stops a start_syscall_count; returns {syscall name: count}."""
    proc.send_signal(signal.SIGINT)
    proc.wait()
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("syscalls:sys_enter_"):
                counts[parts[1].removeprefix("syscalls:sys_enter_")] = float(parts[0].replace(",", ""))
    return counts


def start_perf(pids, out, event=None, frequency=999):
    """perf record -g of PIDS into OUT: samples at FREQUENCY Hz, or EVENT (e.g. syscalls:sys_enter_futex) when given."""
    proc = subprocess.Popen(["perf", "record"] + (["-e", event] if event else ["-F", str(frequency)]) + ["-g", "-o", out,
                            "-p", ",".join(map(str, pids))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # perf attaches
    return proc


def stop_perf(proc):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait()


def pct(lat, q):
    s = sorted(lat)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--system", action="append", default=[], metavar="NAME=PROGRAM")
    ap.add_argument("--puts", type=int, default=1000)
    ap.add_argument("--gets", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1500)
    ap.add_argument("--perf", metavar="NAME")
    ap.add_argument("--perf-event", metavar="EVENT", help="with --many --perf: record this event (e.g. syscalls:sys_enter_futex) instead of CPU samples")
    ap.add_argument("--futex", action="store_true")
    ap.add_argument("--many", type=int, default=0, metavar="N",
                    help="instead of single-client rounds: N puts per round from --clients concurrent clients (load generator)")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--loadgen", default=None, metavar="DLL")
    ap.add_argument("--syscalls", default="", metavar="NAME,NAME",
                    help="with --many: count these syscalls of the members per put with perf stat (e.g. pwrite64,fdatasync)")
    a = ap.parse_args()
    systems = a.system or [f"raftkv={os.path.join(here, 'bin', 'raftkv')}", "etcd=/usr/bin/etcd"]
    systems = [s.split("=", 1) for s in systems]
    for name, program in systems:
        if not os.access(program, os.X_OK):
            sys.exit(f"{program} is not an executable program (build raftkv with `make build` first)")

    root = tempfile.mkdtemp(prefix="cpu-per-request-")
    clusters = []
    perf = None

    def cleanup(*_):
        stop_perf(perf)
        for c in clusters:
            c.stop()

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(1)))
    try:
        for name, program in systems:
            clusters.append(Cluster(name, program, root, perf_map=(name == a.perf)))
        for c in clusters:
            c.wait_leader()
        value = b"v" * 256
        for c in clusters:
            run_puts(c, a.warmup, value)
            run_gets(c, a.warmup // 3)
        if a.many > 0:
            loadgen = a.loadgen or os.path.join(here, "bench", "RaftKv.LoadGenerator", "bin", "Release", "net10.0",
                                                "RaftKv.LoadGenerator.dll")
            for c in clusters:  # warm-up in the same shape (JIT of both sides)
                run_many(c, loadgen, a.many // 2, a.clients)
            print(f"load average at start: {os.getloadavg()[0]:.2f}; {a.many} puts per round from {a.clients} clients")
            print("| round | system | put CPU/req (µs, 3 members) | throughput (/s) | p99 (ms) | errors | load |")
            print("|---:|---|---:|---:|---:|---:|---:|")
            for r in range(a.rounds):
                order = clusters if r % 2 == 0 else list(reversed(clusters))
                for c in order:
                    if a.perf == c.name and r == a.rounds - 1:
                        perf = start_perf(c.pids, os.path.join(root, "perf.data"), event=a.perf_event)
                    out = os.path.join(root, "syscalls.txt")
                    counter = start_syscall_count(c.pids, a.syscalls.split(","), out) if a.syscalls else None
                    rate, p99, cpu, errors = run_many(c, loadgen, a.many, a.clients)
                    if counter is not None:
                        counts = stop_syscall_count(counter, out)
                        print(f"  {c.name} per put: " + ", ".join(f"{name} {n / a.many:.2f}" for name, n in counts.items()))
                    stop_perf(perf)
                    print(f"| {r + 1} | {c.name} | {cpu * 1e6:.0f} | {rate:,.0f} | {p99:.1f} | {errors} | {os.getloadavg()[0]:.1f} |",
                          flush=True)
            if a.perf:
                print(f"perf data: {os.path.join(root, 'perf.data')}")
            return
        print(f"load average at start: {os.getloadavg()[0]:.2f}; {a.puts} puts and {a.gets} linearizable gets per round")
        print("| round | system | put CPU/req (ms, 3 members) | put switches/req | put futex/req | put p50 (ms) | put p90 | "
              "lin. get CPU/req | get switches/req | get p50 | get p90 | load |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in range(a.rounds):
            order = clusters if r % 2 == 0 else list(reversed(clusters))
            for c in order:
                if a.perf == c.name and r == a.rounds - 1:
                    perf = start_perf(c.pids, os.path.join(root, "perf.data"), frequency=2000)
                out = os.path.join(root, "futex.txt")
                counter = start_syscall_count(c.pids, ["futex"], out) if a.futex else None
                put_lat, put_cpu, put_sw = run_puts(c, a.puts, value)
                put_futex = stop_syscall_count(counter, out).get("futex", float("nan")) / a.puts if counter is not None else float("nan")
                stop_perf(perf)
                get_lat, get_cpu, get_sw = (run_gets(c, a.gets) if a.gets > 0 else ([0.0], 0.0, 0.0))
                print(f"| {r + 1} | {c.name} | {put_cpu * 1000:.2f} | {put_sw:.1f} | {put_futex:.1f} | {pct(put_lat, 0.5):.3f} | {pct(put_lat, 0.9):.3f} | "
                      f"{get_cpu * 1000:.2f} | {get_sw:.1f} | {pct(get_lat, 0.5):.3f} | {pct(get_lat, 0.9):.3f} | {os.getloadavg()[0]:.1f} |",
                      flush=True)
        if a.perf:
            print(f"perf data: {os.path.join(root, 'perf.data')}")
    finally:
        cleanup()
        if not a.perf:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
