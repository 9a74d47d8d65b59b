"""Slow and abusive clients against a real `conveyor serve` (TESTPLAN E.30-E.33).

The server runs with small timeouts so the tests are fast:
  --header-timeout-ms 1000  a request must be fully read within 1 s of its first byte
  --idle-timeout-ms 1500    a keep-alive connection with no request in progress
  --write-timeout-ms 1000   a response write that makes no progress
  --max-connections N       50 for the flood test, 1000 elsewhere (so that 100 slowloris
                            sockets test the timeouts, not the connection limit)
Random bytes come from a seeded generator; the seed is printed (CONVEYOR_TEST_SEED=... to
repeat a run).

Run: CONVEYOR_BIN=build/conveyor python3 tests/integration/test_slow_clients.py
"""
import json
import math
import os
import random
import re
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase  # noqa: E402
from rawhttp import RawClient, IncompleteResponse, request_bytes  # noqa: E402

SEED = int(os.environ.get("CONVEYOR_TEST_SEED", str(time.time_ns() % (1 << 32))))
print(f"test_slow_clients: CONVEYOR_TEST_SEED={SEED}", file=sys.stderr)

HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.5
TIMEOUT_ARGS = ("--header-timeout-ms", "1000", "--idle-timeout-ms", "1500",
                "--write-timeout-ms", "1000")
CLOSE_WITHIN = 3.0   # a timed-out connection must be closed this long after it started
MAX_CONNECTIONS = 50
FD_SLACK = 40        # listener, epoll/eventfd/timerfd per thread, log, stdio, ...


def server_fds(pid):
    """The server's open file descriptors as {fd: link target}, or None without /proc."""
    try:
        out = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        return out
    except OSError:
        return None


def server_side_inode(server_port, client_port):
    """Inode of the server's end of the loopback connection to client_port (0 when the
    server has closed its descriptor but the kernel still holds the socket), or None."""
    try:
        with open("/proc/net/tcp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if (int(local.split(":")[1], 16) == server_port
                and int(remote.split(":")[1], 16) == client_port):
            return inode
    return None


def server_holds_connection(pid, server_port, client_port):
    """True/False whether the server process still has a descriptor for the connection;
    None if /proc cannot tell."""
    fds = server_fds(pid)
    if fds is None:
        return None
    inode = server_side_inode(server_port, client_port)
    if not inode:
        return False
    return f"socket:[{inode}]" in fds.values()


class Slowloris(threading.Thread):
    """slots connections, each sending one more header byte every interval and never
    finishing the request; a slot whose connection is closed reconnects until the end."""

    PREFIX = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    def __init__(self, port, slots, duration, interval=0.3, prefix=None, burst=b""):
        super().__init__(daemon=True)
        self.burst = burst  # sent at once on connect, before the trickle
        self.port = port
        self.slots = slots
        self.duration = duration
        self.interval = interval
        self.prefix = prefix or self.PREFIX
        self.records = []   # every connection: {"first", "closed", "data", ...}
        self.error = None
        self.end = None

    def _open(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        if self.burst:
            s.sendall(self.burst)
        s.setblocking(False)
        rec = {"sock": s, "pos": 0, "first": None, "closed": None, "data": b""}
        self.records.append(rec)
        self._send_byte(rec)
        return rec

    def _send_byte(self, rec):
        byte = self.prefix[rec["pos"]:rec["pos"] + 1] or b"a"
        try:
            rec["sock"].send(byte)
            rec["pos"] += 1
        except OSError:
            pass  # closed by the server: select reports it
        if rec["first"] is None:
            rec["first"] = time.monotonic()

    def run(self):
        live = []
        try:
            start = time.monotonic()
            self.end = start + self.duration
            live = [self._open() for _ in range(self.slots)]
            next_tick = time.monotonic() + self.interval
            while True:
                now = time.monotonic()
                if now >= self.end:
                    break
                wait = max(0.0, min(next_tick, self.end) - now)
                by_sock = {r["sock"]: r for r in live}
                readable = select.select(list(by_sock), [], [], wait)[0] if by_sock else []
                if not by_sock:
                    time.sleep(wait)
                now = time.monotonic()
                for s in readable:
                    rec = by_sock[s]
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        rec["data"] += data  # e.g. a 408 before the close
                        continue
                    rec["closed"] = now
                    s.close()
                    live.remove(rec)
                    if now < self.end - 0.5:
                        live.append(self._open())
                if now >= next_tick:
                    for rec in live:
                        self._send_byte(rec)
                    next_tick += self.interval
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            for rec in live:
                rec["sock"].close()


class SlowClientCase(ServerTestCase):
    def tearDown(self):
        self.assertIsNone(self.server.proc.poll(),
                          "server exited:\n" + self.server.output()[-4000:])
        status, _, body = self.server.request("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, body)

    def raw(self, timeout=5.0, **kw):
        return RawClient(self.server.port, timeout=timeout, **kw)

    def timed_healthz(self):
        t = time.monotonic()
        status, _, body = self.server.request("GET", "/healthz", timeout=5)
        elapsed = time.monotonic() - t
        self.assertEqual(status, 200, body)
        return elapsed

    def assertClosedOrError(self, client, what, statuses=(400,)):
        """After garbage: an error response (JSON body) then a close, or just a close."""
        try:
            resp = client.read_response(timeout=5)
        except IncompleteResponse:
            resp = None
        except socket.timeout:
            self.fail(f"{what}: server neither answered nor closed within 5 s")
        if resp is not None:
            self.assertIn(resp.status, statuses, f"{what}: {resp}")
            body = resp.json()
            self.assertIsInstance(body, dict, f"{what}: {resp}")
            self.assertIn("error", body)
        self.assertTrue(client.wait_closed(5), f"{what}: connection left open")


class TimeoutTest(SlowClientCase):
    server_args = TIMEOUT_ARGS + ("--max-connections", "1000")

    def test_slowloris(self):
        attack = Slowloris(self.server.port, slots=100, duration=4.5)
        attack.start()
        time.sleep(0.3)
        latencies = []
        try:
            for _ in range(50):
                latencies.append(self.timed_healthz())
                time.sleep(0.05)
        finally:
            attack.join(15)
        self.assertFalse(attack.is_alive())
        self.assertIsNone(attack.error, repr(attack.error))

        latencies.sort()
        p99 = latencies[math.ceil(0.99 * len(latencies)) - 1]
        self.assertLess(p99, 0.2, f"normal client p99 {p99 * 1000:.0f} ms under slowloris; "
                                  f"median {latencies[len(latencies) // 2] * 1000:.0f} ms")

        checked = [r for r in attack.records if r["first"] <= attack.end - CLOSE_WITHIN]
        self.assertGreaterEqual(len(checked), 100)
        slow = [r for r in checked
                if r["closed"] is None or r["closed"] - r["first"] > CLOSE_WITHIN]
        self.assertEqual(len(slow), 0,
                         f"{len(slow)} of {len(checked)} slowloris connections were not "
                         f"closed within {CLOSE_WITHIN} s of their first byte")
        for r in attack.records:
            self.assertFalse(r["data"].startswith(b"HTTP/1.1 2"),
                             f"an incomplete request was answered: {r['data'][:200]!r}")

    def test_slow_body(self):
        # Headers complete, body trickling: the whole request must arrive within 1 s.
        head = (b"POST /v1/queues/slowbody/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n")
        attack = Slowloris(self.server.port, slots=20, duration=4.0,
                           burst=head, prefix=b'{"payload":"')
        attack.start()
        attack.join(15)
        self.assertIsNone(attack.error, repr(attack.error))
        checked = [r for r in attack.records if r["first"] <= attack.end - CLOSE_WITHIN]
        self.assertGreaterEqual(len(checked), 20)
        for r in checked:
            self.assertIsNotNone(r["closed"], "slow body never timed out")
            self.assertLessEqual(r["closed"] - r["first"], CLOSE_WITHIN)
        status, body = self.server.call("POST", "/v1/queues/slowbody/lease", {"max": 10})
        self.assertEqual(body["tasks"], [])

    def test_idle_keepalive_closed(self):
        with self.raw() as c:
            c.send(request_bytes("GET", "/healthz"))
            resp = c.read_response(timeout=5)
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200)
            t = time.monotonic()
            self.assertTrue(c.wait_closed(4.0), "idle keep-alive connection not closed in 4 s")
            elapsed = time.monotonic() - t
        self.assertGreaterEqual(elapsed, IDLE_TIMEOUT - 0.5,
                                f"keep-alive connection closed after only {elapsed:.2f} s")

    def test_keepalive_activity_resets_idle_timer(self):
        with self.raw() as c:
            for i in range(4):  # 0.9 s apart: each gap is below the 1.5 s idle timeout
                if i:
                    time.sleep(0.9)
                self.assertTrue(c.send(request_bytes("GET", "/healthz")),
                                f"connection closed before request {i}")
                resp = c.read_response(timeout=5)
                self.assertIsNotNone(resp, f"connection closed before response {i}")
                self.assertEqual(resp.status, 200)
            self.assertTrue(c.wait_closed(4.0))

    def test_silent_connection_closed(self):
        with self.raw() as c:
            t = time.monotonic()
            self.assertTrue(c.wait_closed(4.0), "a connection that never sent a byte "
                                                "was kept open for 4 s")
            self.assertFalse(c.buf.startswith(b"HTTP/1.1 2"), c.buf[:200])
        self.assertLess(time.monotonic() - t, 4.0)

    def test_long_poll_outlives_idle_and_header_timeouts(self):
        result = {}

        def poll():
            t = time.monotonic()
            result["resp"] = self.server.call("POST", "/v1/queues/longpoll/lease",
                                              {"max": 1, "wait_ms": 3000}, timeout=10)
            result["elapsed"] = time.monotonic() - t

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        time.sleep(2.0)  # longer than both timeouts
        status, body = self.server.call("POST", "/v1/queues/longpoll/tasks",
                                        {"payload": "late"})
        self.assertEqual(status, 201, body)
        th.join(10)
        self.assertIn("resp", result, "long-poll did not return")
        status, body = result["resp"]
        self.assertEqual(status, 200, body)
        self.assertEqual([t["payload"] for t in body["tasks"]], ["late"])
        self.assertGreaterEqual(result["elapsed"], 1.9)

    def test_slow_reader(self):
        # Twelve ~900 KB tasks leased at once: ~10.8 MB, more than the kernel will buffer
        # (tcp_wmem max + our tiny receive buffer), so the server's write must stall.
        payload = "p" * 900_000
        for _ in range(12):
            status, _, body = self.server.request(
                "POST", "/v1/queues/slowreader/tasks", json.dumps({"payload": payload}),
                headers={"Content-Type": "application/json"}, timeout=10)
            self.assertEqual(status, 201, body)
        pid, port = self.server.proc.pid, self.server.port

        c = self.raw(timeout=10, rcvbuf=4096)
        try:
            client_port = c.local_port
            c.send(request_bytes("POST", "/v1/queues/slowreader/lease",
                                 json.dumps({"max": 12, "lease_ms": 60000}),
                                 {"Content-Type": "application/json"}))
            t0 = time.monotonic()
            held = server_holds_connection(pid, port, client_port)
            while held is False and time.monotonic() - t0 < 1.0:  # not accepted yet
                time.sleep(0.02)
                held = server_holds_connection(pid, port, client_port)
            # Others are served while the write is stuck.
            for _ in range(5):
                self.assertLess(self.timed_healthz(), 1.0)
                time.sleep(0.1)
            if held:
                while time.monotonic() - t0 < 6.0:
                    if not server_holds_connection(pid, port, client_port):
                        break
                    time.sleep(0.1)
                closed_after = time.monotonic() - t0
                self.assertFalse(server_holds_connection(pid, port, client_port),
                                 "server still holds a connection whose reader stalled "
                                 "for 6 s (write timeout 1 s)")
                print(f"slow reader dropped after {closed_after:.2f} s", file=sys.stderr)
            else:
                time.sleep(4.0)

            # Now drain: a server that gave up sends a truncated response then EOF/reset.
            total, length = 0, None
            c.sock.settimeout(10)
            head = b""
            while True:
                try:
                    chunk = c.sock.recv(1 << 20)
                except (ConnectionResetError, ConnectionAbortedError):
                    break
                except socket.timeout:
                    self.fail(f"connection still open after the stalled write "
                              f"({total} bytes read)")
                if not chunk:
                    break
                if length is None and len(head) < 4096:
                    head += chunk
                    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
                    if m:
                        length = int(m.group(1)) + head.index(b"\r\n\r\n") + 4
                total += len(chunk)
            full = length if length is not None else 12 * 900_000
            try:
                with open("/proc/sys/net/ipv4/tcp_wmem") as f:
                    wmem_max = int(f.read().split()[2])
            except OSError:
                wmem_max = 4 << 20
            if full > wmem_max + (1 << 20):
                self.assertLess(total, full, "the whole stalled response was delivered: "
                                             "no write timeout")
        finally:
            c.close()

    def test_garbage_bytes(self):
        rng = random.Random(SEED)
        garbage = bytes(rng.getrandbits(8) for _ in range(64 * 1024))
        with self.raw() as c:
            c.send_watching(garbage)
            self.assertClosedOrError(c, "64 KB random bytes", (400, 431))
        with self.raw() as c:
            c.send_watching(b"GET /healthz HTTP/1.1\r\n" + garbage[:8192] + b"\r\n\r\n")
            self.assertClosedOrError(c, "request line then random bytes", (400, 431))
        with self.raw() as c:
            c.send(request_bytes("GET", "/healthz"))
            resp = c.read_response(timeout=5)
            self.assertEqual(resp.status, 200)
            c.send_watching(garbage)
            self.assertClosedOrError(c, "random bytes after a good request", (400, 431))


class FloodTest(SlowClientCase):
    server_args = TIMEOUT_ARGS + ("--max-connections", str(MAX_CONNECTIONS))

    def test_connection_flood(self):
        pid = self.server.proc.pid
        time.sleep(0.3)  # the harness' readiness probes are closed and forgotten
        clients = []
        try:
            for _ in range(80):
                clients.append(self.raw())
            time.sleep(0.2)
            fds = server_fds(pid)
            for c in clients:
                c.send(request_bytes("GET", "/healthz"))  # may fail: already refused
            deadline = time.monotonic() + 5
            outcomes = []
            for c in clients:
                try:
                    resp = c.read_response(timeout=max(0.1, deadline - time.monotonic()))
                    kind = "closed" if resp is None else (
                        "ok" if resp.status == 200 else "refused")
                except socket.timeout:
                    kind, resp = "hang", None
                except IncompleteResponse:
                    kind, resp = "closed", None
                outcomes.append((kind, resp))
            kinds = [k for k, _ in outcomes]
            summary = {k: kinds.count(k) for k in set(kinds)}
            self.assertNotIn("hang", kinds, f"connections beyond the limit got neither "
                                            f"an answer nor a close: {summary}")
            served = [c for c, k in zip(clients, kinds) if k == "ok"]
            self.assertLessEqual(len(served), MAX_CONNECTIONS, summary)
            self.assertGreaterEqual(len(served), MAX_CONNECTIONS - 10, summary)
            self.assertEqual(kinds[:10], ["ok"] * 10, "the first connections were refused")
            for c, (kind, resp) in zip(clients, outcomes):
                if kind == "refused":
                    self.assertEqual(resp.status, 503, resp)
                    self.assertIn("retry-after", resp.headers, resp)
                    self.assertRegex(resp.headers["retry-after"], r"^\d+$")
                    body = resp.json()
                    self.assertIsInstance(body, dict, resp)
                    self.assertEqual(body["error"]["code"], "overloaded", body)
                if kind != "ok":
                    self.assertTrue(c.wait_closed(3), "a refused connection stayed open")
            if fds is not None:
                self.assertLessEqual(len(fds), MAX_CONNECTIONS + FD_SLACK,
                                     f"server has {len(fds)} descriptors during the flood")
            # The accepted connections keep working.
            for c in served:
                self.assertTrue(c.send(request_bytes("GET", "/healthz")))
            for c in served:
                resp = c.read_response(timeout=5)
                self.assertIsNotNone(resp, "an accepted connection was dropped")
                self.assertEqual(resp.status, 200)
        finally:
            for c in clients:
                c.close()

        # Once they are gone, the slots are free again.
        time.sleep(0.5)
        fresh = [self.raw() for _ in range(MAX_CONNECTIONS - 5)]
        try:
            for c in fresh:
                c.send(request_bytes("GET", "/healthz"))
            for c in fresh:
                resp = c.read_response(timeout=5)
                self.assertIsNotNone(resp, "new connection refused after the flood ended")
                self.assertEqual(resp.status, 200, resp)
        finally:
            for c in fresh:
                c.close()


if __name__ == "__main__":
    unittest.main()
