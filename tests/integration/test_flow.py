"""Flow control through the real binary (issue 13): task keys, a rate limit held within
±5% over 10 s with 32 workers, concurrency limits never exceeded (lease intervals
recorded, with leases expiring and a worker killed -9), fair share with a bursting key,
held nacks pausing a key, the settings and a paused key surviving a kill -9, the numbers
in GET /v1/queues/{q} and /metrics, and bad input."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from durable_server import DurableTestCase  # noqa: E402
from harness import ServerTestCase, conveyor_bin  # noqa: E402


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def max_overlap(intervals, key_of=lambda i: None):
    """The most intervals open at once, overall or per key: (start, end, key) tuples."""
    events = []
    for start, end, key in intervals:
        events.append((start, 1, key_of(key)))
        events.append((end, -1, key_of(key)))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    open_now, worst = {}, 0
    for _, step, group in events:
        open_now[group] = open_now.get(group, 0) + step
        worst = max(worst, open_now[group])
    return worst


class FlowTest(ServerTestCase):
    durability = "sync"

    def batch(self, queue, specs):
        for i in range(0, len(specs), 1000):
            status, body = self.call("POST", f"/v1/queues/{queue}/tasks",
                                     {"tasks": specs[i:i + 1000]})
            self.assertEqual(status, 201, body)

    def lease(self, queue, n=10, wait_ms=0, **extra):
        body = {"max": n, "wait_ms": wait_ms}
        body.update(extra)
        status, got = self.call("POST", f"/v1/queues/{queue}/lease", body, timeout=30)
        self.assertEqual(status, 200, got)
        return got["tasks"]

    def ack(self, task):
        status, body = self.call("POST", f"/v1/tasks/{task['id']}/ack",
                                 {"lease": task["lease"]["token"]})
        self.assertEqual(status, 200, body)

    def test_a_task_has_its_key(self):
        q = self.qname()
        status, body = self.call("POST", f"/v1/queues/{q}/tasks", {"payload": 1, "key": "tenant-7"})
        self.assertEqual(status, 201, body)
        task = self.call("GET", f"/v1/tasks/{body['id']}")[1]
        self.assertEqual(task["key"], "tenant-7")
        leased = self.lease(q)
        self.assertEqual(leased[0]["key"], "tenant-7")
        plain = self.enqueue(q, 2)
        self.assertIsNone(self.call("GET", f"/v1/tasks/{plain}")[1]["key"])

    def test_rate_limit_holds_within_five_percent_over_ten_seconds_with_32_workers(self):
        q = self.qname()
        rate = 40
        status, body = self.call("PUT", f"/v1/queues/{q}", {"rate_limit": {"per_second": rate}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["rate_limit"], {"per_second": rate, "burst": 1, "per_key": False})
        self.batch(q, [{"payload": i} for i in range(1000)])
        times, lock, stop = [], threading.Lock(), threading.Event()

        def worker():
            while not stop.is_set():
                try:
                    tasks = self.lease(q, n=4, wait_ms=500)
                except Exception:  # noqa: BLE001 (the test's end closes connections)
                    return
                now = time.monotonic()
                with lock:
                    times.extend([now] * len(tasks))
                for t in tasks:
                    self.ack(t)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        for t in threads:
            t.start()
        time.sleep(12)
        stop.set()
        for t in threads:
            t.join(5)
        times.sort()
        self.assertGreater(len(times), 100)
        start = times[0] + 1.0  # a 10 s window after the first second
        window = [t for t in times if start <= t < start + 10]
        self.assertGreaterEqual(len(window), rate * 10 * 0.95, len(window))
        self.assertLessEqual(len(window), rate * 10 * 1.05, len(window))

    def test_a_key_over_its_rate_does_not_hold_back_others(self):
        q = self.qname()
        self.call("PUT", f"/v1/queues/{q}", {"rate_limit": {"per_second": 0.5, "per_key": True}})
        self.batch(q, [{"payload": i, "key": "busy"} for i in range(5)] +
                   [{"payload": i, "key": f"k{i}"} for i in range(5)])
        leased = self.lease(q, n=20)
        keys = sorted(t["key"] for t in leased)
        self.assertEqual(keys, ["busy", "k0", "k1", "k2", "k3", "k4"])
        stats = self.call("GET", f"/v1/queues/{q}")[1]
        self.assertEqual(stats["flow"]["held"]["rate"], 4)

    def test_concurrency_is_never_exceeded_with_expiry_and_a_killed_worker(self):
        for per_key in (False, True):
            with self.subTest(per_key=per_key):
                self.concurrency_run(per_key)

    def concurrency_run(self, per_key):
        q = self.qname()
        limit = 3 if not per_key else 1
        status, body = self.call("PUT", f"/v1/queues/{q}",
                                 {"concurrency": {"max": limit, "per_key": per_key}})
        self.assertEqual(status, 200, body)
        keys = ["a", "b", "c"]
        self.batch(q, [{"payload": i, "key": keys[i % 3]} for i in range(120)])
        files = []
        for _ in range(2):
            out = tempfile.NamedTemporaryFile(prefix="conveyor-flow-", delete=False)
            out.close()
            self.addCleanup(os.unlink, out.name)
            files.append(out.name)
        procs = []
        for i in range(8):
            # Worker 0 holds its first task for good and is killed -9 while holding it.
            hold, path = ("600000", files[0]) if i == 0 else ("30", files[1])
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(HERE, "flow_worker.py"), self.server.url, q,
                 path, hold, "700"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        try:
            deadline = time.time() + 30
            while not open(files[0]).read().startswith("L "):
                self.assertLess(time.time(), deadline, "worker 0 never got a task")
                time.sleep(0.05)
            procs[0].send_signal(signal.SIGKILL)
            deadline = time.time() + 60
            while self.call("GET", f"/v1/queues/{q}")[1]["counts"]["succeeded"] < 120:
                self.assertLess(time.time(), deadline)
                time.sleep(0.1)
        finally:
            for p in procs:
                p.kill()
                p.wait(10)
        leases, acked = {}, {}
        lines = open(files[0]).read().splitlines() + open(files[1]).read().splitlines()
        if True:
            for line in lines:
                parts = line.split()
                if parts[0] == "L" and len(parts) == 5:
                    leases.setdefault(int(parts[1]), []).append(
                        (float(parts[2]), float(parts[3]), parts[4]))
                elif parts[0] == "A" and len(parts) == 3:
                    acked[int(parts[1])] = float(parts[2])
        intervals = []
        for task_id, held in leases.items():
            held.sort()
            for n, (start, expires, key) in enumerate(held):
                # The last lease of a task ends at its ack (if one came), others expired.
                end = acked[task_id] if n == len(held) - 1 and task_id in acked else expires
                intervals.append((start, end, key))
        self.assertGreater(len(intervals), 100)
        expired = sum(1 for held in leases.values() if len(held) > 1)
        self.assertGreaterEqual(expired, 1, "the killed worker's lease came back")
        worst = max_overlap(intervals, (lambda k: k) if per_key else (lambda k: None))
        self.assertLessEqual(worst, limit)
        self.assertEqual(worst, limit, "the limit was never reached: the test shows nothing")

    def test_fair_share_lets_small_keys_through_a_burst_of_100k(self):
        q = self.qname()
        self.call("PUT", f"/v1/queues/{q}", {"fairness": "key"})
        self.batch(q, [{"payload": i, "key": "big"} for i in range(100000)])
        self.batch(q, [{"payload": i, "key": f"small{k}"} for k in range(10) for i in range(100)])
        order = []
        while sum(1 for key in order if key != "big") < 1000:
            tasks = self.lease(q, n=100)
            self.assertTrue(tasks)
            order.extend(t["key"] for t in tasks)
            acks = [{"id": t["id"], "lease": t["lease"]["token"]} for t in tasks]
            self.assertEqual(self.call("POST", "/v1/ack", {"acks": acks})[0], 200)
        # Eleven keys take turns: the last small task comes by lease 1,100, where with
        # the big key absent it would come at 1,000: a factor of 1.1.
        self.assertLessEqual(len(order), 1100)

    def test_pause_key_ms_holds_the_key_and_counts_no_failure(self):
        q = self.qname()
        self.batch(q, [{"payload": i, "key": "remote"} for i in range(3)] +
                   [{"payload": 9, "key": "other"}])
        first = self.lease(q, n=1)[0]
        status, body = self.call("POST", f"/v1/tasks/{first['id']}/nack",
                                 {"lease": first["lease"]["token"], "pause_key_ms": 1500})
        self.assertEqual((status, body["state"]), (200, "scheduled"), body)
        task = self.call("GET", f"/v1/tasks/{first['id']}")[1]
        self.assertEqual((task["attempts"], task["errors"]), (0, []))
        during = self.lease(q, n=10)
        self.assertEqual([t["key"] for t in during], ["other"])
        stats = self.call("GET", f"/v1/queues/{q}")[1]
        self.assertEqual(stats["flow"]["paused_keys"], 1)
        self.assertEqual(stats["totals"]["deferred"], 1)
        later = self.lease(q, n=10, wait_ms=5000)  # served when the pause ends
        self.assertTrue(later)
        self.assertEqual({t["key"] for t in later}, {"remote"})

    def test_edf_and_aging_order(self):
        q = self.qname()
        now = int(time.time() * 1000)
        plain = self.enqueue(q, "plain")
        later = self.enqueue(q, "later", deadline=now + 600000)
        sooner = self.enqueue(q, "sooner", deadline=now + 300000)
        self.assertEqual([t["id"] for t in self.lease(q, n=3)], [sooner, later, plain])
        aged = self.qname()
        self.call("PUT", f"/v1/queues/{aged}", {"aging_ms": 50})
        old = self.enqueue(aged, "old", priority=0)
        time.sleep(0.6)  # gains ~12 levels
        five = self.enqueue(aged, "five", priority=5)
        self.assertEqual([t["id"] for t in self.lease(aged, n=2)], [old, five])

    def test_metrics_and_stats_show_flow(self):
        q = self.qname()
        self.call("PUT", f"/v1/queues/{q}", {"concurrency": {"max": 1, "per_key": True}})
        self.batch(q, [{"payload": i, "key": "k\"1"} for i in range(3)])
        self.lease(q, n=5)
        status, _, text = self.server.request("GET", "/metrics")
        text = text.decode()
        self.assertIn(f'conveyor_queue_held_tasks{{queue="{q}",reason="concurrency"}} 2', text)
        self.assertIn(f'conveyor_key_tasks{{queue="{q}",key="k\\"1",state="leased"}} 1', text)
        self.assertIn(f'conveyor_queue_keys{{queue="{q}"}} 1', text)
        cli = subprocess.run([conveyor_bin(), "stats", "--server", self.server.url],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn("FLOW QUEUE", cli.stdout)
        self.assertIn(q, cli.stdout.split("FLOW QUEUE", 1)[1])

    def test_bad_input(self):
        q = self.qname()
        cases = [
            ({"rate_limit": {"per_second": 0}}, "rate_limit.per_second"),
            ({"rate_limit": {"burst": 5}}, "rate_limit.per_second"),
            ({"rate_limit": {"per_second": 5, "burst": 0}}, "rate_limit.burst"),
            ({"rate_limit": {"per_second": 5, "every": 1}}, "rate_limit"),
            ({"rate_limit": 5}, "rate_limit"),
            ({"concurrency": {"max": 0}}, "concurrency.max"),
            ({"concurrency": {"per_key": True}}, "concurrency.max"),
            ({"concurrency": {"max": 2, "per_key": "yes"}}, "concurrency.per_key"),
            ({"fairness": "round-robin"}, "fairness"),
            ({"key_weights": {"a": 0}}, "key_weights"),
            ({"key_weights": {"a": 1.5}}, "key_weights"),
            ({"aging_ms": -1}, "aging_ms"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                status, answer = self.call("PUT", f"/v1/queues/{q}", body)
                self.assertError(status, answer, 400)
                self.assertIn(field, answer["error"]["message"])
        status, answer = self.call("POST", f"/v1/queues/{q}/tasks", {"payload": 1, "key": "x" * 129})
        self.assertError(status, answer, 400)
        self.assertIn("key", answer["error"]["message"])
        status, answer = self.call("POST", f"/v1/queues/{q}/tasks", {"payload": 1, "key": 5})
        self.assertError(status, answer, 400)
        self.enqueue(q, 1)
        task = self.lease(q, n=1)[0]
        for body in ({"dead": True, "pause_key_ms": 5}, {"retry_at": 5, "retry_in_ms": 5},
                     {"pause_key_ms": -1}):
            body["lease"] = task["lease"]["token"]
            status, answer = self.call("POST", f"/v1/tasks/{task['id']}/nack", body)
            self.assertError(status, answer, 400)
        # Removing the settings again.
        self.call("PUT", f"/v1/queues/{q}", {"rate_limit": {"per_second": 1}, "fairness": "key"})
        status, config = self.call("PUT", f"/v1/queues/{q}", {"rate_limit": None, "fairness": None})
        self.assertEqual((status, config["rate_limit"], config["fairness"]), (200, None, "none"))


class FlowDurabilityTest(DurableTestCase):
    def test_settings_and_a_paused_key_survive_a_kill(self):
        data_dir = self.make_dir()
        server = self.start(data_dir)
        q = name("q")
        settings = {"rate_limit": {"per_second": 100, "burst": 5, "per_key": True},
                    "concurrency": {"max": 2, "per_key": True}, "fairness": "key",
                    "key_weights": {"vip": 3}, "aging_ms": 1000}
        status, config = server.call("PUT", f"/v1/queues/{q}", settings)
        self.assertEqual(status, 200, config)
        for i in range(3):
            self.enqueue(server, q, i, key="remote")
        self.enqueue(server, q, "x", key="other")
        status, got = server.call("POST", f"/v1/queues/{q}/lease", {"max": 1})
        first = got["tasks"][0]
        self.assertEqual(first["key"], "remote")
        status, body = server.call("POST", f"/v1/tasks/{first['id']}/nack",
                                   {"lease": first["lease"]["token"], "pause_key_ms": 60000})
        self.assertEqual(status, 200, body)
        server.kill9()
        server = self.start(data_dir)
        after = server.call("GET", f"/v1/queues/{q}")[1]
        for field, value in settings.items():
            self.assertEqual(after["config"][field], value, field)
        status, got = server.call("POST", f"/v1/queues/{q}/lease", {"max": 10})
        self.assertEqual([t["key"] for t in got["tasks"]], ["other"])
        self.assertEqual(server.call("GET", f"/v1/tasks/{first['id']}")[1]["key"], "remote")


if __name__ == "__main__":
    unittest.main()
