#!/usr/bin/env python3
"""Conveyor beside its peers on this machine, in one run: the same workloads, driven by the
same client where the protocol allows, medians of --runs, Conveyor/peer ratios.

  bash scripts/install-deps.sh --peers     # Debian's beanstalkd, redis, nginx, nats, wrk
  python3 bench/peers/run.py [--runs 3] [--only beanstalkd,redis,nginx]

Peers measured so far: beanstalkd (in memory; and binlog with `-f 0`, an fsync on every
write), Redis lists (`appendfsync always`, with redis-benchmark's own client, pipelined),
nginx `return 200` (the HTTP ceiling, with wrk, which also drives Conveyor for that row).
Each server runs on 127.0.0.1 on a free port and a temp dir, and is stopped by PID.
Durable is compared with durable and memory with memory; an fsync costs ~100-300 µs on
this disk, so every durable figure carries one per commit. Standard library only.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from foundation_bench import Server  # noqa: E402
from perf_bench import bench, cpu_seconds  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


class Peer:
    """A peer server process on a free port and a temp dir; stop() kills it by PID."""

    def __init__(self, name, argv_of):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"conveyor-peer-{name}-")
        self.port = free_port()
        self.proc = subprocess.Popen(argv_of(self.port, self.dir), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, name)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def beanstalkd(fsync):
    def argv(port, d):
        args = ["beanstalkd", "-l", "127.0.0.1", "-p", str(port)]
        return args + (["-b", d, "-f", "0"] if fsync else [])
    return argv


def redis_always(port, d):
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]


def nginx(port, d):
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("daemon off; worker_processes 1; pid %s/nginx.pid; error_log %s/error.log;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log off; server { listen 127.0.0.1:%d; "
                "location / { return 200 'ok'; } } }\n" % (d, d, port))
    return ["nginx", "-c", conf, "-p", d]


POST_LUA = """wrk.method = "POST"
wrk.body = '{"payload":{"t":0,"data":"%s"}}'
wrk.headers["Content-Type"] = "application/json"
""" % ("x" * 76)


def wrk(url, seconds, lua=None):
    args = ["wrk", "-t1", "-c64", f"-d{seconds}s"]
    if lua:
        args += ["-s", lua]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=600).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def redis_lpush(port, tasks):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "lpush", "-n", str(tasks),
                          "-c", "4", "-P", "100", "-d", "100", "-q"],
                         capture_output=True, text=True, timeout=600).stdout
    return float(re.search(r"LPUSH: ([\d.]+) requests per second", out.replace("\r", "\n")).group(1))


def median_of(runs, fn):
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def row(workload, ours, peer_name, theirs, note=""):
    ratio = ours / theirs if theirs else 0
    print(f"| {workload} | {ours:,.0f} | {peer_name} {theirs:,.0f} | ×{ratio:.2f} | {note} |",
          flush=True)


def conveyor_rate(binary, durability, *args):
    with Server(binary, durability) as s:
        return bench(binary, s.url, *args)["tasks_per_second"]


def beanstalk_rate(binary, fsync, *args):
    with Peer("beanstalkd", beanstalkd(fsync)) as p:
        return bench(binary, "http://127.0.0.1:1", "--beanstalkd", f"127.0.0.1:{p.port}",
                     *args)["tasks_per_second"]


def lowload_cpu(binary, start, rate, seconds):
    """Server CPU (cores) and enqueue->lease p99 at an open-loop e2e rate."""
    def once():
        with start() as target:
            pid, url, flags = target
            c0, t0 = cpu_seconds(pid), time.monotonic()
            r = bench(binary, url, *flags, "e2e", "--rate", str(rate), "--duration", str(seconds),
                      "--connections", "64")
            cores = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            return cores, r["enqueue_to_lease_ms"]["p99"]
    return once


class ConveyorTarget:
    def __init__(self, binary, durability):
        self.server = Server(binary, durability)

    def __enter__(self):
        return self.server.pid, self.server.url, []

    def __exit__(self, *exc):
        self.server.stop()


class BeanstalkTarget:
    def __init__(self, fsync):
        self.peer = Peer("beanstalkd", beanstalkd(fsync))

    def __enter__(self):
        return self.peer.proc.pid, "http://127.0.0.1:1", ["--beanstalkd",
                                                          f"127.0.0.1:{self.peer.port}"]

    def __exit__(self, *exc):
        self.peer.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "conveyor"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="beanstalkd,redis,nginx")
    ap.add_argument("--skip", default="", help="rows to leave out: single,e2e,lowload")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    only = set(a.only.split(","))
    r = a.runs
    print("| workload | Conveyor (tasks/s) | peer (tasks/s) | Conveyor/peer | notes |")
    print("| --- | --- | --- | --- | --- |")
    if "nginx" in only:
        lua = os.path.join(tempfile.mkdtemp(prefix="conveyor-wrk-"), "post.lua")
        with open(lua, "w") as f:
            f.write(POST_LUA)

        def ours():
            with Server(binary, "sync") as s:
                return wrk(s.url + "/v1/queues/wrk/tasks", 5, lua)

        def theirs():
            with Peer("nginx", nginx) as p:
                return wrk(f"http://127.0.0.1:{p.port}/", 5)
        (o, ov), (t, tv) = median_of(r, ours), median_of(r, theirs)
        row("1 task per POST, 64 connections (wrk), sync", o, "nginx `return 200`", t,
            f"runs {ov} vs {tv}")
    if "beanstalkd" in only:
        single = ["enqueue", "--tasks", "100000", "--connections", "64"]
        skip = set(a.skip.split(","))
    if "beanstalkd" in only and "single" not in skip:
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "none", *single))
        (t, tv) = median_of(r, lambda: beanstalk_rate(binary, False, *single))
        row("1 task per request, 64 connections, in memory", o, "beanstalkd", t,
            f"Conveyor `none`; runs {ov} vs {tv}")
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "sync", *single))
        (t, tv) = median_of(r, lambda: beanstalk_rate(binary, True, *single))
        row("1 task per request, 64 connections, fsync each commit", o, "beanstalkd -f 0", t,
            f"Conveyor `sync`; runs {ov} vs {tv}")
    if "beanstalkd" in only and "e2e" not in skip:
        e2e = ["e2e", "--duration", "8", "--batch", "100", "--connections", "16"]
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "sync", *e2e))
        (t, tv) = median_of(r, lambda: beanstalk_rate(binary, True, *e2e))
        row("end to end, batches of 100 (beanstalkd: pipelined ×100), durable", o,
            "beanstalkd -f 0", t, f"runs {ov} vs {tv}")
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "none", *e2e))
        (t, tv) = median_of(r, lambda: beanstalk_rate(binary, False, *e2e))
        row("end to end, batches of 100, in memory", o, "beanstalkd", t,
            f"Conveyor `none`; runs {ov} vs {tv}")
    if "beanstalkd" in only and "lowload" not in skip:
        for label, conv, peer in (("fsync", "sync", True), ("memory", "none", False)):
            oc = median_of(r, lowload_cpu(binary, lambda: ConveyorTarget(binary, conv), 2000, 5))
            tc = median_of(r, lowload_cpu(binary, lambda: BeanstalkTarget(peer), 2000, 5))
            ocores = statistics.median(x[0] for x in oc[1])
            op99 = statistics.median(x[1] for x in oc[1])
            tcores = statistics.median(x[0] for x in tc[1])
            tp99 = statistics.median(x[1] for x in tc[1])
            print(f"| open loop 2,000 tasks/s e2e, {label}: server CPU | {ocores:.3f} cores "
                  f"(p99 {op99:.2f} ms) | beanstalkd{' -f 0' if peer else ''} {tcores:.3f} "
                  f"cores (p99 {tp99:.2f} ms) | ×{ocores / max(tcores, 1e-9):.2f} CPU | "
                  f"Conveyor `{conv}` |", flush=True)
    if "redis" in only:
        batch = ["enqueue", "--tasks", "1000000", "--batch", "1000", "--connections", "4"]
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "sync", *batch))

        def theirs():
            with Peer("redis", redis_always) as p:
                return redis_lpush(p.port, 1000000)
        (t, tv) = median_of(r, theirs)
        row("batch enqueue (Conveyor 1000 per request; Redis LPUSH pipelined ×100), fsync", o,
            "Redis `appendfsync always`", t, f"redis-benchmark's client; runs {ov} vs {tv}")


if __name__ == "__main__":
    main()
