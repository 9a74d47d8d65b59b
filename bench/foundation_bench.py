#!/usr/bin/env python3
"""Foundation benchmarks: latency, memory, churn and end-to-end throughput of one binary.

Each sub-command starts its own `conveyor serve` (--bin) on a fresh temp data dir and a free
loopback port, measures, stops the server by its PID and removes the dir, then prints the raw
numbers and a Markdown table row for bench/RESULTS.md. Run the same command with
--bin /tmp/conveyor-before/build/conveyor and --bin build/conveyor to compare two builds.

  latency  open-loop enqueue -> lease latency: tasks sent on a fixed schedule (--rate) by a
           pool of --producers connections in a process of their own (a slow server makes
           sends late, it does not slow the schedule; the lateness is reported), leased one at
           a time by --consumers long-poll loops that ack each task before the next lease;
           percentiles in microseconds, first second ignored as warm-up.
  rss      resident memory per queued task (and per finished task with --finished).
  finished resident memory per finished task, enqueued and drained in rounds (no peak).
  churn    RSS and data dir size under steady enqueue + batch ack with a short retention.
  e2e      `conveyor bench` enqueue rate, then drain (lease + batch ack) rate, --runs servers.

Usage: python3 bench/foundation_bench.py {latency,rss,churn,e2e} [--bin build/conveyor] ...
Standard library only.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

QUEUE = "bench"
SERVE_ARGS = []  # --serve-arg: more flags for every server started
SERVERS = []  # every Server started, so that a failure can say whether the server died


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `conveyor serve` on a fresh temp data dir; stop() ends it by PID and removes the dir."""

    def __init__(self, binary, durability, threads=None, extra=()):
        self.data_dir = tempfile.mkdtemp(prefix="conveyor-bench-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [binary, "serve", "--listen", f"127.0.0.1:{self.port}",
                "--durability", durability, "--data-dir", self.data_dir]
        if threads:
            args += ["--threads", str(threads)]
        args += list(extra) + list(SERVE_ARGS)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        SERVERS.append(self)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        out = self.output()
        self.stop()
        raise RuntimeError("server did not start:\n" + out)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS for pid %d" % self.pid)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.data_dir, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Client:
    """A keep-alive HTTP/1.1 connection to the server (one per thread). No retries: a failed
    call raises, and the next call reconnects."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn.request(method, path, body=data,
                              headers={"Content-Type": "application/json"})
            res = self.conn.getresponse()
            text = res.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return res.status, (json.loads(text) if text else None)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_bench(binary, url, *args):
    """Runs `conveyor bench --json` and returns its JSON line."""
    out = subprocess.run([binary, "bench", "--server", url, "--queue", QUEUE, "--json", *args],
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError("conveyor bench failed: " + out.stdout + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass  # RocksDB deleted it while we walked
    return total


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    k = min(len(sorted_values) - 1, int(p * (len(sorted_values) - 1) + 0.5))
    return sorted_values[k]


def label_of(binary, given):
    """What the row calls the binary: --label, else the commit its build dir was made from."""
    if given:
        return given
    cache = os.path.join(os.path.dirname(binary), "CMakeCache.txt")
    try:
        with open(cache) as f:
            src = next(l.split("=", 1)[1].strip() for l in f
                       if l.startswith("CMAKE_HOME_DIRECTORY:"))
        commit = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", src, "diff", "--quiet", "HEAD", "--", "src"])
            return commit + ("+uncommitted" if dirty.returncode == 1 else "")
    except (OSError, StopIteration):
        pass
    return binary


def print_row(measurement, result, notes):
    print()
    print("| measurement | median | runs / notes |")
    print("| --- | --- | --- |")
    print(f"| {measurement} | {result} | {notes} |")


def mib(n):
    return n / 2**20


# ---------------------------------------------------------------------------- latency

def latency_producer(port, start_ns, interval_ns, total, connections, out):
    """The open-loop producer, run in its own process so that its Python work does not share a
    GIL with the consumers. Task i is due at start_ns + i * interval_ns; `connections` threads
    take the next due task in turn, so one slow answer does not hold back the schedule. Sends
    (sent, errors, lateness of each send in ns) through the pipe `out`."""
    lock = threading.Lock()
    st = {"next": 0, "sent": 0, "errors": 0}
    lateness = []

    def run():
        c = Client(port)
        path = f"/v1/queues/{QUEUE}/tasks"
        while True:
            with lock:
                i = st["next"]
                st["next"] += 1
            if i >= total:
                break
            due = start_ns + i * interval_ns
            wait = due - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            t = time.monotonic_ns()  # CLOCK_MONOTONIC: the same clock in every process
            try:
                status, _ = c.call("POST", path, raw=b'{"payload":{"t":%d}}' % t)
                ok = status == 201
            except (OSError, http.client.HTTPException):
                ok = False
            with lock:
                lateness.append(t - due)
                st["sent" if ok else "errors"] += 1
        c.close()

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send((st["sent"], st["errors"], lateness, time.monotonic_ns()))
    out.close()


def latency_run(binary, a):
    with Server(binary, a.durability, a.threads) as s:
        Client(s.port).call("PUT", f"/v1/queues/{QUEUE}", {})  # the queue exists before leases
        interval_ns = int(1e9 / a.rate)
        total = int(a.rate * a.seconds)
        lock = threading.Lock()
        state = {"received": 0, "errors": 0}
        samples = []        # (sent_at_ns, latency_ns), one per leased task
        stop = threading.Event()
        start_ns = time.monotonic_ns() + 500_000_000  # the producer process is up by then
        ctx = multiprocessing.get_context("fork")
        recv_end, send_end = ctx.Pipe(duplex=False)
        prod = ctx.Process(target=latency_producer, daemon=True,
                           args=(s.port, start_ns, interval_ns, total, a.producers, send_end))
        prod.start()  # forked before any consumer thread exists
        send_end.close()

        def consumer():
            c = Client(s.port)
            lease = b'{"max":1,"wait_ms":1000}'
            while not stop.is_set():
                try:
                    status, body = c.call("POST", f"/v1/queues/{QUEUE}/lease", raw=lease)
                    now = time.monotonic_ns()
                    if status != 200:
                        raise OSError(f"lease answered {status}")
                    for task in body["tasks"]:
                        t = task["payload"]["t"]
                        with lock:
                            samples.append((t, now - t))
                            state["received"] += 1
                        status, _ = c.call("POST", f"/v1/tasks/{task['id']}/ack",
                                           {"lease": task["lease"]["token"]})
                        if status != 200:
                            raise OSError(f"ack answered {status}")
                except (OSError, http.client.HTTPException, KeyError, ValueError):
                    with lock:
                        state["errors"] += 1
                    time.sleep(0.01)
            c.close()

        cons = [threading.Thread(target=consumer, daemon=True) for _ in range(a.consumers)]
        for t in cons:
            t.start()
        try:
            sent, send_errors, lateness, send_end_ns = recv_end.recv()
        except EOFError:
            raise RuntimeError("the producer process died")
        prod.join()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with lock:
                if state["received"] >= sent:
                    break
            time.sleep(0.01)
        stop.set()
        for t in cons:
            t.join(timeout=5)

    warm = start_ns + 1_000_000_000
    lat = sorted(l for t, l in samples if t >= warm)
    # Latency that climbs from the first measured second to the last means the consumers
    # (or the server) fall behind the rate: a backlog, not a steady-state latency.
    last = start_ns + int((a.seconds - 1) * 1e9)
    first_s = sorted(l for t, l in samples if warm <= t < warm + 1_000_000_000)
    last_s = sorted(l for t, l in samples if t >= last)
    late = sorted(lateness)
    us = lambda ns: ns / 1000.0
    return {
        "count": len(lat),
        "p50_us": us(percentile(lat, 0.50)), "p90_us": us(percentile(lat, 0.90)),
        "p99_us": us(percentile(lat, 0.99)), "max_us": us(lat[-1]) if lat else 0,
        "sent": sent, "received": state["received"],
        "errors": send_errors + state["errors"],
        "send_rate": sent / max(1e-9, (send_end_ns - start_ns) / 1e9),
        "late_p99_us": us(percentile(late, 0.99)), "late_max_us": us(late[-1]) if late else 0,
        "late_over_1ms": sum(1 for x in late if x > 1_000_000),
        "p50_first_second_us": us(percentile(first_s, 0.5)),
        "p50_last_second_us": us(percentile(last_s, 0.5)),
    }


def cmd_latency(binary, a):
    runs = []
    for i in range(a.runs):
        r = latency_run(binary, a)
        runs.append(r)
        print(f"run {i + 1}: count {r['count']}, p50 {r['p50_us']:.0f} us, p90 {r['p90_us']:.0f} us,"
              f" p99 {r['p99_us']:.0f} us, max {r['max_us']:.0f} us; sent {r['sent']} at "
              f"{r['send_rate']:.0f}/s, received {r['received']}, errors {r['errors']}; "
              f"send lateness p99 {r['late_p99_us']:.0f} us, max {r['late_max_us']:.0f} us, "
              f"{r['late_over_1ms']} sends > 1 ms late; p50 in the first measured second "
              f"{r['p50_first_second_us']:.0f} us, in the last {r['p50_last_second_us']:.0f} us",
              flush=True)
    print("raw: " + json.dumps(runs))
    p99 = statistics.median(r["p99_us"] for r in runs)
    p50 = statistics.median(r["p50_us"] for r in runs)
    lost = sum(r["sent"] - r["received"] for r in runs)
    print_row(f"enqueue→lease latency, {a.durability}, open loop {a.rate:,.0f}/s for {a.seconds:g} s, "
              f"{a.consumers} consumers ({label_of(binary, a.label)})",
              f"p50 {p50:,.0f} µs, p99 {p99:,.0f} µs",
              "p99 per run " + ", ".join(f"{r['p99_us']:,.0f}" for r in runs) + " µs; p90 " +
              ", ".join(f"{r['p90_us']:,.0f}" for r in runs) + "; max " +
              ", ".join(f"{r['max_us']:,.0f}" for r in runs) + f" µs; {runs[0]['count']:,} samples/run"
              f" after 1 s warm-up; send lateness p99 " +
              ", ".join(f"{r['late_p99_us']:,.0f}" for r in runs) + " µs" +
              (f"; {lost} not received" if lost else "") +
              (f"; {sum(r['errors'] for r in runs)} errors" if any(r["errors"] for r in runs) else ""))


# ---------------------------------------------------------------------------- rss

def queue_counts(s):
    _, q = Client(s.port).call("GET", f"/v1/queues/{QUEUE}")
    return q["counts"]


def cmd_rss(binary, a):
    with Server(binary, a.durability, a.threads) as s:
        before = s.rss_bytes()
        enq = run_bench(binary, s.url, "--mode", "batch", "--batch", "1000", "--connections", "4",
                        "--tasks", str(a.tasks), "--payload-bytes", "100")
        time.sleep(2)
        after = s.rss_bytes()
        counts = queue_counts(s)
        raw = {"rss_before": before, "rss_after_enqueue": after, "tasks": a.tasks,
               "enqueue": enq, "counts_after_enqueue": counts}
        if a.finished:
            drain = run_bench(binary, s.url, "--mode", "drain", "--batch", "100",
                              "--connections", "8")
            time.sleep(2)
            raw.update(rss_after_drain=s.rss_bytes(), drain=drain,
                       counts_after_drain=queue_counts(s), data_dir_bytes=dir_bytes(s.data_dir))
        else:
            raw["data_dir_bytes"] = dir_bytes(s.data_dir)
    per = (after - before) / a.tasks
    print(f"RSS before {mib(before):.1f} MiB, after {a.tasks:,} enqueued {mib(after):.1f} MiB "
          f"(+{mib(after - before):.1f} MiB) = {per:.0f} B/queued task; "
          f"enqueue {enq['tasks_per_second']:,.0f} tasks/s; counts {counts}")
    lbl = label_of(binary, a.label)
    notes = (f"RSS {mib(before):.1f} → {mib(after):.1f} MiB over {a.tasks:,} tasks of ~100 B, "
             f"{a.durability}")
    if a.finished:
        fin = raw["rss_after_drain"]
        per_fin = (fin - before) / a.tasks
        print(f"after drain ({raw['drain']['tasks']:,} acked at "
              f"{raw['drain']['tasks_per_second']:,.0f}/s) {mib(fin):.1f} MiB = {per_fin:.0f} "
              f"B/finished task; counts {raw['counts_after_drain']}")
        notes += f"; after drain {mib(fin):.1f} MiB = {per_fin:.0f} B per finished task (24 h retention)"
    print("raw: " + json.dumps(raw))
    print_row(f"RAM per queued task ({lbl})", f"{per:.0f} B", notes)
    if a.finished:
        print(f"| RAM per finished task ({lbl}) | {per_fin:.0f} B | RSS {mib(before):.1f} → "
              f"{mib(fin):.1f} MiB after {a.tasks:,} enqueued and acked, retention 24 h |")


def cmd_finished(binary, a):
    """RAM per finished task, measured without a queued peak: rounds of --round tasks
    enqueued and drained, so at most one round is ever queued, until --tasks are finished
    (all kept for the default 24 h retention)."""
    with Server(binary, a.durability, a.threads) as s:
        before = s.rss_bytes()
        done = 0
        while done < a.tasks:
            n = min(a.round, a.tasks - done)
            run_bench(binary, s.url, "--mode", "batch", "--batch", "1000", "--connections", "4",
                      "--tasks", str(n), "--payload-bytes", "100")
            run_bench(binary, s.url, "--mode", "drain", "--batch", "100", "--connections", "8")
            done += n
        time.sleep(2)
        after = s.rss_bytes()
        counts = queue_counts(s)
    per = (after - before) / a.tasks
    lbl = label_of(binary, a.label)
    print(f"RSS before {mib(before):.1f} MiB, after {a.tasks:,} finished {mib(after):.1f} MiB "
          f"= {per:.0f} B/finished task; counts {counts}")
    print_row(f"RAM per finished task ({lbl})", f"{per:.0f} B",
              f"RSS {mib(before):.1f} → {mib(after):.1f} MiB after {a.tasks:,} tasks of ~100 B "
              f"enqueued and acked in rounds of {a.round:,} (at most one round queued), "
              f"retention 24 h, {a.durability}")


# ---------------------------------------------------------------------------- churn

def cmd_churn(binary, a):
    batch = 100
    body = json.dumps({"tasks": [{"payload": {"data": "x" * 80}}] * batch}).encode()
    with Server(binary, a.durability, a.threads) as s:
        status, cfg = Client(s.port).call("PUT", f"/v1/queues/{QUEUE}",
                                          {"retention_ms": a.retention_ms})
        if status != 200:
            raise RuntimeError(f"PUT queue config answered {status}: {cfg}")
        lock = threading.Lock()
        st = {"enqueued": 0, "done": 0, "errors": 0, "late_batches": 0}
        stop = threading.Event()
        interval = batch / a.rate
        start = time.monotonic()

        def producer():
            c = Client(s.port)
            i = 0
            while not stop.is_set():
                due = start + i * interval
                if due >= start + a.seconds:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -0.1:
                    with lock:
                        st["late_batches"] += 1
                try:
                    status, _ = c.call("POST", f"/v1/queues/{QUEUE}/tasks", raw=body)
                    with lock:
                        if status == 201:
                            st["enqueued"] += batch
                        else:
                            st["errors"] += 1
                except (OSError, http.client.HTTPException):
                    with lock:
                        st["errors"] += 1
                i += 1
            c.close()

        def consumer():
            c = Client(s.port)
            lease = json.dumps({"max": batch, "wait_ms": 500}).encode()
            while not stop.is_set():
                try:
                    status, got = c.call("POST", f"/v1/queues/{QUEUE}/lease", raw=lease)
                    if status != 200:
                        raise OSError(f"lease answered {status}")
                    tasks = got["tasks"]
                    if not tasks:
                        continue
                    acks = [{"id": t["id"], "lease": t["lease"]["token"]} for t in tasks]
                    status, res = c.call("POST", "/v1/ack", {"acks": acks})
                    if status != 200:
                        raise OSError(f"ack answered {status}")
                    ok = sum(1 for r in res["results"] if r.get("ok"))
                    with lock:
                        st["done"] += ok
                        st["errors"] += len(acks) - ok
                except (OSError, http.client.HTTPException, KeyError, ValueError):
                    with lock:
                        st["errors"] += 1
                    time.sleep(0.01)
            c.close()

        threads = [threading.Thread(target=producer, daemon=True),
                   threading.Thread(target=consumer, daemon=True)]
        for t in threads:
            t.start()
        rows = []

        def sample():
            with lock:
                e, d = st["enqueued"], st["done"]
            rows.append((time.monotonic() - start, e, d, mib(s.rss_bytes()), mib(dir_bytes(s.data_dir))))
            r = rows[-1]
            print(f"| {r[0]:.0f} | {r[2]:,} | {r[1]:,} | {r[3]:.1f} | {r[4]:.1f} |", flush=True)

        print(f"churn: {a.rate:,.0f} tasks/s in batches of {batch}, batch ack, retention "
              f"{a.retention_ms} ms, {a.seconds:g} s ({a.seconds * 1000 / a.retention_ms:.1f} "
              f"retention turnovers), {a.durability} ({label_of(binary, a.label)})")
        print()
        print("| elapsed s | tasks done | enqueued | RSS MiB | data dir MiB |")
        print("| --- | --- | --- | --- | --- |")
        sample()
        n = 1
        while True:
            due = start + n * a.sample_seconds
            if due > start + a.seconds:
                break
            time.sleep(max(0, due - time.monotonic()))
            sample()
            n += 1
        time.sleep(max(0, start + a.seconds - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(timeout=10)
        if rows[-1][0] < a.seconds - 0.5:
            sample()
    turnovers = a.seconds * 1000 / a.retention_ms
    rss = [r[3] for r in rows]
    dd = [r[4] for r in rows]
    print("raw: " + json.dumps({"rows": rows, "errors": st["errors"],
                                "late_batches": st["late_batches"]}))
    print_row(f"enqueue+ack churn {a.rate:,.0f}/s, retention {a.retention_ms / 1000:g} s, "
              f"{a.seconds:g} s = {turnovers:.1f} turnovers, {a.durability} ({label_of(binary, a.label)})",
              f"RSS {rss[-1]:.0f} MiB, data dir {dd[-1]:.0f} MiB at the end",
              f"{rows[-1][2]:,} tasks done of {rows[-1][1]:,} enqueued; RSS max {max(rss):.0f} MiB "
              f"(start {rss[0]:.0f}); data dir max {max(dd):.0f} MiB" +
              (f"; {st['errors']} errors" if st["errors"] else "") +
              (f"; {st['late_batches']} batches > 100 ms late" if st["late_batches"] else ""))


# ---------------------------------------------------------------------------- e2e

def e2e_run(server_bin, client_bin, a):
    with Server(server_bin, a.durability, a.threads) as s:
        e = run_bench(client_bin, s.url, "--mode", "batch", "--batch", "100", "--connections", "4",
                      "--tasks", str(a.tasks))
        d = run_bench(client_bin, s.url, "--mode", "drain", "--batch", "100", "--connections", "8")
    if d["tasks"] != a.tasks:
        print(f"  warning: drained {d['tasks']} of {a.tasks}")
    return e, d


def cmd_e2e(binary, a):
    """--runs runs of enqueue then drain. With --against OTHER, runs alternate between the
    two servers (one client, this --bin's `conveyor bench`, drives both), so that the
    machine's noise falls on both alike; each row then says which server."""
    servers = [binary] + ([os.path.abspath(a.against)] if a.against else [])
    results = {b: ([], []) for b in servers}
    for i in range(a.runs):
        for b in servers:
            e, d = e2e_run(b, binary, a)
            results[b][0].append(e)
            results[b][1].append(d)
            print(f"run {i + 1} {label_of(b, None)}: enqueue {e['tasks']:,} in {e['seconds']:.2f} s = "
                  f"{e['tasks_per_second']:,.0f} tasks/s; drain {d['tasks']:,} in "
                  f"{d['seconds']:.2f} s = {d['tasks_per_second']:,.0f} tasks/s", flush=True)
    print("raw: " + json.dumps({label_of(b, None): r for b, r in results.items()}))
    for b, (enq, drain) in results.items():
        lbl = label_of(b, a.label if b == binary else a.against_label)
        dm = statistics.median(d["tasks_per_second"] for d in drain)
        em = statistics.median(e["tasks_per_second"] for e in enq)
        print_row(f"drain (lease 100 + batch ack), 8 connections, {a.tasks:,} tasks, {a.durability} ({lbl})",
                  f"{dm:,.0f} tasks/s", ", ".join(f"{d['tasks_per_second']:,.0f}" for d in drain))
        print(f"| enqueue, batches of 100, 4 connections, {a.durability} ({lbl}) | {em:,.0f} tasks/s | "
              + ", ".join(f"{e['tasks_per_second']:,.0f}" for e in enq) + " |")


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                      "conveyor"))
    common.add_argument("--threads", type=int, help="server --threads (default: its own)")
    common.add_argument("--durability", default="sync", choices=("sync", "batch", "none"))
    common.add_argument("--serve-arg", action="append", default=[],
                        help="one more flag for `conveyor serve` (repeat it), e.g. "
                             "--serve-arg=--payload-cache-bytes=0")
    common.add_argument("--label", help="name of the binary in the row (default: the commit of its source tree)")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("latency", parents=[common], help="open-loop enqueue -> lease latency")
    p.add_argument("--rate", type=float, default=1000, help="tasks per second")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--consumers", type=int, default=4)
    p.add_argument("--producers", type=int, default=8,
                   help="connections that send on the schedule (open loop)")
    p.add_argument("--runs", type=int, default=3)

    p = sub.add_parser("rss", parents=[common], help="RSS per queued (and finished) task")
    p.add_argument("--tasks", type=int, default=1000000)
    p.add_argument("--finished", action="store_true", help="also drain and measure finished tasks")

    p = sub.add_parser("finished", parents=[common], help="RSS per finished task, no queued peak")
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--round", type=int, default=20_000)

    p = sub.add_parser("churn", parents=[common], help="RSS and disk under enqueue+ack churn")
    p.add_argument("--retention-ms", type=int, default=30000)
    p.add_argument("--rate", type=float, default=2000, help="tasks per second")
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--sample-seconds", type=float, default=10)

    p = sub.add_parser("e2e", parents=[common], help="enqueue then drain throughput")
    p.add_argument("--tasks", type=int, default=200000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--against", help="a second server binary; runs alternate between the two")
    p.add_argument("--against-label", help="its name in the rows (default: its commit)")

    a = ap.parse_args()
    SERVE_ARGS.extend(a.serve_arg)
    binary = os.path.abspath(a.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"no executable at {binary}")
    try:
        {"latency": cmd_latency, "rss": cmd_rss, "finished": cmd_finished, "churn": cmd_churn,
         "e2e": cmd_e2e}[a.cmd](binary, a)
    except Exception:
        for s in SERVERS:
            code = s.proc.poll()
            if code is not None and code != 0 and code != -signal.SIGTERM:
                sys.stderr.write(f"conveyor serve (pid {s.pid}) exited with {code}; its output:\n"
                                 + s.output()[-4000:] + "\n")
        raise


if __name__ == "__main__":
    main()
