#!/usr/bin/env python3
"""Flow control's cost (issue 13), on Conveyor `sync`:

  python3 bench/flow_bench.py throughput [--runs 3] [--tasks 300000] [--keys 10000]
      `conveyor bench e2e` (16 connections, batches of 100, tasks keyed k0..k9999) on a
      queue without limits, with a per-key rate limit (1000/s a key, burst 10: it does not
      bind) and with per-key concurrency 1; the configurations alternate run by run;
      medians and ratios to the unlimited run.
  python3 bench/flow_bench.py latency [--tasks 1000000] [--keys 100000] [--leases 2000]
      1M ready tasks over 100,000 keys; the latency of `lease max 1` calls (one keep-alive
      connection, each lease acked before the next) without settings, with fairness, and
      with fairness + per-key concurrency 1 + a per-key rate limit.

  python3 bench/flow_bench.py fairness [--runs 3]
      one key with 100,000 ready tasks, then ten keys with 100 each; one consumer leasing
      batches of 100 (acked in one call each): how long the small keys' tasks wait, with
      the big key absent, present without fairness, and present with fairness "key".

Standard library only; servers are stopped by PID.
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from foundation_bench import Server  # noqa: E402
from perf_bench import bench  # noqa: E402

BIN = os.path.join(HERE, "..", "build", "conveyor")

CONFIGS = {
    "unlimited": {},
    "rate per key": {"rate_limit": {"per_second": 1000, "burst": 10, "per_key": True}},
    "concurrency 1 per key": {"concurrency": {"max": 1, "per_key": True}},
}


def put_config(url, queue, config):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("PUT", f"/v1/queues/{queue}", json.dumps(config),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"PUT config: {resp.status} {body!r}")


def cmd_throughput(a):
    results = {name: [] for name in CONFIGS}
    for run in range(a.runs):
        for name, config in CONFIGS.items():
            with Server(BIN, "sync") as s:
                if config:
                    put_config(s.url, "flow", config)
                r = bench(BIN, s.url, "e2e", "--queue", "flow", "--tasks", str(a.tasks),
                          "--batch", "100", "--connections", "16", "--keys", str(a.keys))
                results[name].append(r["tasks_per_second"])
                print(f"run {run + 1} {name}: {r['tasks_per_second']:.0f}/s", flush=True)
    base = statistics.median(results["unlimited"])
    print(f"\n| configuration | tasks/s (median of {a.runs}) | vs unlimited | runs |")
    print("| --- | --- | --- | --- |")
    for name, rates in results.items():
        m = statistics.median(rates)
        print(f"| {name} | {m:,.0f} | ×{m / base:.2f} | "
              f"{', '.join(f'{x:,.0f}' for x in rates)} |")


def lease_latencies(url, queue, n):
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", f"/v1/queues/{queue}/lease", '{"max":1}',
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        got = json.loads(resp.read())
        out.append((time.perf_counter() - t0) * 1000)
        for t in got["tasks"]:
            conn.request("POST", f"/v1/tasks/{t['id']}/ack",
                         json.dumps({"lease": t["lease"]["token"]}),
                         {"Content-Type": "application/json"})
            conn.getresponse().read()
        if not got["tasks"]:
            raise RuntimeError("no task leased")
    conn.close()
    out.sort()
    return out


def cmd_latency(a):
    configs = {
        "no settings": {},
        "fairness key": {"fairness": "key"},
        "fairness + concurrency 1 per key + rate per key": {
            "fairness": "key", "concurrency": {"max": 1, "per_key": True},
            "rate_limit": {"per_second": 100, "burst": 1, "per_key": True}},
    }
    print(f"\n| settings | lease p50 | lease p99 | leases |")
    print("| --- | --- | --- | --- |")
    for name, config in configs.items():
        with Server(BIN, "sync") as s:
            if config:
                put_config(s.url, "flow", config)
            bench(BIN, s.url, "enqueue", "--queue", "flow", "--tasks", str(a.tasks),
                  "--batch", "1000", "--connections", "4", "--keys", str(a.keys))
            lat = lease_latencies(s.url, "flow", a.leases)
            p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
            print(f"| {name} | {p50:.2f} ms | {p99:.2f} ms | {len(lat)} |", flush=True)


def call(conn, method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status not in (200, 201):
        raise RuntimeError(f"{method} {path}: {resp.status} {data!r}")
    return json.loads(data or b"null")


def small_waits(big, fair):
    """(p50, p99, max) ms the small keys' tasks waited from their enqueue to their lease."""
    with Server(BIN, "sync") as s:
        host, port = s.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        if fair:
            call(conn, "PUT", "/v1/queues/fair", {"fairness": "key"})
        if big:
            bench(BIN, s.url, "enqueue", "--queue", "fair", "--tasks", "100000", "--batch", "1000",
                  "--connections", "4", "--keys", "1")  # all key k0
        specs = [{"payload": i, "key": f"small{k}"} for k in range(10) for i in range(100)]
        for i in range(0, len(specs), 500):
            call(conn, "POST", "/v1/queues/fair/tasks", {"tasks": specs[i:i + 500]})
        start = time.perf_counter()
        waits, left = [], 1000
        while left > 0:
            got = call(conn, "POST", "/v1/queues/fair/lease", {"max": 100})["tasks"]
            now = (time.perf_counter() - start) * 1000
            for t in got:
                if t.get("key", "").startswith("small"):
                    waits.append(now)
                    left -= 1
            call(conn, "POST", "/v1/ack",
                 {"acks": [{"id": t["id"], "lease": t["lease"]["token"]} for t in got]})
        conn.close()
    waits.sort()
    return waits[len(waits) // 2], waits[int(len(waits) * 0.99)], waits[-1]


def cmd_fairness(a):
    cases = [("big key absent", False, False), ("big key, no fairness", True, False),
             ("big key, fairness \"key\"", True, True)]
    results = {name: [] for name, _, _ in cases}
    for run in range(a.runs):
        for name, big, fair in cases:
            results[name].append(small_waits(big, fair))
            print(f"run {run + 1} {name}: p50/p99/max {results[name][-1]}", flush=True)
    print("\n| case | small keys' wait p50 | p99 | max (medians of runs) |")
    print("| --- | --- | --- | --- |")
    for name, rows in results.items():
        med = [statistics.median(r[i] for r in rows) for i in range(3)]
        print(f"| {name} | {med[0]:.1f} ms | {med[1]:.1f} ms | {med[2]:.1f} ms |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--tasks", type=int, default=300000)
    t.add_argument("--keys", type=int, default=10000)
    l = sub.add_parser("latency")
    l.add_argument("--tasks", type=int, default=1000000)
    l.add_argument("--keys", type=int, default=100000)
    l.add_argument("--leases", type=int, default=2000)
    f = sub.add_parser("fairness")
    f.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    {"throughput": cmd_throughput, "latency": cmd_latency, "fairness": cmd_fairness}[a.cmd](a)


if __name__ == "__main__":
    main()
