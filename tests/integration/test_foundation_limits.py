"""Server-wide limits and foundations against a real `conveyor serve` (regression tests).

Long-poll waiters per server (not per thread), retention lowered after tasks finished,
duplicate keys spelled with escapes, reads that must not create queues, the cap on
per-queue metric series, lease token shape, response size bounds, --max-tasks, a
descriptor reserve under RLIMIT_NOFILE, and the commit timeout under a stalled fsync.

Every test starts its own server with the flags it needs (a server that refuses an
unknown flag fails that test only) and stops it by PID in cleanup.

Run: CONVEYOR_BIN=build/conveyor python3 tests/integration/test_foundation_limits.py
"""
import http.client
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Server, conveyor_bin, free_port  # noqa: E402
from durable_server import DurableServer, clean_env  # noqa: E402
from rawhttp import RawClient, IncompleteResponse, request_bytes  # noqa: E402

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
COUNT_STATES = ("scheduled", "ready", "leased", "succeeded", "dead", "canceled")


class FdLimitedServer(Server):
    """A `conveyor serve` started with RLIMIT_NOFILE soft = hard = nofile (harness.Server
    cannot set rlimits). Same command line as harness.Server; stopped by PID in stop()."""

    def __init__(self, nofile, data_dir, extra_args=(), durability="sync"):
        self.port = free_port()
        self.data_dir = data_dir
        args = [conveyor_bin(), "serve", "--listen", f"127.0.0.1:{self.port}",
                "--durability", durability, "--data-dir", data_dir] + list(extra_args)

        def limit_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env(),
                                     preexec_fn=limit_descriptors)
        self._wait_ready(15.0)


class LimitsCase(unittest.TestCase):
    """start() gives a fresh server per test; cleanup stops it by PID."""

    def start(self, *args, durability="none", env=None):
        server = Server(args, env=env, durability=durability)
        self.addCleanup(shutil.rmtree, server.data_dir, True)
        self.addCleanup(server.log.close)
        self.addCleanup(server.stop)
        return server

    def start_durable(self, *args, env=None):
        data_dir = tempfile.mkdtemp(prefix="conveyor-lim-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        server = DurableServer(data_dir, "sync", env=env, extra_args=args)
        self.addCleanup(server.log.close)
        self.addCleanup(server.kill9)
        return server

    def raw_call(self, server, method, path, body=None, timeout=10):
        """(status, lower-case headers, raw body bytes); body bytes/str sent as they are."""
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        try:
            headers = {}
            if body is not None:
                if not isinstance(body, (bytes, str)):
                    body = json.dumps(body)
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def assertError(self, status, body, expected_status, code=None):
        self.assertEqual(status, expected_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body, body)
        self.assertIsInstance(body["error"].get("code"), str, body)
        self.assertRegex(body["error"]["code"], CODE_RE)
        self.assertIsInstance(body["error"].get("message"), str, body)
        if code is not None:
            self.assertEqual(body["error"]["code"], code, body)

    def enqueue_batch(self, server, queue, specs):
        status, body = server.call("POST", f"/v1/queues/{queue}/tasks", {"tasks": specs})
        self.assertEqual(status, 201, body)
        return body["ids"]

    def lease(self, server, queue, n, wait_ms=0):
        status, body = server.call("POST", f"/v1/queues/{queue}/lease",
                                   {"max": n, "wait_ms": wait_ms})
        self.assertEqual(status, 200, body)
        return body["tasks"]

    def ack_all(self, server, tasks):
        for t in tasks:
            status, body = server.call("POST", f"/v1/tasks/{t['id']}/ack",
                                       {"lease": t["lease"]["token"]})
            self.assertEqual(status, 200, body)

    def counts(self, server, queue):
        status, body = server.call("GET", f"/v1/queues/{queue}")
        self.assertEqual(status, 200, body)
        return body["counts"]

    def assertAlive(self, server):
        self.assertIsNone(server.proc.poll(), "server exited:\n" + server.output()[-4000:])
        status, body = server.call("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, body)


class WaiterLimitTest(LimitsCase):
    def test_max_waiters_is_per_server_not_per_thread(self):
        s = self.start("--threads", "2", "--max-waiters", "4")
        q = "waiters"
        lease = request_bytes("POST", f"/v1/queues/{q}/lease",
                              json.dumps({"max": 1, "wait_ms": 3000}),
                              {"Content-Type": "application/json"})
        clients = []
        for _ in range(4):
            c = RawClient(s.port, timeout=5)
            self.addCleanup(c.close)
            self.assertTrue(c.send(lease))
            clients.append(c)
        time.sleep(0.5)
        early = []
        for i, c in enumerate(clients):
            readable, _, _ = select.select([c.sock], [], [], 0)
            if readable:
                try:
                    resp = c.read_response(timeout=1)
                except (socket.timeout, IncompleteResponse) as e:
                    resp = e
                early.append((i + 1, getattr(resp, "status", resp)))
        self.assertFalse(early, "with --threads 2 --max-waiters 4, 4 long-polls on one queue: "
                                f"answered early (which, status): {early}")
        fifth = RawClient(s.port, timeout=5)
        self.addCleanup(fifth.close)
        started = time.monotonic()
        self.assertTrue(fifth.send(lease))
        try:
            resp = fifth.read_response(timeout=1.5)
        except socket.timeout:
            self.fail("the 5th long-poll was not refused at once")
        self.assertIsNotNone(resp, "the 5th long-poll was closed without an answer")
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertError(resp.status, resp.json(), 429, "too_many_requests")
        self.assertIn("retry-after", resp.headers, resp)


class RetentionTest(LimitsCase):
    def test_lowering_retention_purges_tasks_finished_before_the_change(self):
        s = self.start()
        q = "retention"
        status, body = s.call("PUT", f"/v1/queues/{q}", {"retention_ms": 3600000})
        self.assertEqual(status, 200, body)
        ids = self.enqueue_batch(s, q, [{"payload": i} for i in range(3)])
        tasks = self.lease(s, q, 3)
        self.assertEqual(sorted(t["id"] for t in tasks), sorted(ids))
        self.ack_all(s, tasks)
        self.assertEqual(self.counts(s, q)["succeeded"], 3)
        status, body = s.call("PUT", f"/v1/queues/{q}", {"retention_ms": 100})
        self.assertEqual(status, 200, body)
        deadline = time.monotonic() + 3.0
        while True:
            statuses = {i: s.call("GET", f"/v1/tasks/{i}")[0] for i in ids}
            succeeded = self.counts(s, q)["succeeded"]
            if all(v == 404 for v in statuses.values()) and succeeded == 0:
                return
            if time.monotonic() > deadline:
                self.fail(f"3 s after lowering retention_ms to 100: GET statuses {statuses}, "
                          f"counts.succeeded {succeeded}")
            time.sleep(0.1)


class JsonAndQueueTest(LimitsCase):
    def post_raw(self, s, q, text):
        status, _, data = self.raw_call(s, "POST", f"/v1/queues/{q}/tasks", text)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def test_escaped_duplicate_keys_are_refused(self):
        s = self.start()
        q = "dupkeys"
        status, body = self.post_raw(s, q, b'{"payload":1,"pr\\u0069ority":5,"priority":1}')
        self.assertError(status, body, 400, "invalid_json")
        status, body = self.post_raw(
            s, q, b'{"tasks":[{"payload":1}],"t\\u0061sks":[{"payload":2}]}')
        self.assertError(status, body, 400)
        counts = self.counts(s, q)
        self.assertEqual({k: counts.get(k) for k in COUNT_STATES},
                         {k: 0 for k in COUNT_STATES}, f"a refused body was stored: {counts}")
        status, body = self.post_raw(s, q, b'{"p\\u0061yload":7}')
        self.assertEqual(status, 201, body)
        status, task = s.call("GET", f"/v1/tasks/{body['id']}")
        self.assertEqual(status, 200, task)
        self.assertEqual(task["payload"], 7, task)

    def test_lease_wait_and_get_do_not_create_queues(self):
        s = self.start()
        leased, looked_at = "never-used-lease", "never-used-get"
        started = time.monotonic()
        status, body = s.call("POST", f"/v1/queues/{leased}/lease",
                              {"max": 1, "wait_ms": 200})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"tasks": []})
        self.assertGreaterEqual(time.monotonic() - started, 0.15, "the lease did not wait")
        status, body = s.call("GET", f"/v1/queues/{looked_at}")
        self.assertEqual(status, 200, body)
        self.assertEqual({k: body["counts"].get(k) for k in COUNT_STATES},
                         {k: 0 for k in COUNT_STATES}, body)
        status, body = s.call("GET", "/v1/queues")
        self.assertEqual(status, 200, body)
        names = [qs.get("name") for qs in body["queues"]]
        self.assertNotIn(leased, names, "a waiting lease created its queue")
        self.assertNotIn(looked_at, names, "GET of a queue created it")

    def test_lease_tokens_are_128_bit_and_unique(self):
        s = self.start()
        q = "tokens"
        self.enqueue_batch(s, q, [{"payload": i} for i in range(200)])
        tasks = self.lease(s, q, 200)
        self.assertEqual(len(tasks), 200)
        tokens = [t["lease"]["token"] for t in tasks]
        for tok in tokens:
            self.assertIsInstance(tok, str)
            self.assertRegex(tok, TOKEN_RE, "a lease token is not 32 lowercase hex digits")
        self.assertEqual(len(set(tokens)), 200, "lease tokens repeat")


class MetricsCapTest(LimitsCase):
    def test_metrics_caps_per_queue_series(self):
        s = self.start("--max-metrics-queues", "5")
        for i in range(10):
            status, body = s.call("POST", f"/v1/queues/mq{i}/tasks", {"payload": i})
            self.assertEqual(status, 201, body)
        status, _, data = self.raw_call(s, "GET", "/metrics")
        self.assertEqual(status, 200, data[:300])
        text = data.decode("utf-8")
        labels = set(re.findall(r'queue="([^"]*)"', text))
        self.assertLessEqual(len(labels), 5, f"per-queue series for {sorted(labels)}")
        dropped = [line for line in text.splitlines()
                   if line.startswith("conveyor_metrics_queues_dropped ")]
        self.assertEqual(len(dropped), 1, "no conveyor_metrics_queues_dropped line")
        self.assertEqual(float(dropped[0].split()[1]), 5.0, dropped[0])


class ResponseSizeTest(LimitsCase):
    LIMIT = 20000
    SLACK = 6000  # one task over the limit may be added (a lease always gets one)

    def test_lease_answer_is_bounded_by_max_response_bytes(self):
        s = self.start("--max-response-bytes", str(self.LIMIT))
        q = "bigpayloads"
        ids = self.enqueue_batch(s, q, [{"payload": f"{i}" + "p" * 4999} for i in range(10)])
        status, _, data = self.raw_call(s, "POST", f"/v1/queues/{q}/lease",
                                        {"max": 10, "wait_ms": 0})
        self.assertEqual(status, 200, data[:300])
        self.assertLessEqual(len(data), self.LIMIT + self.SLACK, "lease answer too large")
        body = json.loads(data)
        n = len(body["tasks"])
        self.assertTrue(1 <= n < 10, f"{n} tasks of 5000 bytes in a {self.LIMIT}-byte answer")
        self.assertIs(body.get("truncated"), True, "a cut lease answer lacks truncated:true")
        counts = self.counts(s, q)
        self.assertEqual(counts["leased"], n, "tasks left out of the answer stayed leased")
        self.assertEqual(counts["ready"], 10 - n, counts)

        # One task larger than the limit is still handed out (never an empty answer).
        status, big = s.call("POST", "/v1/queues/onebig/tasks", {"payload": "B" * 30000})
        self.assertEqual(status, 201, big)
        tasks = self.lease(s, "onebig", 5)
        self.assertEqual([t["id"] for t in tasks], [big["id"]])

        # Listing pages are bounded the same way and resume at next_after.
        status, _, data = self.raw_call(s, "GET", f"/v1/queues/{q}/tasks?limit=10")
        self.assertEqual(status, 200, data[:300])
        self.assertLessEqual(len(data), self.LIMIT + self.SLACK, "task page too large")
        page = json.loads(data)
        self.assertLess(len(page["tasks"]), 10)
        self.assertGreaterEqual(len(page["tasks"]), 1)
        self.assertIs(page.get("truncated"), True, "a cut page lacks truncated:true")
        self.assertEqual(page["next_after"], page["tasks"][-1]["id"])
        seen = [t["id"] for t in page["tasks"]]
        after = page["next_after"]
        for _ in range(20):
            if after is None:
                break
            status, _, data = self.raw_call(s, "GET",
                                            f"/v1/queues/{q}/tasks?limit=10&after={after}")
            self.assertEqual(status, 200, data[:300])
            self.assertLessEqual(len(data), self.LIMIT + self.SLACK, "task page too large")
            page = json.loads(data)
            seen += [t["id"] for t in page["tasks"]]
            self.assertTrue(page["tasks"] or page["next_after"] is None,
                            f"empty page with next_after {page['next_after']}")
            after = page["next_after"]
        self.assertEqual(sorted(seen), sorted(ids), "paging lost or repeated tasks")
        self.assertEqual(len(seen), len(set(seen)))


class MaxTasksTest(LimitsCase):
    def test_max_tasks_bounds_enqueues(self):
        s = self.start("--max-tasks", "50")
        q = "bounded"
        self.enqueue_batch(s, q, [{"payload": i} for i in range(50)])
        status, headers, body = s.request("POST", f"/v1/queues/{q}/tasks", {"payload": 50})
        self.assertError(status, body, 503, "overloaded")
        self.assertIn("retry-after", headers)
        status, headers, body = s.request("POST", f"/v1/queues/{q}/tasks",
                                          {"tasks": [{"payload": 100 + i} for i in range(10)]})
        self.assertError(status, body, 503, "overloaded")
        self.assertIn("retry-after", headers)
        counts = self.counts(s, q)
        self.assertEqual(sum(counts[k] for k in COUNT_STATES), 50, counts)
        self.ack_all(s, self.lease(s, q, 10))
        status, body = s.call("POST", f"/v1/queues/{q}/tasks", {"payload": "after-acks"})
        self.assertEqual(status, 201, body)


class DescriptorReserveTest(LimitsCase):
    NOFILE = 256
    CLIENTS = 300

    def test_descriptor_reserve(self):
        data_dir = tempfile.mkdtemp(prefix="conveyor-fd-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        s = FdLimitedServer(self.NOFILE, data_dir, ["--max-connections", "10000"])
        self.addCleanup(s.log.close)
        self.addCleanup(s.stop)
        q = "fdq"
        status, body = s.call("POST", f"/v1/queues/{q}/tasks", {"payload": "warm"})
        self.assertEqual(status, 201, body)

        clients, refused = [], 0
        for _ in range(self.CLIENTS):
            try:
                c = RawClient(s.port, timeout=2)
            except OSError:
                refused += 1
                continue
            self.addCleanup(c.close)
            if c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
                clients.append(c)
            else:
                refused += 1
        ok, overloaded, other = [], 0, []
        pending = list(clients)
        deadline = time.monotonic() + 5.0
        while pending and time.monotonic() < deadline:
            readable, _, _ = select.select([c.sock for c in pending], [], [], 0.2)
            for c in [c for c in pending if c.sock in readable]:
                pending.remove(c)
                try:
                    resp = c.read_response(timeout=2)
                except (socket.timeout, IncompleteResponse, OSError):
                    resp = None
                if resp is None:
                    refused += 1
                elif resp.status == 200:
                    ok.append(c)
                elif resp.status == 503:
                    body = resp.json()
                    self.assertError(resp.status, body, 503, "overloaded")
                    overloaded += 1
                else:
                    other.append(resp)
        tally = (f"{len(ok)} answered 200, {overloaded} 503, {refused} refused/closed, "
                 f"{len(pending)} unanswered after 5 s, other {other[:3]}")
        sys.stderr.write(f"descriptor reserve: {tally}\n")
        self.assertIsNone(s.proc.poll(), "server died:\n" + s.output()[-4000:])
        self.assertTrue(ok, "no connection was served: " + tally)

        # With every accepted connection still open, storage still has descriptors.
        c = ok[0]
        failures = []
        started = time.monotonic()
        for i in range(500):
            if not c.send(request_bytes("POST", f"/v1/queues/{q}/tasks",
                                        json.dumps({"payload": i}),
                                        {"Content-Type": "application/json"})):
                failures.append((i, "connection lost"))
                break
            try:
                resp = c.read_response(timeout=5)
            except (socket.timeout, IncompleteResponse) as e:
                failures.append((i, repr(e)))
                break
            if resp is None:
                failures.append((i, "connection closed"))
                break
            if resp.status != 201:
                failures.append((i, resp.status, resp.body[:200]))
                if len(failures) >= 5:
                    break
        sys.stderr.write(f"descriptor reserve: enqueues took {time.monotonic() - started:.1f} s,"
                         f" failures {failures[:5]}\n")
        self.assertIsNone(s.proc.poll(), "server died:\n" + s.output()[-4000:])
        self.assertFalse(failures, f"enqueues refused while connections are held: "
                                   f"{failures}; {tally}")
        self.assertFalse(other, tally)
        self.assertLessEqual(len(ok), self.NOFILE, tally)
        self.assertGreater(overloaded + refused, 0,
                           f"{self.CLIENTS} connections under RLIMIT_NOFILE {self.NOFILE} and "
                           f"none refused (the rest hang): " + tally)
        for cl in clients:
            cl.close()
        self.assertAlive(s)


class CommitTimeoutTest(LimitsCase):
    def test_commit_timeout_answers_503_storage_timeout(self):
        flag_dir = tempfile.mkdtemp(prefix="conveyor-flag-")
        self.addCleanup(shutil.rmtree, flag_dir, True)
        flag = os.path.join(flag_dir, "fail-writes")
        s = self.start_durable("--commit-timeout-ms", "500",
                               env={"CONVEYOR_FAULT_FILE": flag})
        q = "ct"
        status, body = s.call("POST", f"/v1/queues/{q}/tasks", {"payload": "warm"})
        self.assertEqual(status, 201, body)
        with open(flag, "w") as f:
            f.write("slow\n")
        started = time.monotonic()
        try:
            status, headers, body = s.request("POST", f"/v1/queues/{q}/tasks",
                                              {"payload": "slow"}, timeout=5)
        finally:
            took = time.monotonic() - started
        self.assertLess(took, 1.8, f"answered after {took:.1f} s: {status} {body}")
        self.assertError(status, body, 503, "storage_timeout")
        self.assertIn("retry-after", headers)
        os.remove(flag)
        deadline = time.monotonic() + 6.0
        while True:
            status, body = s.call("POST", f"/v1/queues/{q}/tasks", {"payload": "after"},
                                  timeout=5)
            if status == 201:
                break
            self.assertError(status, body, 503)
            if time.monotonic() > deadline:
                self.fail(f"still {status} 6 s after the slow flag was removed: {body}")
            time.sleep(0.2)
        self.assertIsNone(s.proc.poll())



class UnreadAnswersTest(LimitsCase):
    """Item 8, memory: clients that ask for a page of large tasks and never read it. Each
    answer stops at --max-response-bytes (16 MiB), and an unread one is dropped at the
    write timeout, so six of them cannot pin the whole queue six times over."""

    def rss(self, server):
        with open(f"/proc/{server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def test_six_unread_pages_of_large_tasks_stay_bounded(self):
        server = self.start("--write-timeout-ms", "1500")
        big = json.dumps({"payload": "x" * 900_000})
        for _ in range(100):  # 90 MB of tasks
            status, _, data = self.raw_call(server, "POST", "/v1/queues/big/tasks", big)
            self.assertEqual(status, 201, data)
        before = self.rss(server)
        readers = []
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request_bytes("GET", "/v1/queues/big/tasks?limit=1000"))
            readers.append(s)
            self.addCleanup(s.close)
        time.sleep(1.0)
        peak = self.rss(server)
        # Without the bound each answer would hold all 90 MB: 540 MB for six. With it, six
        # pages built at once hold at most their views and their JSON, 2 x 16 MiB each
        # (192 MiB), plus the allocator's slack: 155-175 MiB on a quiet machine, 215 MiB
        # seen once under a loaded CI run.
        self.assertLess(peak - before, 256 << 20,
                        f"RSS grew {(peak - before) >> 20} MiB for six unread pages")
        status, _, data = self.raw_call(server, "GET", "/healthz")
        self.assertEqual(status, 200, data)
        # One page that is read says it was cut and where to go on.
        status, _, data = self.raw_call(server, "GET", "/v1/queues/big/tasks?limit=1000",
                                        timeout=30)
        page = json.loads(data)
        self.assertTrue(page.get("truncated"), list(page))
        self.assertLess(len(page["tasks"]), 100)
        self.assertEqual(page["next_after"], page["tasks"][-1]["id"])
        self.assertIsNone(server.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
