#!/usr/bin/env python3
"""Conveyor beside its peers on this machine, in one run: the same workloads, driven by the
same client where the protocol allows, medians of --runs, Conveyor/peer ratios.

  bash scripts/install-deps.sh --peers     # Debian's beanstalkd, redis, nginx, nats, wrk,
                                           # rabbitmq-server; npm clients in bench/peers/node
  python3 bench/peers/run.py [--runs 3] [--only beanstalkd,redis,nginx]   # the default set
  python3 bench/peers/run.py --runs 3 --only rabbitmq,nats,bullmq          # the brokers

With --runs 3 the default set takes ~7 minutes here and the brokers ~8 (RabbitMQ needs
~10 s to start, once per row and run); all six are ~15, so the default leaves them out.

Peers: beanstalkd (in memory; and binlog with `-f 0`, an fsync on every write), Redis lists
(`appendfsync always`, with redis-benchmark's own client, pipelined), nginx `return 200`
(the HTTP ceiling, with wrk, which also drives Conveyor for that row), RabbitMQ (Debian's
3.10: durable classic queue, persistent messages, publisher confirms per batch, manual acks
with a prefetch), NATS JetStream (file-storage stream with work-queue retention, PubAcks
awaited, pull consumer with explicit acks; 2.9 does not fsync each write, so its rows stand
beside Conveyor `batch`) and BullMQ on Redis `appendfsync always` (addBulk; Workers with a
concurrency). The last three are driven by bench/peers/node/peer_load.js (Node.js, the
clients pinned in bench/peers/node/package.json) in the shapes of `conveyor bench`:
`enqueue` (producers only, batches) and `e2e` (half the connections produce, half consume,
tasks/s = acked / time of the last ack).
Each server runs on 127.0.0.1 on a free port and a temp dir, and is stopped by PID (and
process group), also on Ctrl-C or an error. Durable is compared with durable and memory with
memory; an fsync costs ~100-300 µs on this disk, so every durable figure carries one per
commit. Standard library only.
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


def wait_port(port, proc, what, seconds=30):
    deadline = time.time() + seconds
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
        try:
            wait_port(self.port, self.proc, name)
        except BaseException:
            self.stop()
            raise

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


def nats_js(port, d):
    return ["nats-server", "-js", "-sd", d, "-a", "127.0.0.1", "-p", str(port)]


def children_of(pids):
    """Every live descendant of `pids`, from /proc (erl_child_setup and inet_gethost leave
    the broker's process group, so a group kill alone would not reach them)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], list(pids)
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return found


def kill_pids(pids, marks=("beam", "erl_child_setup", "inet_gethost", "epmd")):
    """SIGKILL to those of `pids` still alive and still an Erlang process (not a reused PID)."""
    for p in pids:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
            if any(m in cmdline for m in marks):
                os.kill(p, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


class RabbitMQ:
    """Debian's rabbitmq-server as a process of ours: its own epmd (on a free port, as our
    child, not a daemon), node name conveyor-bench-PORT@localhost, mnesia, logs, cookie and
    an empty plugin list in a temp dir (no management plugin), listening on 127.0.0.1 only.
    stop(): SIGTERM to its process group, SIGKILL after 30 s, then whatever it spawned,
    then epmd; the dir is removed."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # /usr/sbin's wrapper su's to rabbitmq

    def __init__(self):
        self.name = "rabbitmq"
        self.dir = tempfile.mkdtemp(prefix="conveyor-peer-rabbitmq-")
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.proc = self.epmd = None
        self.started_in = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        d = self.dir
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        for name in ("rabbitmq.conf", "rabbitmq-env.conf"):
            open(os.path.join(d, name), "w").close()
        env = dict(os.environ, HOME=d, ERL_EPMD_PORT=str(self.epmd_port),
                   ERL_EPMD_ADDRESS="127.0.0.1")
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.epmd_port, self.epmd, "epmd")
        env.update(
            RABBITMQ_NODENAME=f"conveyor-bench-{self.port}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_PLUGINS_EXPAND_DIR=os.path.join(d, "plugins-expand"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
            RABBITMQ_CONF_ENV_FILE=os.path.join(d, "rabbitmq-env.conf"),
            RABBITMQ_PID_FILE=os.path.join(d, "rabbitmq.pid"))
        self.out = open(os.path.join(d, "stdout.log"), "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.SERVER], env=env, cwd=d, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, self.proc, "rabbitmq-server", seconds=180)
        except RuntimeError:
            with open(os.path.join(d, "stdout.log")) as f:
                raise RuntimeError("rabbitmq-server did not start:\n" + f.read()[-3000:])
        self.started_in = time.monotonic() - t0

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            spawned = children_of([self.proc.pid])
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            kill_pids(spawned)
        if self.epmd is not None and self.epmd.poll() is None:
            self.epmd.kill()
            self.epmd.wait()
        if getattr(self, "out", None):
            self.out.close()
        shutil.rmtree(self.dir, True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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


PUSH_RUNS = []


def median_of(runs, fn):
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def row(workload, ours, peer_name, theirs, note=""):
    ratio = ours / theirs if theirs else 0
    print(f"| {workload} | {ours:,.0f} | {peer_name} {theirs:,.0f} | ×{ratio:.2f} | {note} |",
          flush=True)


def http_json(method, url, body=None):
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"null")


def push_rate(binary, nginx_port, tasks=50000, concurrency=64):
    """Push throughput: `tasks` 100-byte tasks enqueued first (batches of 1000), then the
    queue's push config is set to nginx `return 200` with `concurrency`; tasks/s from
    that PUT to the last ack (polled every 20 ms). Conveyor `sync`."""
    payload = {"t": 0, "data": "x" * 76}
    with Server(binary, "sync") as s:
        for start in range(0, tasks, 1000):
            n = min(1000, tasks - start)
            http_json("POST", s.url + "/v1/queues/push-bench/tasks",
                      {"tasks": [{"payload": payload}] * n})
        started = time.time()
        http_json("PUT", s.url + "/v1/queues/push-bench",
                  {"push": {"url": f"http://127.0.0.1:{nginx_port}/hook",
                            "concurrency": concurrency}})
        while True:
            stats = http_json("GET", s.url + "/v1/queues/push-bench")
            if stats["counts"]["succeeded"] >= tasks:
                return tasks / (time.time() - started)
            if time.time() - started > 600:
                raise RuntimeError(f"push did not finish: {stats}")
            time.sleep(0.02)


def conveyor_rate(binary, durability, *args):
    with Server(binary, durability) as s:
        return bench(binary, s.url, *args)["tasks_per_second"]


def beanstalk_rate(binary, fsync, *args):
    with Peer("beanstalkd", beanstalkd(fsync)) as p:
        return bench(binary, "http://127.0.0.1:1", "--beanstalkd", f"127.0.0.1:{p.port}",
                     *args)["tasks_per_second"]


def conveyor_beanstalk_rate(binary, durability, *args):
    """The same beanstalkd-protocol load against Conveyor's own listener (issue 11)."""
    port = free_port()
    with Server(binary, durability, extra=["--beanstalk", f"127.0.0.1:{port}"]):
        return bench(binary, "http://127.0.0.1:1", "--beanstalkd", f"127.0.0.1:{port}",
                     *args)["tasks_per_second"]


def beanstalk_protocol_rows(binary, r):
    """put + reserve + delete, one job a round trip, 100-byte bodies: Conveyor's beanstalkd
    listener against beanstalkd itself, with the same client, durable beside durable."""
    for connections in (8, 64):
        load = ["e2e", "--duration", "5", "--connections", str(connections),
                "--payload-bytes", "100"]
        (mem, memv) = median_of(r, lambda: beanstalk_rate(binary, False, *load))
        (fs, fsv) = median_of(r, lambda: beanstalk_rate(binary, True, *load))
        for durability in ("none", "sync"):
            (o, ov) = median_of(r, lambda: conveyor_beanstalk_rate(binary, durability, *load))
            row(f"beanstalkd protocol: put+reserve+delete, {connections} connections, Conveyor "
                f"`{durability}`", o, "beanstalkd in memory", mem, f"runs {ov} vs {memv}")
            row(f"beanstalkd protocol: put+reserve+delete, {connections} connections, Conveyor "
                f"`{durability}`", o, "beanstalkd -f 0", fs, f"runs {ov} vs {fsv}")


PEER_LOAD = os.path.join(HERE, "node", "peer_load.js")


def peer_load(peer, port, workload, *args):
    """One run of bench/peers/node/peer_load.js; its JSON line. It exits non-zero (and so
    this raises) on any client error, a count that does not match, or a queue left non-empty
    at the end of e2e."""
    if not os.path.isdir(os.path.join(HERE, "node", "node_modules")):
        raise RuntimeError("bench/peers/node/node_modules is missing: run "
                           "`bash scripts/install-deps.sh --peers`")
    out = subprocess.run(["node", PEER_LOAD, peer, workload, "--port", str(port), *args],
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"peer_load.js {peer} {workload} failed:\n{out.stdout}{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    if not r.get("tasks") or not r.get("tasks_per_second"):
        raise RuntimeError(f"peer_load.js {peer} {workload}: no tasks: {r}")
    return r


# The shapes of the RabbitMQ, NATS and BullMQ rows: the same for Conveyor and the peer.
BROKER_ENQUEUE = ["--tasks", "200000", "--batch", "100", "--connections", "4"]
BROKER_E2E = ["--duration", "8", "--batch", "100", "--connections", "16"]
RABBIT_STARTS = []  # seconds from exec to the AMQP port answering, every start


def start_broker(peer):
    if peer == "rabbitmq":
        return RabbitMQ()
    if peer == "nats":
        return Peer("nats", nats_js)
    return Peer("redis", redis_always)  # bullmq


def broker_rate(peer, workload, *args):
    with start_broker(peer) as p:
        if peer == "rabbitmq":
            RABBIT_STARTS.append(p.started_in)
        return peer_load(peer, p.port, workload, *args)["tasks_per_second"]


def runs_text(values):
    return ", ".join(f"{v:,.0f}" for v in values)


def broker_rows(binary, r, peer, label, durability, why):
    """Two rows, Conveyor `durability` vs the peer: batch enqueue, then end to end."""
    (o, ov) = median_of(r, lambda: conveyor_rate(binary, durability, "enqueue", *BROKER_ENQUEUE))
    (t, tv) = median_of(r, lambda: broker_rate(peer, "enqueue", *BROKER_ENQUEUE))
    row(f"batch enqueue, 4 connections × batches of 100, {why}", o, label, t,
        f"Conveyor `{durability}`, `enqueue --tasks 200000 --batch 100 --connections 4`; "
        f"peer: 200,000 tasks, {BROKER_NOTES[peer][0]}; "
        f"runs {runs_text(ov)} vs {runs_text(tv)}")
    (o, ov) = median_of(r, lambda: conveyor_rate(binary, durability, "e2e", *BROKER_E2E))
    (t, tv) = median_of(r, lambda: broker_rate(peer, "e2e", *BROKER_E2E, "--prefetch", "100"))
    row(f"end to end, 8 s of producing, 8 + 8 connections, batches of 100, {why}", o, label, t,
        f"Conveyor `{durability}`, `e2e --duration 8 --batch 100 --connections 16` (lease 100, "
        f"batch ack); peer: {BROKER_NOTES[peer][1]}; runs {runs_text(ov)} vs {runs_text(tv)}")


BROKER_NOTES = {  # what the peer does, for the notes column: (enqueue, e2e)
    "rabbitmq": ("4 connections, persistent messages, each batch's confirms awaited",
                 "8 producers as in enqueue, 8 consumers with prefetch 100 and manual acks, "
                 "`multiple` per burst (at most 50); acks are not confirmed to the client"),
    "nats": ("4 connections, the PubAcks of each batch awaited",
             "8 producers as in enqueue, 8 connections on one durable pull consumer, "
             "fetch 100, explicit ack each (no reply)"),
    "bullmq": ("4 Queues (connections), `addBulk` of 100, removeOnComplete",
               "8 Queues with `addBulk` of 100, 8 Workers of concurrency 100 whose "
               "processor returns at once"),
}


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
    ap.add_argument("--only", default="beanstalkd,redis,nginx",
                    help="comma-separated: beanstalkd,redis,nginx,push,rabbitmq,nats,bullmq,"
                         "beanstalk-protocol")
    ap.add_argument("--skip", default="", help="rows to leave out: single,e2e,lowload")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    only = set(a.only.split(","))
    unknown = only - {"beanstalkd", "redis", "nginx", "push", "rabbitmq", "nats", "bullmq",
                      "beanstalk-protocol"}
    if unknown:
        ap.error(f"--only: unknown peer {', '.join(sorted(unknown))}")
    # SIGTERM unwinds like Ctrl-C, so every `with` stops its server and removes its dir.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
    if "push" in only:
        lua = os.path.join(tempfile.mkdtemp(prefix="conveyor-wrk-"), "post.lua")
        with open(lua, "w") as f:
            f.write(POST_LUA)
        for _ in range(r):  # alternating, each pair against the same nginx
            with Peer("nginx", nginx) as p:
                pushed = push_rate(binary, p.port)
                direct = wrk(f"http://127.0.0.1:{p.port}/hook", 5, lua)
            PUSH_RUNS.append((pushed, direct))
        o = statistics.median(v[0] for v in PUSH_RUNS)
        t = statistics.median(v[1] for v in PUSH_RUNS)
        row("push: 50,000 100-byte tasks to nginx `return 200`, concurrency 64, sync", o,
            "wrk -c64 on the same nginx", t,
            "runs " + ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in PUSH_RUNS))
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
    if "beanstalk-protocol" in only:
        beanstalk_protocol_rows(binary, r)
    if "redis" in only:
        batch = ["enqueue", "--tasks", "1000000", "--batch", "1000", "--connections", "4"]
        (o, ov) = median_of(r, lambda: conveyor_rate(binary, "sync", *batch))

        def theirs():
            with Peer("redis", redis_always) as p:
                return redis_lpush(p.port, 1000000)
        (t, tv) = median_of(r, theirs)
        row("batch enqueue (Conveyor 1000 per request; Redis LPUSH pipelined ×100), fsync", o,
            "Redis `appendfsync always`", t, f"redis-benchmark's client; runs {ov} vs {tv}")
    if "rabbitmq" in only:
        broker_rows(binary, r, "rabbitmq", "RabbitMQ (durable classic queue)", "sync",
                    "fsync before the answer")
        print(f"(RabbitMQ started in {statistics.median(RABBIT_STARTS):.1f} s, median of "
              f"{len(RABBIT_STARTS)} starts; not in its rates)", file=sys.stderr, flush=True)
    if "nats" in only:
        broker_rows(binary, r, "nats", "NATS JetStream (file stream)", "batch",
                    "no fsync per write (NATS 2.9: Conveyor `batch`)")
    if "bullmq" in only:
        broker_rows(binary, r, "bullmq", "BullMQ (Redis `appendfsync always`)", "sync",
                    "fsync before the answer")


if __name__ == "__main__":
    main()
