"""HTTP framing robustness against a real `conveyor serve` (regression tests).

Oversized trailer fields and names, header fields over 64 KiB with a raised header limit,
trailers and chunk extensions that must count against the limits, absolute-form request
targets, a leading CRLF before the request line, unknown transfer codings, a long-poll
whose client pipelined bytes and then went away, and byte-by-byte header delivery.

Every test checks that the server is still alive and serving afterwards. If a test kills
the server, the next test starts a fresh one (setUp), so one crash does not fail the rest.
Requests http.client refuses to send go through rawhttp.RawClient.

Run: CONVEYOR_BIN=build/conveyor python3 tests/integration/test_http_robustness.py
"""
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Server, ServerTestCase  # noqa: E402
from rawhttp import RawClient, IncompleteResponse, request_bytes  # noqa: E402

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RSS_GROWTH_LIMIT_KB = 50 * 1024


def chunked(data, size=None):
    """data as one chunk (or chunks of size bytes), without the last chunk."""
    size = size or len(data)
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out


CHUNKED_HEAD = (b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")


def post_head(path, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra
            + CHUNKED_HEAD)


class RobustnessCase(ServerTestCase):
    """Helpers; a dead server is replaced before each test, checked after each."""

    def setUp(self):
        if self.server.proc.poll() is not None:  # an earlier test crashed it
            self.server.log.close()
            type(self).server = Server(self.server_args)

    def tearDown(self):
        if not getattr(self, "death_reported", False):
            self.assertServing()

    def assertServing(self):
        self.assertIsNone(self.server.proc.poll(),
                          "server exited (code %s):\n%s"
                          % (self.server.proc.returncode, self.server.output()[-4000:]))
        status, _, body = self.server.request("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, body)

    def server_died(self):
        """True if the server has exited (waiting briefly for a crash in progress)."""
        try:
            self.server.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            return False
        return True

    def raw(self, timeout=5.0, **kw):
        return RawClient(self.server.port, timeout=timeout, **kw)

    def rss_kb(self):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def read(self, client, timeout=5.0):
        """One response, or a failure naming what happened (closed, reset, crash)."""
        try:
            resp = client.read_response(timeout=timeout)
        except socket.timeout:
            self.fail(f"no answer within {timeout} s")
        except IncompleteResponse as e:
            self.death_reported = self.server_died()
            self.fail(f"connection closed mid-response: {e}; server alive: "
                      f"{self.server.proc.poll() is None}")
        if resp is None:
            self.death_reported = self.server_died()
            self.fail("connection closed without a response; server alive: "
                      f"{self.server.proc.poll() is None}\n{self.server.output()[-2000:]}")
        return resp

    def assertErrorBody(self, resp, code=None):
        body = resp.json()
        self.assertIsInstance(body, dict, resp)
        self.assertIn("error", body, resp)
        self.assertIsInstance(body["error"].get("code"), str, resp)
        self.assertRegex(body["error"]["code"], CODE_RE)
        self.assertIsInstance(body["error"].get("message"), str, resp)
        if code is not None:
            self.assertEqual(body["error"]["code"], code, resp)
        return body

    def assertRefused(self, data, statuses, code=None):
        """Sends data (stopping early once answered); expects one of statuses and a close."""
        with self.raw() as c:
            c.send_watching(data)
            resp = self.read(c)
            self.assertIn(resp.status, statuses, resp)
            self.assertErrorBody(resp, code)
            self.assertTrue(c.wait_closed(5.0), f"connection kept open after {resp.status}")
        return resp

    def assertAliveAfter(self):
        self.death_reported = self.server_died()
        self.assertIsNone(self.server.proc.poll(),
                          "server died:\n" + self.server.output()[-4000:])
        status, _, body = self.server.request("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, body)


class DefaultLimitsTest(RobustnessCase):
    """Default flags: header block 16 KiB, body 1 MiB."""

    # ---- 1: a trailer field of 65534 bytes ----

    def test_chunked_trailer_field_of_65534_bytes_is_refused_not_a_crash(self):
        q = self.qname()
        data = (post_head(f"/v1/queues/{q}/tasks") + chunked(b'{"payload":1}')
                + b"0\r\nX-T: " + b"a" * 65534 + b"\r\n\r\n")
        self.assertRefused(data, (431, 400))
        self.assertAliveAfter()

    def test_chunked_trailer_field_name_of_65534_bytes_is_refused_not_a_crash(self):
        q = self.qname()
        data = (post_head(f"/v1/queues/{q}/tasks") + chunked(b'{"payload":1}')
                + b"0\r\n" + b"X" * 65534 + b": v\r\n\r\n")
        self.assertRefused(data, (431, 400))
        self.assertAliveAfter()

    # ---- 3: trailers count against the header limit ----

    def test_chunked_trailers_count_against_header_limit(self):
        q = self.qname()
        rss_before = self.rss_kb()
        # 40,000 fields of 50 bytes: ~2 MB of trailers, each field small.
        trailers = b"".join(b"X-T%06d: " % i + b"t" * 37 + b"\r\n" for i in range(40000))
        self.assertEqual(len(trailers), 40000 * 50)
        data = (post_head(f"/v1/queues/{q}/tasks") + chunked(b'{"payload":1}')
                + b"0\r\n" + trailers + b"\r\n")
        resp = self.assertRefused(data, (431,))
        self.assertErrorBody(resp, "headers_too_large")
        self.assertAliveAfter()
        growth = self.rss_kb() - rss_before
        self.assertLess(growth, RSS_GROWTH_LIMIT_KB, f"RSS grew {growth} kB")
        status, body = self.call("GET", f"/v1/queues/{q}/tasks")
        if status == 200:
            self.assertEqual(body["tasks"], [], "a refused request was stored")

    # ---- 4: chunk extensions count against the limits ----

    def test_chunk_extensions_count_against_limits(self):
        q = self.qname()
        rss_before = self.rss_kb()
        # A valid JSON body sent one byte per chunk, every chunk carrying a 4 KB
        # extension: ~2.2 MB of extensions. A server that ignores them answers 201.
        body = b'{"payload":"' + b"A" * 500 + b'"}'
        ext = b";ext=" + b"x" * 4091  # 4096 bytes
        data = post_head(f"/v1/queues/{q}/tasks")
        data += b"".join(b"1" + ext + b"\r\n" + body[i:i + 1] + b"\r\n"
                         for i in range(len(body)))
        data += b"0\r\n\r\n"
        self.assertGreater(len(data), 2_000_000)
        self.assertRefused(data, (413, 400, 431))
        self.assertAliveAfter()
        growth = self.rss_kb() - rss_before
        self.assertLess(growth, RSS_GROWTH_LIMIT_KB, f"RSS grew {growth} kB")
        status, listing = self.call("GET", f"/v1/queues/{q}/tasks")
        if status == 200:
            self.assertEqual(listing["tasks"], [], "a refused request was stored")

    # ---- 5: absolute-form request target (RFC 9112 3.2.2) ----

    def test_absolute_form_target_is_accepted(self):
        port = self.server.port
        with self.raw() as c:
            c.send(f"GET http://127.0.0.1:{port}/healthz HTTP/1.1\r\n"
                   "Host: 127.0.0.1\r\n\r\n".encode())
            resp = self.read(c)
            self.assertEqual(resp.status, 200, resp)
        q = self.qname()
        body = b'{"payload":{"absolute":true}}'
        with self.raw() as c:
            c.send(f"POST http://127.0.0.1:{port}/v1/queues/{q}/tasks HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            resp = self.read(c)
            self.assertEqual(resp.status, 201, resp)
            tid = resp.json()["id"]
        status, task = self.call("GET", f"/v1/tasks/{tid}")
        self.assertEqual(status, 200, task)
        self.assertEqual(task["queue"], q)
        self.assertEqual(task["payload"], {"absolute": True})

    # ---- 6: one empty line before the request line (RFC 9112 2.2) ----

    def test_one_leading_crlf_before_request_line_is_ignored(self):
        with self.raw() as c:
            c.send(b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = self.read(c)
            self.assertEqual(resp.status, 200, resp)

    # ---- 7: transfer codings (RFC 9112 6.1, 6.3) ----

    def test_unknown_transfer_coding_is_501(self):
        q = self.qname()
        body = b'{"payload":1}'
        head = (f"POST /v1/queues/{q}/tasks HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\n").encode()
        with self.raw() as c:
            c.send(head + b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                   + chunked(body) + b"0\r\n\r\n")
            resp = self.read(c)
            self.assertEqual(resp.status, 501, resp)
            self.assertErrorBody(resp, "not_implemented")
            self.assertTrue(c.wait_closed(5.0), "connection kept open after 501")
        # chunked not last: the length cannot be determined → 400 and close.
        with self.raw() as c:
            c.send(head + b"Transfer-Encoding: gzip\r\n\r\n" + body)
            resp = self.read(c)
            self.assertEqual(resp.status, 400, resp)
            self.assertErrorBody(resp)
            self.assertTrue(c.wait_closed(5.0), "connection kept open after 400")
        status, listing = self.call("GET", f"/v1/queues/{q}/tasks")
        if status == 200:
            self.assertEqual(listing["tasks"], [], "a refused request was stored")

    # ---- 8: a long-poll whose client pipelined bytes and went away ----

    def abandoned_long_poll(self, q, pipelined, pause):
        """A sends a lease (wait_ms 5000) and the pipelined bytes, in the same sendall
        (pause None) or pause seconds later, once the server is waiting; then A closes.
        A task enqueued afterwards must go to B, not to A's dead connection."""
        lease = request_bytes("POST", f"/v1/queues/{q}/lease",
                              json.dumps({"max": 1, "wait_ms": 5000}),
                              {"Content-Type": "application/json"})
        a = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        try:
            if pause is None:
                a.sendall(lease + pipelined)
            else:
                a.sendall(lease)
                time.sleep(pause)
                if pipelined:
                    a.sendall(pipelined)
            a.shutdown(socket.SHUT_RDWR)
        finally:
            a.close()
        time.sleep(0.5)
        tid = self.enqueue(q, {"for": "b"}, max_attempts=1)
        started = time.monotonic()
        status, body = self.call("POST", f"/v1/queues/{q}/lease",
                                 {"max": 1, "wait_ms": 2000}, timeout=10)
        self.assertEqual(status, 200, body)
        got = [t["id"] for t in body["tasks"]]
        status, task = self.call("GET", f"/v1/tasks/{tid}")
        how = "in the same send" if pause is None else f"{pause} s after the lease"
        self.assertEqual(got, [tid],
                         f"pipelined {pipelined!r} {how}, then close: the task went to the "
                         f"closed connection (state {task.get('state')}, attempts "
                         f"{task.get('attempts')}); B waited "
                         f"{time.monotonic() - started:.1f} s")

    def abandoned_long_polls(self, pipelined):
        self.abandoned_long_poll(self.qname("lp"), pipelined, None)
        self.abandoned_long_poll(self.qname("lp"), pipelined, 0.2)

    # Baseline without pipelined bytes (docs/API.md: the waiter is dropped on close).
    def test_long_poll_then_close_does_not_keep_the_task(self):
        self.abandoned_long_polls(b"")

    def test_long_poll_with_pipelined_byte_then_close_does_not_keep_the_task(self):
        self.abandoned_long_polls(b"\r\n")

    def test_long_poll_with_pipelined_request_then_close_does_not_keep_the_task(self):
        self.abandoned_long_polls(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    # ---- 9: byte-by-byte header delivery ----

    def test_many_headers_read_linearly(self):
        lines = [b"GET /healthz HTTP/1.1", b"Host: x"]
        lines += [b"X-H%04d: %s" % (i, b"h" * 20) for i in range(500)]  # 30 bytes each
        data = b"\r\n".join(lines) + b"\r\n\r\n"
        self.assertTrue(15 * 1024 - 500 < len(data) < 16 * 1024 - 200, len(data))
        with self.raw() as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.monotonic()
            for i in range(len(data)):
                if not c.send(data[i:i + 1]):
                    break
                if i % 512 == 0:
                    readable, _, _ = select.select([c.sock], [], [], 0)
                    if readable:
                        break  # answered or closed early: read it below
                # Pace to about 3 s in total so that reads really come a few bytes at a time.
                target = started + 3.0 * (i + 1) / len(data)
                delay = target - time.monotonic()
                if delay > 0.002:
                    time.sleep(delay)
            sent_in = time.monotonic() - started
            resp = self.read(c, timeout=5)
            self.assertEqual(resp.status, 200, resp)
            self.assertLess(time.monotonic() - started, 8.0,
                            f"sent in {sent_in:.1f} s, answered late")


class RaisedHeaderLimitTest(RobustnessCase):
    """--max-header-bytes 1048576: one field longer than 65535 bytes."""

    server_args = ("--max-header-bytes", "1048576")

    def test_long_header_field_with_raised_header_limit_is_refused_not_a_crash(self):
        data = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000
                + b"\r\n\r\n")
        self.assertRefused(data, (400, 431))
        self.assertAliveAfter()

    def test_long_header_name_with_raised_header_limit_is_refused_not_a_crash(self):
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X" * 70000 + b": v\r\n\r\n"
        self.assertRefused(data, (400, 431))
        self.assertAliveAfter()


if __name__ == "__main__":
    unittest.main(verbosity=2)
