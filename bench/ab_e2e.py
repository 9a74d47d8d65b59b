#!/usr/bin/env python3
"""Two builds of conveyor on the same end-to-end workload, alternating run by run:

  python3 bench/ab_e2e.py OLD_BINARY NEW_BINARY [--runs 3]

`conveyor bench e2e --tasks 300000 --batch 100 --connections 16` (driven by NEW_BINARY's
client both times) on `sync`, a fresh server and data dir per run; prints each run and the
medians. For "what did this change cost" figures in bench/RESULTS.md. Standard library only.
"""
import argparse
import statistics
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from foundation_bench import Server  # noqa: E402
from perf_bench import bench  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    rates = {"old": [], "new": []}
    for run in range(a.runs):
        for name, binary in (("old", a.old), ("new", a.new)):
            with Server(binary, "sync") as s:
                r = bench(a.new, s.url, "e2e", "--queue", "ab", "--tasks", "300000", "--batch",
                          "100", "--connections", "16")
            rates[name].append(r["tasks_per_second"])
            print(f"run {run + 1} {name}: {r['tasks_per_second']:,.0f}/s", flush=True)
    for name, v in rates.items():
        print(f"{name}: median {statistics.median(v):,.0f}/s ({', '.join(f'{x:,.0f}' for x in v)})")


if __name__ == "__main__":
    main()
