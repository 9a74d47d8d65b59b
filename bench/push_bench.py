#!/usr/bin/env python3
"""Push delivery measurements against a local receiver written with asyncio (standard
library only; one thread, so it holds 10,000 open requests without 10,000 threads).

  python3 bench/push_bench.py latency [--rate 2000] [--seconds 5]   # enqueue -> delivery
  python3 bench/push_bench.py memory [--in-flight 10000]            # RSS with deliveries held
  python3 bench/push_bench.py model [--unit-ms 100]                 # 10 endpoints, 1..10 units

latency: Conveyor `sync`, a push queue (concurrency 64) to the receiver; tasks enqueued open
loop at --rate from 8 keep-alive connections, each payload carrying its send time; the
receiver answers 200 at once and records arrival - send. Percentiles of that.
memory: a receiver that holds every request for a long time; --in-flight tasks with
concurrency --in-flight; the server's VmRSS before the deliveries and once all are in
flight, per delivery.
model: the Σtᵢ vs max tᵢ example of docs/MODEL.md on push: ten tasks whose endpoint takes
1..10 units, delivered with concurrency 1 (one at a time: Σ = 55 units) and concurrency 10
(≈ max = 10 units).
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))
from foundation_bench import Server  # noqa: E402
from run import http_json as http  # noqa: E402

BINARY = os.path.join(HERE, "..", "build", "conveyor")


class Receiver:
    """An HTTP/1.1 keep-alive receiver on asyncio: behave(body) -> awaitable of a status."""

    def __init__(self, behave):
        self.behave = behave
        self.open_requests = 0
        self.requests = 0

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.open_requests += 1
                self.requests += 1
                try:
                    status = await self.behave(body)
                finally:
                    self.open_requests -= 1
                writer.write(b"HTTP/1.1 %d OK\r\nContent-Length: 0\r\n\r\n" % status)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=20000)
        self.port = self.server.sockets[0].getsockname()[1]
        return self


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def wait_for(check, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.05)
    return False


async def enqueue_open_loop(port, queue, rate, seconds, connections=8):
    """Open-loop enqueues at `rate` from `connections` keep-alive connections."""
    interval = connections / rate
    end = time.time() + seconds
    sent = 0

    async def one(k):
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        due = time.time() + k * interval / connections
        while due < end:
            now = time.time()
            if due > now:
                await asyncio.sleep(due - now)
            body = json.dumps({"payload": {"t": time.time()}}).encode()
            writer.write(b"POST /v1/queues/%s/tasks HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (queue.encode(), len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([l for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:")][0].split(b":")[1])
            await reader.readexactly(length)
            sent += 1
            due += interval
        writer.close()

    await asyncio.gather(*(one(k) for k in range(connections)))
    return sent


async def latency(args):
    delays = []

    async def behave(body):
        delays.append(time.time() - json.loads(body)["t"])
        return 200

    r = await Receiver(behave).start()
    with Server(args.binary, "sync") as s:
        http("PUT", s.url + "/v1/queues/lat", {"push": {"url": f"http://127.0.0.1:{r.port}/",
                                                         "concurrency": 64}})
        port = int(s.url.rsplit(":", 1)[1])
        sent = await enqueue_open_loop(port, "lat", args.rate, args.seconds)
        await wait_for(lambda: len(delays) >= sent, 30)
    delays.sort()
    q = lambda p: delays[min(len(delays) - 1, int(p * len(delays)))] * 1000  # noqa: E731
    print(json.dumps({"rate": args.rate, "sent": sent, "delivered": len(delays),
                      "p50_ms": round(q(0.50), 2), "p90_ms": round(q(0.90), 2),
                      "p99_ms": round(q(0.99), 2), "max_ms": round(delays[-1] * 1000, 2)}))


async def memory(args):
    release = asyncio.Event()

    async def behave(body):
        await release.wait()
        return 200

    r = await Receiver(behave).start()
    n = args.in_flight
    with Server(args.binary, "sync", extra=["--max-connections", "1000"]) as s:
        for start in range(0, n, 1000):
            http("POST", s.url + "/v1/queues/mem/tasks",
                 {"tasks": [{"payload": {"data": "x" * 76}}] * min(1000, n - start)})
        time.sleep(0.5)
        before = rss_kb(s.pid)
        http("PUT", s.url + "/v1/queues/mem", {"push": {"url": f"http://127.0.0.1:{r.port}/",
                                                         "concurrency": n,
                                                         "timeout_ms": 120000}})
        ok = await wait_for(lambda: r.open_requests >= n, 60)
        await asyncio.sleep(0.5)
        during = rss_kb(s.pid)
        held = r.open_requests
        push = http("GET", s.url + "/v1/queues/mem")["push"]
        release.set()
        done = await wait_for(lambda: http("GET", s.url + "/v1/queues/mem")["counts"]
                              ["succeeded"] >= n, 120)
        after = rss_kb(s.pid)
    print(json.dumps({"in_flight": n, "all_in_flight": ok, "held_by_receiver": held,
                      "server_in_flight": push["in_flight"], "failed": push["failed"],
                      "all_delivered": done,
                      "rss_before_mib": round(before / 1024, 1),
                      "rss_in_flight_mib": round(during / 1024, 1),
                      "rss_after_mib": round(after / 1024, 1),
                      "kib_per_delivery_in_flight": round((during - before) / max(held, 1), 2)}))


async def model(args):
    unit = args.unit_ms / 1000

    async def behave(body):
        await asyncio.sleep(json.loads(body)["units"] * unit)
        return 200

    r = await Receiver(behave).start()
    out = {}
    with Server(args.binary, "sync") as s:
        for concurrency in (1, 10):
            q = f"model-{concurrency}"
            http("POST", s.url + f"/v1/queues/{q}/tasks",
                 {"tasks": [{"payload": {"units": i}} for i in range(1, 11)]})
            started = time.time()
            http("PUT", s.url + f"/v1/queues/{q}", {"push": {
                "url": f"http://127.0.0.1:{r.port}/", "concurrency": concurrency}})
            await wait_for(lambda: http("GET", s.url + f"/v1/queues/{q}")["counts"]
                           ["succeeded"] >= 10, 120)
            out[f"concurrency_{concurrency}_units"] = round((time.time() - started) / unit, 1)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["latency", "memory", "model"])
    ap.add_argument("--binary", default=BINARY)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--in-flight", type=int, default=10000)
    ap.add_argument("--unit-ms", type=int, default=100)
    args = ap.parse_args()
    asyncio.run({"latency": latency, "memory": memory, "model": model}[args.what](args))
    sys.stdout.flush()
    os._exit(0)  # the receiver's connections need no orderly end


if __name__ == "__main__":
    main()
