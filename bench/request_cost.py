#!/usr/bin/env python3
"""The cost of one request, counted rather than timed: instructions (valgrind's callgrind)
and heap allocations (heaptrack) a request costs the server, which on this noisy 2-core
machine are repeatable where a rate is not.

  python3 bench/request_cost.py [--bin build/conveyor] [--tool callgrind|heaptrack|both]
                                [--workload enqueue] [--requests 10000] [--top 15]

The server runs with `--durability none --threads 1` (the fsync is the disk's cost, not
the request's), gets --warmup requests, then --requests more from `conveyor bench`; the
counts are those of the measured requests only (callgrind is dumped between the two), so
start-up is left out. With --top, the functions with the most instructions of their own
(callgrind's exclusive count) are listed, per request. Standard library only; needs valgrind and heaptrack (Debian packages).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


def load(binary, port, workload, requests, batch):
    tasks = requests * batch
    args = [binary, "bench", workload, "--server", f"http://127.0.0.1:{port}", "--tasks",
            str(tasks), "--batch", str(batch), "--connections", "8", "--no-progress", "--json"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    report = json.loads(out.stdout) if out.returncode == 0 else {}
    if report.get("errors", 1) != 0:
        raise RuntimeError(f"bench failed: {out.stdout} {out.stderr}")


def start(prefix, binary, port, d):
    argv = prefix + [binary, "serve", "--durability", "none", "--threads", "1", "--listen",
                     f"127.0.0.1:{port}", "--data-dir", os.path.join(d, "data")]
    log = open(os.path.join(d, "server.log"), "w")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=d,
                            start_new_session=True)


def stop(proc, binary):
    # SIGINT to the server itself, not to a wrapper (heaptrack is a shell script whose
    # helpers must live on to write their file).
    pids = subprocess.run(["pgrep", "-s", str(proc.pid), "-f", f"^{re.escape(binary)} serve"],
                          capture_output=True, text=True).stdout.split()
    for pid in pids or [str(proc.pid)]:
        os.kill(int(pid), signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def callgrind(a, d):
    port = free_port()
    out = os.path.join(d, "cg.out")
    proc = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], a.bin, port, d)
    try:
        wait_healthy(port, proc)
        load(a.bin, port, a.workload, a.warmup, a.batch)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True,
                       capture_output=True)
        load(a.bin, port, a.workload, a.requests, a.batch)
        subprocess.run(["callgrind_control", "--dump=measured", str(proc.pid)], check=True,
                       capture_output=True)
    finally:
        stop(proc, a.bin)
    dumps = sorted(f for f in os.listdir(d) if f.startswith("cg.out."))
    measured = os.path.join(d, dumps[0])
    text = subprocess.run(["callgrind_annotate", "--threshold=100", measured], capture_output=True,
                          text=True).stdout
    total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
    print(f"callgrind: {total / a.requests:,.0f} instructions per request "
          f"({a.requests} {a.workload} requests of {a.batch} task(s))")
    if a.top:
        rows = re.findall(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)$", text, re.M)
        shown = 0
        for count, share, name in rows:
            name = re.sub(r"\s*\[[^]]*\]\s*$", "", name)
            if float(share) > 50:  # the frames below the event loop, not a cost of its own
                continue
            print(f"  {int(count.replace(',', '')) / a.requests:>9,.0f}  {share:>6}%  {name[:150]}")
            shown += 1
            if shown >= a.top:
                break


def heaptrack(a, d):
    port = free_port()
    out = os.path.join(d, "ht")

    def count(requests):
        p = free_port()
        proc = start(["heaptrack", "-o", out + str(requests)], a.bin, p, d)
        try:
            wait_healthy(p, proc)
            if requests:
                load(a.bin, p, a.workload, requests, a.batch)
        finally:
            stop(proc, a.bin)
        log = open(os.path.join(d, "server.log")).read()
        found = re.findall(r"^\s*allocations:\s+(\d+)", log, re.M)
        if not found:
            raise RuntimeError("heaptrack printed no statistics:\n" + log[-2000:])
        return int(found[-1])
    del port
    base = count(a.warmup)
    total = count(a.warmup + a.requests)
    print(f"heaptrack: {(total - base) / a.requests:.1f} heap allocations per request "
          f"({a.requests} {a.workload} requests of {a.batch} task(s))")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "conveyor"))
    ap.add_argument("--tool", default="both", choices=["callgrind", "heaptrack", "both"])
    ap.add_argument("--workload", default="enqueue")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--top", type=int, default=0)
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    for tool in ("valgrind", "heaptrack"):
        if a.tool in (tool.replace("valgrind", "callgrind"), "both") and not shutil.which(tool):
            sys.exit(f"request_cost: {tool} is not installed (apt-get install {tool})")
    d = tempfile.mkdtemp(prefix="conveyor-cost-")
    try:
        if a.tool in ("callgrind", "both"):
            callgrind(a, d)
        if a.tool in ("heaptrack", "both"):
            heaptrack(a, d)
    finally:
        shutil.rmtree(d, True)


if __name__ == "__main__":
    main()
