#!/usr/bin/env python3
"""Measurements of the performance issue that `conveyor bench` alone does not give: the
server's CPU under a low open-loop load, its CPU when idle with delayed tasks and idle
keep-alive connections, and the time to serve after a restart with many stored tasks.

  python3 bench/perf_bench.py lowload [--rate 2000] [--seconds 10] [--runs 3]
  python3 bench/perf_bench.py idle [--delayed 10000] [--idle-connections 1000] [--seconds 10]
  python3 bench/perf_bench.py restart [--tasks 1000000] [--runs 3]
  python3 bench/perf_bench.py goals [--runs 3]   (the throughput rows of the goals table)
  python3 bench/perf_bench.py cpu [--rate 8000] [--seconds 6] [--runs 3] [--against BIN]
      (server CPU per request at a fixed open-loop rate of single-task POSTs; with
      --against, the two binaries alternate run by run)

Each starts `build/conveyor serve` (sync unless --durability) on a fresh temp data dir,
reads the server's CPU time from /proc/PID/stat, and stops it by PID. Standard library only.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from foundation_bench import Server, mib  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def bench(binary, url, *args):
    out = subprocess.run([binary, "bench", "--server", url, "--json", *args],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("conveyor bench failed: " + out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cmd_lowload(binary, a):
    """Open loop at --rate tasks/s, e2e (enqueue, lease, ack: three requests a task)."""
    rows = []
    for i in range(a.runs):
        with Server(binary, a.durability, a.threads) as s:
            bench(binary, s.url, "e2e", "--queue", "warm", "--tasks", "200", "--connections", "4")
            c0, t0 = cpu_seconds(s.pid), time.monotonic()
            r = bench(binary, s.url, "e2e", "--queue", "low", "--rate", str(a.rate),
                      "--duration", str(a.seconds), "--connections", str(a.connections))
            c1, t1 = cpu_seconds(s.pid), time.monotonic()
        cores = (c1 - c0) / (t1 - t0)
        lat = r["enqueue_to_lease_ms"]
        rows.append((cores, lat["p50"], lat["p99"], r["tasks_per_second"]))
        print(f"run {i + 1}: {r['tasks']:,} tasks at {r['tasks_per_second']:,.0f}/s, server CPU "
              f"{c1 - c0:.2f} s over {t1 - t0:.1f} s = {cores:.3f} cores; enqueue->lease p50 "
              f"{lat['p50']:.3f} ms p99 {lat['p99']:.3f} ms", flush=True)
    med = [statistics.median(x[k] for x in rows) for k in range(4)]
    print(f"| server CPU at {a.rate:,.0f} tasks/s open loop, {a.durability} | {med[0]:.3f} cores | "
          f"e2e enqueue->lease p50 {med[1]:.3f} ms, p99 {med[2]:.3f} ms; medians of {a.runs} |")


def cmd_idle(binary, a):
    with Server(binary, a.durability, a.threads) as s:
        tasks = [{"payload": {"n": i}, "delay_ms": 3_600_000} for i in range(1000)]
        body = json.dumps({"tasks": tasks}).encode()
        for _ in range(a.delayed // 1000):
            req = urllib.request.Request(s.url + "/v1/queues/idle/tasks", data=body,
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=30).read()
        socks = []
        for _ in range(a.idle_connections):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(c)
        for c in socks:
            c.recv(4096)
        time.sleep(1)
        c0, t0 = cpu_seconds(s.pid), time.monotonic()
        time.sleep(a.seconds)
        c1, t1 = cpu_seconds(s.pid), time.monotonic()
        alive = 0
        for c in socks:
            c.setblocking(False)
            try:
                alive += 0 if c.recv(1) == b"" else 1
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
            c.close()
    pct = 100 * (c1 - c0) / (t1 - t0)
    print(f"| idle: {a.delayed:,} delayed tasks, {a.idle_connections:,} idle keep-alive "
          f"connections ({alive} still open at the end), {a.durability} | {pct:.2f}% of one core | "
          f"server CPU {c1 - c0:.3f} s over {t1 - t0:.1f} s |")


def cmd_restart(binary, a):
    """Restarts on one data dir; with --against, the other binary takes every other turn."""
    binaries = [binary] + ([os.path.abspath(a.against)] if a.against else [])
    times = {b: [] for b in binaries}
    with Server(binary, a.durability, a.threads) as s:
        bench(binary, s.url, "enqueue", "--queue", "restart", "--tasks", str(a.tasks),
              "--batch", "1000", "--connections", "4")
        data_dir = s.data_dir
        port = s.port
        args = s.proc.args
        for i in range(a.runs):
            for b in binaries:
                s.proc.send_signal(15)
                s.proc.wait(timeout=120)
                started = time.monotonic()
                s.proc = subprocess.Popen([b] + list(args[1:]), stdout=s.log,
                                          stderr=subprocess.STDOUT)
                s.pid = s.proc.pid
                while True:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                        break
                    except OSError:
                        if s.proc.poll() is not None:
                            raise RuntimeError("server exited:\n" + s.output())
                        time.sleep(0.005)
                serving = time.monotonic() - started
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/queues/restart/lease",
                                             data=b'{"max":1}',
                                             headers={"Content-Type": "application/json"})
                leased = json.loads(urllib.request.urlopen(req, timeout=30).read())["tasks"]
                assert len(leased) == 1, leased
                times[b].append(serving)
                print(f"run {i + 1} {b}: serving {serving:.3f} s after the restart (RSS "
                      f"{mib(s.rss_bytes()):.0f} MiB)", flush=True)
        del data_dir
    for b in binaries:
        label = "" if len(binaries) == 1 else f" ({b})"
        print(f"| restart with {a.tasks:,} stored tasks, {a.durability}{label} | serving in "
              f"{statistics.median(times[b]):.2f} s | exec to the first /healthz 200, medians of "
              f"{a.runs}: " + ", ".join(f"{t:.2f}" for t in times[b]) + " |")


GOALS = [
    ("1 task per POST, 64 connections", "sync", ["enqueue", "--tasks", "100000", "--connections", "64"]),
    ("batch enqueue, 1000 per request, 4 connections", "sync",
     ["enqueue", "--tasks", "1000000", "--batch", "1000", "--connections", "4"]),
    ("batch enqueue, 1000 per request, 4 connections", "none",
     ["enqueue", "--tasks", "1000000", "--batch", "1000", "--connections", "4"]),
    ("end to end: enqueue x100, lease 100, batch ack, 16 connections", "sync",
     ["e2e", "--tasks", "300000", "--batch", "100", "--connections", "16"]),
]


def cmd_goals(binary, a):
    """The throughput rows of the issue's goals table, each on a fresh server, medians."""
    for label, durability, args in GOALS:
        rates = []
        for _ in range(a.runs):
            with Server(binary, durability, a.threads) as s:
                r = bench(binary, s.url, *args, "--queue", "goals")
            rates.append(r["tasks_per_second"])
        print(f"| {label}, {durability} | {statistics.median(rates):,.0f} tasks/s | "
              f"`conveyor bench {' '.join(args)}`; runs: "
              + ", ".join(f"{x:,.0f}" for x in rates) + " |", flush=True)


def cmd_cpu(binary, a):
    """Server CPU per request at a fixed open-loop rate: steadier than a rate on a noisy
    machine, since the offered load is the same for every run."""
    binaries = [binary] + ([os.path.abspath(a.against)] if a.against else [])
    per_request = {b: [] for b in binaries}
    for i in range(a.runs):
        for b in binaries:
            with Server(b, a.durability, a.threads) as s:
                bench(binary, s.url, "enqueue", "--queue", "warm", "--tasks", "2000")
                c0 = cpu_seconds(s.pid)
                r = bench(binary, s.url, "enqueue", "--queue", "cpu", "--rate", str(a.rate),
                          "--duration", str(a.seconds), "--connections", str(a.connections))
                c1 = cpu_seconds(s.pid)
            us = (c1 - c0) / r["requests"] * 1e6
            per_request[b].append(us)
            print(f"run {i + 1} {b}: {r['requests']:,} requests at {r['tasks_per_second']:,.0f}/s, "
                  f"server CPU {us:.1f} us a request", flush=True)
    for b in binaries:
        label = "" if len(binaries) == 1 else f" ({b})"
        print(f"| server CPU a request at {a.rate:,.0f}/s, {a.durability}{label} | "
              f"{statistics.median(per_request[b]):.1f} us | medians of {a.runs}: "
              + ", ".join(f"{x:.1f}" for x in per_request[b]) + " |")


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "conveyor"))
    common.add_argument("--threads", type=int)
    common.add_argument("--durability", default="sync", choices=("sync", "batch", "none"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("lowload", parents=[common])
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("idle", parents=[common])
    p.add_argument("--delayed", type=int, default=10000)
    p.add_argument("--idle-connections", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p = sub.add_parser("restart", parents=[common])
    p.add_argument("--against", default="", help="another binary, restarted in alternation")
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("goals", parents=[common])
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("cpu", parents=[common])
    p.add_argument("--rate", type=float, default=8000)
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--against", default="", help="another binary, run in alternation")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    {"lowload": cmd_lowload, "idle": cmd_idle, "restart": cmd_restart,
     "goals": cmd_goals, "cpu": cmd_cpu}[a.cmd](binary, a)


if __name__ == "__main__":
    main()
