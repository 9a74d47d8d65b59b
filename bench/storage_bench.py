#!/usr/bin/env python3
"""Storage benchmarks of issue 3, against the real binary on this machine.

1. Enqueue throughput, 64 keep-alive clients, one task per request, in each durability
   mode (sync, batch, none): the median of --runs runs, each on a fresh data dir.
2. Recovery time: --recovery-tasks tasks stored, then a restart; the server's own
   "recovered N tasks ... in S s" line is read.
3. Bounded disk: --churn-tasks tasks enqueued and acked with a 1 s retention; the data dir
   size is sampled while it runs and after.

Usage: python3 bench/storage_bench.py [--bin build/conveyor] [--runs 3]
Prints a Markdown table for bench/RESULTS.md. Standard library only.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, durability, data_dir, threads=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}",
                "--durability", durability, "--data-dir", data_dir]
        if threads:
            args += ["--threads", str(threads)]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("server did not start:\n" + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)


def bench(binary, url, *args):
    out = subprocess.run([binary, "bench", "--server", url, "--json", *args],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def put(url, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="PUT")
    urllib.request.urlopen(req, timeout=10).read()


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "conveyor"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=60000)
    ap.add_argument("--recovery-tasks", type=int, default=1000000)
    ap.add_argument("--churn-tasks", type=int, default=1000000)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    rows = []

    medians = {}
    for mode in ("none", "batch", "sync"):
        rates, p99s = [], []
        for _ in range(args.runs):
            d = tempfile.mkdtemp(prefix="conveyor-bench-")
            s = Server(binary, mode, d)
            try:
                r = bench(binary, s.url, "--mode", "enqueue", "--connections", "64",
                          "--tasks", str(args.tasks))
            finally:
                s.stop()
                shutil.rmtree(d, True)
            rates.append(r["tasks_per_second"])
            p99s.append(r["p99_ms"])
        medians[mode] = statistics.median(rates)
        rows.append((f"enqueue, 64 clients, {mode}",
                     f"{statistics.median(rates):,.0f} tasks/s (p99 {statistics.median(p99s):.2f} ms)",
                     ", ".join(f"{x:,.0f}" for x in rates)))
    rows.append(("sync / none", f"{medians['sync'] / medians['none']:.2f}", "goal >= 0.5"))

    d = tempfile.mkdtemp(prefix="conveyor-bench-")
    s = Server(binary, "sync", d)
    bench(binary, s.url, "--mode", "batch", "--batch", "1000", "--connections", "8",
          "--tasks", str(args.recovery_tasks))
    s.stop()
    times = []
    for _ in range(args.runs):
        s = Server(binary, "sync", d)
        m = re.search(r"recovered (\d+) tasks .* in ([0-9.]+) s", s.output())
        s.stop()
        times.append(float(m.group(2)))
        recovered = int(m.group(1))
    rows.append((f"recovery of {recovered:,} tasks", f"{statistics.median(times):.2f} s",
                 ", ".join(f"{t:.2f}" for t in times) + f"; data dir {dir_bytes(d) / 2**20:.0f} MiB"))
    shutil.rmtree(d, True)

    d = tempfile.mkdtemp(prefix="conveyor-bench-")
    s = Server(binary, "sync", d)
    put(s.url, "/v1/queues/bench", {"retention_ms": 1000})
    sizes = []
    step = max(1, args.churn_tasks // 5)
    done = 0
    while done < args.churn_tasks:
        n = min(step, args.churn_tasks - done)
        bench(binary, s.url, "--mode", "batch", "--batch", "1000", "--connections", "8",
              "--tasks", str(n))
        bench(binary, s.url, "--mode", "drain", "--batch", "200", "--connections", "8")
        done += n
        sizes.append(dir_bytes(d) / 2**20)
    time.sleep(3)
    sizes.append(dir_bytes(d) / 2**20)
    s.stop()
    s = Server(binary, "sync", d)
    m = re.search(r"recovered (\d+) tasks .* in ([0-9.]+) s", s.output())
    s.stop()
    rows.append((f"data dir during {args.churn_tasks:,} enqueue+ack (retention 1 s)",
                 f"{sizes[-1]:.0f} MiB at the end",
                 "samples " + ", ".join(f"{x:.0f}" for x in sizes) +
                 f" MiB; restart after: {m.group(1)} tasks in {m.group(2)} s"))
    shutil.rmtree(d, True)

    print("| measurement | median | runs / notes |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
