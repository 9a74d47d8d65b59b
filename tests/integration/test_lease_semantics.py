"""Delivery and lease semantics (TESTPLAN C.13-C.18) against a real `conveyor serve`.

C.13 no double lease under 32 concurrent workers, C.14 expiry and stale tokens, C.15 order,
C.16 concurrent idempotency, C.17 batch all-or-nothing, C.18 long-poll wake-up, deadline and
client disconnect. Random choices use a seed printed to stderr (set CONVEYOR_TEST_SEED to
replay). Timing checks use real time with slack for a busy machine.

Run: CONVEYOR_BIN=/path/to/conveyor python3 -m unittest -v test_lease_semantics
  or python3 tests/integration/test_lease_semantics.py
"""
import json
import os
import random
import socket
import sys
import threading
import time
import traceback
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase  # noqa: E402

SEED = int(os.environ.get("CONVEYOR_TEST_SEED", str(int(time.time()) % 100000)))
sys.stderr.write(f"test_lease_semantics: seed {SEED} (CONVEYOR_TEST_SEED)\n")

# Client and server share the host clock; allow this much rounding between them (ms).
CLOCK_SLACK_MS = 5


def now_ms():
    return int(time.time() * 1000)


class LeaseTestCase(ServerTestCase):
    def qname(self, prefix="c"):
        return super().qname(prefix)

    def enqueue_batch(self, queue, specs):
        status, body = self.call("POST", f"/v1/queues/{queue}/tasks", {"tasks": specs})
        self.assertEqual(status, 201, body)
        self.assertEqual(len(body["ids"]), len(specs))
        return body["ids"]

    def lease_call(self, queue, n=1, wait_ms=0, lease_ms=None, worker=None):
        """Raw lease call, safe to use from worker threads: returns (status, body)."""
        req = {"max": n, "wait_ms": wait_ms}
        if lease_ms is not None:
            req["lease_ms"] = lease_ms
        if worker is not None:
            req["worker"] = worker
        return self.server.call("POST", f"/v1/queues/{queue}/lease", req,
                                timeout=wait_ms / 1000.0 + 10)

    def lease(self, queue, n=1, wait_ms=0, lease_ms=None, worker=None):
        status, body = self.lease_call(queue, n, wait_ms, lease_ms, worker)
        self.assertEqual(status, 200, body)
        return body["tasks"]

    def lease_one(self, queue, **kw):
        tasks = self.lease(queue, **kw)
        self.assertEqual(len(tasks), 1, tasks)
        return tasks[0]

    def get_task(self, task_id, wait_ms=None):
        path = f"/v1/tasks/{task_id}" + (f"?wait_ms={wait_ms}" if wait_ms else "")
        status, body = self.call("GET", path, timeout=10 + (wait_ms or 0) / 1000.0)
        self.assertEqual(status, 200, body)
        return body

    def ack(self, task_id, token, **extra):
        return self.server.call("POST", f"/v1/tasks/{task_id}/ack", dict(extra, lease=token))

    def stats(self, queue):
        status, body = self.call("GET", f"/v1/queues/{queue}")
        self.assertEqual(status, 200, body)
        return body

    def configure(self, queue, cfg):
        status, body = self.call("PUT", f"/v1/queues/{queue}", cfg)
        self.assertEqual(status, 200, body)
        return body


class NoDoubleLeaseTest(LeaseTestCase):
    """C.13: many workers long-poll one queue; a task is never held by two valid leases."""

    WORKERS = 32

    def run_workers(self, queue, n_tasks, hold_max_s, lease_ms, time_limit_s):
        """Runs WORKERS threads: long-poll lease, hold a random time, ack. Returns records."""
        records = []        # one dict per lease handed out
        failures = []       # unexpected statuses / exceptions
        acked = set()
        lock = threading.Lock()
        done = threading.Event()
        deadline = time.time() + time_limit_s

        def worker(wid):
            try:
                work(wid)
            except Exception:
                with lock:
                    failures.append(("worker", wid, traceback.format_exc()))

        def work(wid):
            rng = random.Random(SEED * 1000 + wid)
            name = f"w{wid}"
            while not done.is_set() and time.time() < deadline:
                try:
                    status, body = self.lease_call(queue, 1, wait_ms=300, lease_ms=lease_ms,
                                                   worker=name)
                except Exception as e:
                    with lock:
                        failures.append(("lease", repr(e)))
                    continue
                t_got = time.time()
                if status != 200:
                    with lock:
                        failures.append(("lease", status, body))
                    continue
                for task in body["tasks"]:
                    time.sleep(rng.uniform(0, hold_max_s))
                    t_ack_sent = time.time()
                    try:
                        a_status, a_body = self.ack(task["id"], task["lease"]["token"])
                    except Exception as e:
                        a_status, a_body = None, repr(e)
                    t_ack_done = time.time()
                    rec = {"id": task["id"], "token": task["lease"]["token"],
                           "attempts": task.get("attempts"), "worker": name,
                           "expires_at": task["lease"]["expires_at"], "t_got": t_got,
                           "t_ack_sent": t_ack_sent, "t_ack_done": t_ack_done,
                           "ack_status": a_status, "ack_body": a_body}
                    with lock:
                        records.append(rec)
                        if a_status == 200:
                            acked.add(task["id"])
                            if len(acked) >= n_tasks:
                                done.set()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(self.WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(time_limit_s + 15)
        self.assertFalse(any(t.is_alive() for t in threads), "worker threads hung")
        self.assertEqual(failures, [])
        return records

    def check_no_overlap(self, records):
        """A lease is surely valid from when its answer arrived until the ack was sent
        (acked with 200) or until min(ack sent, expires_at) (refused ack). Two such
        intervals of one task must never overlap."""
        by_task = {}
        for r in records:
            end = r["t_ack_sent"]
            if r["ack_status"] != 200:
                end = min(end, r["expires_at"] / 1000.0)
            by_task.setdefault(r["id"], []).append((r["t_got"], end, r))
        slack = CLOCK_SLACK_MS / 1000.0
        for tid, spans in by_task.items():
            spans.sort(key=lambda s: s[0])
            latest_end, latest = None, None
            for start, end, rec in spans:
                if latest is not None and start < latest_end - slack:
                    self.fail(f"task {tid}: two valid leases overlap\n{latest}\n{rec}")
                if latest is None or end > latest_end:
                    latest_end, latest = end, rec

    def check_tokens_and_attempts(self, records):
        tokens = [r["token"] for r in records]
        self.assertEqual(len(tokens), len(set(tokens)), "lease tokens must be unique")
        by_task = {}
        for r in sorted(records, key=lambda r: r["t_got"]):
            by_task.setdefault(r["id"], []).append(r["attempts"])
        for tid, attempts in by_task.items():
            self.assertEqual(attempts, list(range(1, len(attempts) + 1)),
                             f"task {tid}: attempts per lease in order")

    def test_no_double_lease_without_expiry(self):
        q = self.qname("c13")
        n = 320
        ids = self.enqueue_batch(q, [{"payload": {"n": i}} for i in range(n)])
        start = time.monotonic()
        records = self.run_workers(q, n, hold_max_s=0.03, lease_ms=20000, time_limit_s=20)
        sys.stderr.write(f"c13 no-expiry: {len(records)} leases of {n} tasks by "
                         f"{self.WORKERS} workers in {time.monotonic() - start:.1f}s\n")
        # Leases never expire here, so every task is leased exactly once and acked with 200.
        self.assertEqual(sorted(r["id"] for r in records), sorted(ids))
        bad = [r for r in records if r["ack_status"] != 200]
        self.assertEqual(bad, [])
        self.check_no_overlap(records)
        self.check_tokens_and_attempts(records)
        stats = self.stats(q)
        self.assertEqual(stats["counts"]["succeeded"], n, stats)
        self.assertEqual(stats["counts"]["ready"], 0, stats)
        self.assertEqual(stats["counts"]["leased"], 0, stats)
        self.assertEqual(stats["totals"]["acked"], n, stats)
        # Extra acks: the same token is harmless, another task's token is refused.
        rng = random.Random(SEED)
        sample = rng.sample(records, 20)
        for i, r in enumerate(sample):
            status, body = self.ack(r["id"], r["token"])
            self.assertEqual(status, 200, body)
            other = sample[(i + 1) % len(sample)]
            status, body = self.ack(r["id"], other["token"])
            self.assertEqual(status, 409, body)
            self.assertEqual(body["error"]["code"], "lease_mismatch", body)

    def test_no_double_lease_with_expiry(self):
        q = self.qname("c13x")
        n = 160
        ids = self.enqueue_batch(q, [{"payload": i, "max_attempts": 1000} for i in range(n)])
        start = time.monotonic()
        records = self.run_workers(q, n, hold_max_s=0.45, lease_ms=300, time_limit_s=25)
        sys.stderr.write(f"c13 expiry: {len(records)} leases of {n} tasks, "
                         f"{sum(r['ack_status'] == 409 for r in records)} refused acks, "
                         f"in {time.monotonic() - start:.1f}s\n")
        # Every task acked with 200 exactly once; every other ack refused with 409.
        ok = {}
        for r in records:
            if r["ack_status"] == 200:
                ok.setdefault(r["id"], []).append(r)
            else:
                self.assertEqual(r["ack_status"], 409, r)
                self.assertEqual(r["ack_body"]["error"]["code"], "lease_mismatch", r)
        self.assertEqual(sorted(ok), sorted(ids), "every task acked")
        for tid, rs in ok.items():
            self.assertEqual(len(rs), 1, f"task {tid} acked with 200 more than once: {rs}")
        # An ack that finished before its lease expired must have succeeded.
        for r in records:
            if r["t_ack_done"] * 1000 < r["expires_at"] - 20:
                self.assertEqual(r["ack_status"], 200, f"ack within a valid lease refused: {r}")
        self.assertGreater(sum(r["ack_status"] == 409 for r in records), 0,
                           "no lease expired; the test did not exercise expiry")
        self.check_no_overlap(records)
        self.check_tokens_and_attempts(records)
        stats = self.stats(q)
        self.assertEqual(stats["counts"]["succeeded"], n, stats)
        self.assertEqual(stats["counts"]["dead"], 0, stats)


class ExpiryTest(LeaseTestCase):
    """C.14: an expired lease's token is refused; attempts counted; max_attempts → dead."""

    def test_stale_token_refused_after_release(self):
        q = self.qname("c14")
        tid = self.enqueue(q, "x")
        first = self.lease_one(q, lease_ms=200, worker="slow")
        self.assertEqual(first["attempts"], 1)
        time.sleep(0.35)
        second = self.lease_one(q, wait_ms=2000, lease_ms=10000, worker="fast")
        self.assertEqual(second["id"], tid)
        self.assertEqual(second["attempts"], 2)
        self.assertNotEqual(second["lease"]["token"], first["lease"]["token"])
        old = first["lease"]["token"]
        for verb, body in (("ack", {"lease": old, "result": "slow"}),
                           ("nack", {"lease": old, "error": "slow"}),
                           ("extend", {"lease": old, "lease_ms": 60000})):
            with self.subTest(verb=verb):
                status, resp = self.call("POST", f"/v1/tasks/{tid}/{verb}", body)
                self.assertEqual(status, 409, resp)
                self.assertEqual(resp["error"]["code"], "lease_mismatch", resp)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "leased")
        self.assertEqual(task["lease"]["expires_at"], second["lease"]["expires_at"])
        # The refused nack recorded nothing (an expiry may add its own error entry).
        self.assertNotIn("slow", [e.get("message") for e in task["errors"]])
        status, body = self.ack(tid, second["lease"]["token"], result="fast")
        self.assertEqual(status, 200, body)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(task["result"], "fast")
        self.assertEqual(task["attempts"], 2)
        # The old token stays refused after the task finished.
        status, body = self.ack(tid, old)
        self.assertEqual(status, 409, body)

    def test_expired_lease_makes_task_ready(self):
        q = self.qname("c14r")
        tid = self.enqueue(q, "x")
        leased = self.lease_one(q, lease_ms=200)
        time.sleep(0.2)
        deadline = time.time() + 1.5
        state = None
        while time.time() < deadline:
            task = self.get_task(tid)
            state = task["state"]
            if state == "ready":
                break
            time.sleep(0.05)
        self.assertEqual(state, "ready", "expired lease should make the task ready")
        self.assertGreaterEqual(now_ms() + CLOCK_SLACK_MS, leased["lease"]["expires_at"])
        self.assertIsNone(task.get("lease"))
        self.assertEqual(task["attempts"], 1)

    def test_not_released_before_expiry(self):
        q = self.qname("c14e")
        self.enqueue(q, "x")
        leased = self.lease_one(q, lease_ms=600)
        time.sleep(0.3)
        self.assertEqual(self.lease(q), [])
        again = self.lease_one(q, wait_ms=3000)
        self.assertGreaterEqual(now_ms() + CLOCK_SLACK_MS, leased["lease"]["expires_at"])
        self.assertEqual(again["attempts"], 2)

    def test_max_attempts_by_expiry(self):
        q = self.qname("c14m")
        tid = self.enqueue(q, "x", max_attempts=3)
        tokens = []
        for attempt in (1, 2, 3):
            task = self.lease_one(q, wait_ms=3000, lease_ms=150)
            self.assertEqual(task["attempts"], attempt)
            tokens.append(task["lease"]["token"])
        task = self.get_task(tid, wait_ms=3000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "max_attempts")
        self.assertEqual(task["attempts"], 3)
        self.assertEqual(self.lease(q), [])
        for token in tokens:
            status, body = self.ack(tid, token)
            self.assertEqual(status, 409, body)
        stats = self.stats(q)
        self.assertEqual(stats["counts"]["dead"], 1, stats)
        self.assertEqual(stats["totals"]["dead"], 1, stats)

    def test_max_attempts_by_nack(self):
        q = self.qname("c14n")
        tid = self.enqueue(q, "x", max_attempts=2)
        t1 = self.lease_one(q)
        status, body = self.call("POST", f"/v1/tasks/{tid}/nack",
                                 {"lease": t1["lease"]["token"], "error": "e1",
                                  "retry_in_ms": 50})
        self.assertEqual((status, body.get("state")), (200, "scheduled"), body)
        t2 = self.lease_one(q, wait_ms=2000)
        self.assertEqual(t2["attempts"], 2)
        status, body = self.call("POST", f"/v1/tasks/{tid}/nack",
                                 {"lease": t2["lease"]["token"], "error": "e2",
                                  "retry_in_ms": 50})
        self.assertEqual((status, body.get("state")), (200, "dead"), body)
        task = self.get_task(tid)
        self.assertEqual(task["dead_reason"], "max_attempts")
        self.assertEqual([e["message"] for e in task["errors"]], ["e1", "e2"])
        # Nacking again with the token of the finished lease is refused.
        status, body = self.call("POST", f"/v1/tasks/{tid}/nack",
                                 {"lease": t2["lease"]["token"], "error": "e3"})
        self.assertEqual(status, 409, body)


class OrderTest(LeaseTestCase):
    """C.15: priority desc, then time the task became ready, then id; delays respected."""

    def test_priority_then_fifo_random(self):
        q = self.qname("c15")
        rng = random.Random(SEED)
        specs = [{"payload": i, "priority": rng.choice([-5, 0, 0, 3, 10, 2 ** 31 - 1])}
                 for i in range(40)]
        ids = []
        for i in range(0, 40, 10):  # mix single and batch enqueues
            if i % 20 == 0:
                ids += self.enqueue_batch(q, specs[i:i + 10])
            else:
                ids += [self.enqueue(q, s["payload"], priority=s["priority"])
                        for s in specs[i:i + 10]]
        expected = [tid for _, tid in sorted(zip((-s["priority"] for s in specs), ids))]
        got = [self.lease_one(q)["id"] for _ in range(20)]
        got += [t["id"] for t in self.lease(q, n=100)]
        self.assertEqual(got, expected, f"seed {SEED}")

    def test_order_by_time_became_ready(self):
        q = self.qname("c15t")
        delayed = self.enqueue(q, "delayed", delay_ms=300)   # lowest id, ready at +300 ms
        early = self.enqueue(q, "early")                       # ready now
        time.sleep(0.7)
        late = self.enqueue(q, "late")                         # ready at +700 ms
        got = [t["id"] for t in self.lease(q, n=10)]
        self.assertEqual(got, [early, delayed, late])

    def test_nacked_task_goes_behind_by_ready_time(self):
        q = self.qname("c15n")
        a = self.enqueue(q, "a")
        b = self.enqueue(q, "b")
        leased = self.lease_one(q)
        self.assertEqual(leased["id"], a)
        status, body = self.call("POST", f"/v1/tasks/{a}/nack",
                                 {"lease": leased["lease"]["token"], "error": "x",
                                  "retry_in_ms": 200})
        self.assertEqual(status, 200, body)
        time.sleep(0.4)
        c = self.enqueue(q, "c")
        self.assertEqual([t["id"] for t in self.lease(q, n=10)], [b, a, c])

    def test_delayed_not_leased_before_run_at(self):
        q = self.qname("c15d")
        tid = self.enqueue(q, "d", delay_ms=500)
        run_at = self.get_task(tid)["run_at"]
        got_at = None
        limit = time.time() + 3
        while time.time() < limit:
            tasks = self.lease(q)
            if tasks:
                got_at = now_ms()
                self.assertEqual(tasks[0]["id"], tid)
                break
            time.sleep(0.03)
        self.assertIsNotNone(got_at, "delayed task never became leasable")
        self.assertGreaterEqual(got_at + CLOCK_SLACK_MS, run_at, "leased before run_at")
        self.assertLess(got_at, run_at + 500, "delayed task leasable too late")

    def test_higher_priority_delayed_task_jumps_ahead_when_due(self):
        q = self.qname("c15p")
        low = self.enqueue(q, "low", priority=0)
        high = self.enqueue(q, "high", priority=9, delay_ms=300)
        time.sleep(0.5)
        self.assertEqual([t["id"] for t in self.lease(q, n=10)], [high, low])


class IdempotencyTest(LeaseTestCase):
    """C.16: concurrent enqueues with one key store exactly one task."""

    def race(self, queue, key, n):
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            try:
                barrier.wait(5)
                results[i] = self.server.call("POST", f"/v1/queues/{queue}/tasks",
                                              {"payload": {"who": i}, "idempotency_key": key},
                                              timeout=10)
            except Exception as e:  # reported by the caller's assertions
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        return results

    def test_concurrent_duplicates(self):
        q = self.qname("c16")
        n = 16
        winners = []
        for round_no in range(5):
            results = self.race(q, f"key-{round_no}", n)
            for r in results:
                self.assertIsInstance(r, tuple, r)
            created = [(i, b) for i, (s, b) in enumerate(results) if s == 201]
            dups = [b for s, b in results if s == 200]
            self.assertEqual(len(created), 1, results)
            self.assertEqual(len(dups), n - 1, results)
            who, first = created[0]
            for b in dups:
                self.assertEqual(b["id"], first["id"], results)
                self.assertIs(b.get("duplicate"), True, results)
            self.assertEqual(self.get_task(first["id"])["payload"], {"who": who})
            winners.append(first["id"])
        self.assertEqual(len(set(winners)), 5)
        stats = self.stats(q)
        self.assertEqual(stats["counts"]["ready"], 5, stats)
        self.assertEqual(len(self.lease(q, n=100)), 5)

    def test_concurrent_duplicates_across_queues_are_independent(self):
        queues = [self.qname("c16q") for _ in range(4)]
        results = {}

        def run(qn):
            results[qn] = self.race(qn, "shared", 4)

        threads = [threading.Thread(target=run, args=(qn,)) for qn in queues]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        ids = set()
        for qn in queues:
            rs = results[qn]
            self.assertEqual(sorted(s for s, _ in rs), [200, 200, 200, 201], rs)
            self.assertEqual(len({b["id"] for _, b in rs}), 1, rs)
            ids.add(rs[0][1]["id"])
        self.assertEqual(len(ids), 4)


class BatchTest(LeaseTestCase):
    """C.17: a batch is stored entirely or not at all."""

    def assertNothingStored(self, queue):
        status, body = self.call("GET", f"/v1/queues/{queue}/tasks")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["tasks"], [])
        self.assertEqual(self.lease(queue, n=100), [])

    def test_invalid_spec_anywhere_rejects_batch(self):
        bad_specs = [{"payload": 1, "priority": "x"}, {"payload": 1, "priority": 2 ** 31},
                     {"priority": 1}, {"payload": 1, "delay_ms": "soon"},
                     {"payload": 1, "max_attempts": [3]}, "not an object"]
        for pos in (0, 25, 50):
            for bad in bad_specs:
                with self.subTest(pos=pos, bad=bad):
                    q = self.qname("c17")
                    specs = [{"payload": i, "idempotency_key": f"k{i}"} for i in range(50)]
                    specs.insert(pos, bad)
                    status, body = self.call("POST", f"/v1/queues/{q}/tasks",
                                             {"tasks": specs})
                    self.assertEqual(status, 400, body)
                    self.assertIsInstance(body["error"]["code"], str)
                    self.assertNothingStored(q)
                    # Keys of the rejected batch were not taken.
                    status, body = self.call("POST", f"/v1/queues/{q}/tasks",
                                             {"payload": "again", "idempotency_key": "k3"})
                    self.assertEqual(status, 201, body)

    def test_full_batch_of_limit_size(self):
        q = self.qname("c17f")
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(1000)])
        self.assertEqual(ids, sorted(set(ids)))
        got = self.lease(q, n=1000)
        self.assertEqual([t["id"] for t in got], ids)
        self.assertEqual([t["payload"] for t in got], list(range(1000)))

    def test_batch_over_limit_rejected(self):
        q = self.qname("c17o")
        status, body = self.call("POST", f"/v1/queues/{q}/tasks",
                                 {"tasks": [{"payload": i} for i in range(1001)]})
        self.assertIn(status, (400, 413), body)
        self.assertIsInstance(body["error"]["code"], str)
        self.assertNothingStored(q)

    def test_empty_batch(self):
        q = self.qname("c17e")
        status, body = self.call("POST", f"/v1/queues/{q}/tasks", {"tasks": []})
        self.assertEqual(status, 400, body)
        self.assertNothingStored(q)


class LongPollTest(LeaseTestCase):
    """C.18: a long-poll returns on the first task or at its deadline; a closed client
    never swallows a task."""

    def test_returns_on_first_task(self):
        q = self.qname("c18")
        out = {}

        def poll():
            out["resp"] = self.lease_call(q, n=10, wait_ms=5000)
            out["t"] = time.time()

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.3)
        self.assertTrue(th.is_alive(), "long-poll returned before any task")
        t_enq = time.time()
        tid = self.enqueue(q, "wake")
        th.join(10)
        status, body = out["resp"]
        self.assertEqual(status, 200, body)
        self.assertEqual([t["id"] for t in body["tasks"]], [tid])
        self.assertLess(out["t"] - t_enq, 0.3, "long-poll should return right after enqueue")

    def test_returns_at_deadline_without_task(self):
        q = self.qname("c18d")
        self.enqueue(self.qname("c18other"), "elsewhere")  # other queues don't wake us
        for wait_ms in (500, 1000):
            with self.subTest(wait_ms=wait_ms):
                start = time.monotonic()
                self.assertEqual(self.lease(q, wait_ms=wait_ms), [])
                elapsed = time.monotonic() - start
                self.assertGreaterEqual(elapsed, wait_ms / 1000.0 - 0.15)
                self.assertLessEqual(elapsed, wait_ms / 1000.0 + 0.15)

    def test_waiters_each_get_distinct_tasks(self):
        q = self.qname("c18w")
        results = [None] * 4

        def poll(i):
            results[i] = self.lease_call(q, n=1, wait_ms=1500)

        threads = [threading.Thread(target=poll, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        ids = self.enqueue_batch(q, [{"payload": 1}, {"payload": 2}])
        for t in threads:
            t.join(10)
        got = []
        for status, body in results:
            self.assertEqual(status, 200, body)
            got += [t["id"] for t in body["tasks"]]
        self.assertEqual(sorted(got), sorted(ids), results)

    def test_wakes_when_lease_expires(self):
        q = self.qname("c18x")
        tid = self.enqueue(q, "x")
        first = self.lease_one(q, lease_ms=300)
        task = self.lease_one(q, wait_ms=3000)
        got = now_ms()
        self.assertEqual(task["id"], tid)
        self.assertGreaterEqual(got + CLOCK_SLACK_MS, first["lease"]["expires_at"])
        self.assertLess(got, first["lease"]["expires_at"] + 1000)

    def test_wait_ms_limit(self):
        q = self.qname("c18l")
        status, body = self.lease_call(q, wait_ms=60001)
        self.assertEqual(status, 400, body)
        self.assertIn("wait_ms", body["error"]["message"])

    def open_waiter(self, queue, wait_ms=3000):
        body = json.dumps({"max": 1, "wait_ms": wait_ms}).encode()
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
        sock.sendall(f"POST /v1/queues/{queue}/lease HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                     f"\r\n".encode() + body)
        return sock

    def lease_soon(self, queue, within_s=0.6):
        """Leases with wait_ms 0, retrying a few times while the server notices closes."""
        limit = time.monotonic() + within_s
        while True:
            tasks = self.lease(queue, wait_ms=0, lease_ms=10000)
            if tasks or time.monotonic() > limit:
                return tasks
            time.sleep(0.1)

    def test_closed_waiter_does_not_swallow_task(self):
        q = self.qname("c18c")
        sock = self.open_waiter(q)
        time.sleep(0.2)
        sock.close()
        tid = self.enqueue(q, "for a live worker")
        tasks = self.lease_soon(q)
        self.assertEqual([t["id"] for t in tasks], [tid],
                         "task went to a closed connection and did not come back")

    def test_many_closed_waiters(self):
        q = self.qname("c18m")
        socks = [self.open_waiter(q) for _ in range(5)]
        time.sleep(0.2)
        for s in socks:
            s.close()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(3)])
        got = []
        limit = time.monotonic() + 0.6
        while len(got) < 3:
            got += [t["id"] for t in self.lease(q, n=3, lease_ms=10000)]
            if time.monotonic() > limit:
                break
            time.sleep(0.1)
        self.assertEqual(sorted(got), ids)
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
