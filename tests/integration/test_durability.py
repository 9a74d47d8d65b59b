"""Durable storage (TESTPLAN A.1-A.3, B.9-B.11) against a real `conveyor serve`.

Each test restarts the server on the same data dir (durable_server.DurableServer) after a
SIGTERM or a kill -9 and checks what came back through the HTTP API of SPEC.md:
  - a restart keeps every task (state, payload, result, attempts, errors, progress), the
    queue configs and the idempotency keys; ids keep increasing, also past purged tasks;
  - A.3 a task leased at the crash stays leased until its old expiry, its token still valid;
  - A.1/A.2 a bounded kill -9 loop under 16 concurrent clients (4 of them long-polling):
    every 2xx'd enqueue and ack survives, nothing half-present or duplicated, ids after a
    restart beyond all before (also beyond ids only ever seen in a lease answer);
  - B.9 foreign / future-format dirs refused untouched, B.10 a second serve on a locked dir
    refused naming the holder's PID, B.11 a torn WAL tail recovers, a byte flipped in any
    part (payload, checksum, length, type) of a mid-file WAL record refuses to start;
  - `--durability batch` keeps what was written 300 ms before a kill -9; `none` keeps nothing.
Random choices use a seed printed to stderr (CONVEYOR_TEST_SEED replays it).

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_durability.py
  or CONVEYOR_BIN=/path/to/conveyor python3 -m unittest -v test_durability
"""
import http.client
import json
import os
import random
import re
import shutil
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import (TASK_FIELDS, DurableTestCase, dir_snapshot,  # noqa: E402
                            now_ms, run_serve_to_exit)

SEED = int(os.environ.get("CONVEYOR_TEST_SEED", str(int(time.time()) % 100000)))
sys.stderr.write(f"test_durability: seed {SEED} (CONVEYOR_TEST_SEED)\n")

CLOCK_SLACK_MS = 5          # client and server share the host clock; rounding between them
KILL_CYCLES = int(os.environ.get("CONVEYOR_KILL_CYCLES", "15"))
KILL_LOOP_BUDGET_S = 45.0   # the loop stops early (and says so) past this
CLIENTS = 16
LONG_POLLERS = 4            # of the CLIENTS
MAX_STARTUP_S = 2.0         # TESTPLAN A.1: < 2 s per 1M tasks; we hold far fewer


def stats_without_totals(stats):
    """Queue stats minus `totals` (counters that are documented as not persisted)."""
    return {k: v for k, v in stats.items() if k != "totals"}


class RestartKeepsEverythingTest(DurableTestCase):
    QA, QB = "keep-a", "keep-b"
    CONFIG_A = {"max_attempts": 7, "lease_ms": 12345,
                "backoff": {"base_ms": 500, "factor": 3, "max_ms": 60000, "jitter": False},
                "retention_ms": 7200000}
    # Raw payload text: the server keeps payload bytes; 1.50 must come back equal as JSON.
    SINGLE_PAYLOAD = ('{"x":1.50,"s":"\u00e9\\u00e9\\n","n":null,"a":[1,2,{"b":true}],'
                      '"big":12345678901234567890,"neg":-0.25e3}')

    def post_ok(self, s, path, body, expect=200):
        if isinstance(body, str):
            status, _, resp = s.raw("POST", path, body)
        else:
            status, resp = s.call("POST", path, body)
        self.assertEqual(status, expect, f"POST {path} {body}: {resp}")
        return resp

    def build_state(self, s):
        """Puts tasks in every state through the API (all of it 2xx'd in sync mode)."""
        qa, qb = self.QA, self.QB
        status, cfg = s.call("PUT", f"/v1/queues/{qa}", self.CONFIG_A)
        self.assertEqual(status, 200, cfg)
        for k, v in self.CONFIG_A.items():
            self.assertEqual(cfg[k], v, cfg)
        status, cfg = s.call("PUT", f"/v1/queues/{qb}", {"paused": True})
        self.assertEqual(status, 200, cfg)
        self.assertTrue(cfg["paused"])

        ids = {}
        ids["single"] = self.enqueue_raw(s, qa, '{"payload":' + self.SINGLE_PAYLOAD + "}")["id"]
        body = self.post_ok(s, f"/v1/queues/{qa}/tasks",
                            {"tasks": [{"payload": "str"}, {"payload": 42},
                                       {"payload": None, "priority": 1}]}, expect=201)
        ids["batch"] = body["ids"]
        self.assertEqual(len(ids["batch"]), 3)
        body = self.enqueue(s, qa, {"d": 1}, delay_ms=600000)
        self.assertEqual(body["state"], "scheduled")
        ids["delayed"] = body["id"]
        body = self.enqueue(s, qa, "at", run_at=now_ms() + 600000)
        self.assertEqual(body["state"], "scheduled")
        ids["run_at"] = body["id"]
        ids["idem"] = self.enqueue(s, qa, {"order": 17}, idempotency_key="order-17")["id"]
        status, dup = s.call("POST", f"/v1/queues/{qa}/tasks",
                             {"payload": {"order": 18}, "idempotency_key": "order-17"})
        self.assertEqual(status, 200, dup)
        self.assertEqual((dup["id"], dup.get("duplicate")), (ids["idem"], True), dup)
        ids["high"] = self.enqueue(s, qa, "high", priority=9)["id"]
        ids["low"] = self.enqueue(s, qa, "low", priority=-5)["id"]
        body = self.enqueue(s, qa, "late", deadline=now_ms() - 1000)
        self.assertEqual(body["state"], "dead", body)
        ids["expired"] = body["id"]
        ids["max3"] = self.enqueue(s, qa, {"m": 3}, max_attempts=3, lease_ms=4000)["id"]
        ids["retry"] = self.enqueue(s, qa, "retry-me")["id"]

        leased = self.lease(s, qa, n=20, lease_ms=60000)
        tokens = {t["id"]: t["lease"]["token"] for t in leased}
        want = {ids["single"], ids["idem"], ids["high"], ids["low"], ids["max3"],
                ids["retry"], *ids["batch"]}
        self.assertEqual(set(tokens), want, leased)

        def tok(key, i=None):
            return tokens[ids[key] if i is None else ids[key][i]]

        b0, b1, b2 = ids["batch"]
        self.post_ok(s, f"/v1/tasks/{ids['single']}/ack",
                     '{"lease":"%s","result":{"r":1.50,"t":"\\u00fc"}}' % tok("single"))
        self.post_ok(s, f"/v1/tasks/{b0}/ack", {"lease": tok("batch", 0), "result": "done"})
        self.post_ok(s, f"/v1/tasks/{b1}/ack", {"lease": tok("batch", 1)})
        self.post_ok(s, f"/v1/tasks/{ids['high']}/extend",
                     {"lease": tok("high"), "lease_ms": 60000, "progress": {"pct": 50}})
        self.post_ok(s, f"/v1/tasks/{ids['high']}/ack",
                     {"lease": tok("high"), "result": [1, 2, 3]})
        r = self.post_ok(s, f"/v1/tasks/{b2}/nack",
                         {"lease": tok("batch", 2), "error": "boom", "retry_in_ms": 600000})
        self.assertEqual(r["state"], "scheduled", r)
        r = self.post_ok(s, f"/v1/tasks/{ids['max3']}/nack",
                         {"lease": tok("max3"), "error": "fatal", "dead": True})
        self.assertEqual(r["state"], "dead", r)
        r = self.post_ok(s, f"/v1/tasks/{ids['retry']}/nack",
                         {"lease": tok("retry"), "error": "oops", "dead": True})
        self.assertEqual(r["state"], "dead", r)
        self.post_ok(s, f"/v1/tasks/{ids['retry']}/retry", None)
        time.sleep(0.02)  # distinct ready times: lease order after restart is then defined
        self.post_ok(s, f"/v1/tasks/{ids['idem']}/nack",
                     {"lease": tok("idem"), "error": "again", "retry_in_ms": 0})
        self.post_ok(s, f"/v1/tasks/{ids['low']}/nack",
                     {"lease": tok("low"), "error": "again", "retry_in_ms": 0})
        status, r = s.call("DELETE", f"/v1/tasks/{ids['run_at']}")
        self.assertEqual(status, 200, r)
        ids["paused"] = self.enqueue(s, qb, {"p": True})["id"]
        ids["cancel_b"] = self.enqueue(s, qb, "cancel-me")["id"]
        status, r = s.call("DELETE", f"/v1/tasks/{ids['cancel_b']}")
        self.assertEqual(status, 200, r)

        deadline = time.time() + 5
        while time.time() < deadline:
            states = {self.get_task(s, ids[k])["state"] for k in ("idem", "low")}
            if states == {"ready"}:
                break
            time.sleep(0.02)
        self.assertEqual(states, {"ready"}, "nack with retry_in_ms 0 should be ready soon")
        return ids

    def snapshot(self, s):
        snap = {}
        for q in (self.QA, self.QB):
            snap[q] = (stats_without_totals(self.queue_stats(s, q)), self.list_tasks(s, q))
        return snap

    def check_expected_values(self, s, ids):
        """What each task must hold, independent of the snapshot (so a bug that corrupts the
        state before the restart is caught too)."""
        t = self.get_task(s, ids["single"])
        self.assertEqual(t["payload"], json.loads(self.SINGLE_PAYLOAD))
        self.assertEqual((t["state"], t["result"], t["attempts"]),
                         ("succeeded", {"r": 1.5, "t": "\u00fc"}, 1), t)
        b0, b1, b2 = (self.get_task(s, i) for i in ids["batch"])
        self.assertEqual((b0["payload"], b0["state"], b0["result"]), ("str", "succeeded", "done"))
        self.assertEqual((b1["payload"], b1["state"], b1["result"]), (42, "succeeded", None))
        self.assertEqual((b2["payload"], b2["state"], b2["priority"]), (None, "scheduled", 1))
        self.assertEqual([(e["attempt"], e["message"]) for e in b2["errors"]], [(1, "boom")])
        t = self.get_task(s, ids["high"])
        self.assertEqual((t["state"], t["priority"], t["result"], t["progress"]),
                         ("succeeded", 9, [1, 2, 3], {"pct": 50}), t)
        t = self.get_task(s, ids["max3"])
        self.assertEqual((t["state"], t["dead_reason"], t["max_attempts"], t["attempts"]),
                         ("dead", "nack", 3, 1), t)
        t = self.get_task(s, ids["expired"])
        self.assertEqual((t["state"], t["dead_reason"]), ("dead", "expired"), t)
        t = self.get_task(s, ids["retry"])
        self.assertEqual((t["state"], t["attempts"]), ("ready", 0), t)
        for k in ("idem", "low"):
            t = self.get_task(s, ids[k])
            self.assertEqual((t["state"], t["attempts"]), ("ready", 1), t)
            self.assertEqual([e["message"] for e in t["errors"]], ["again"], t)
        t = self.get_task(s, ids["delayed"])
        self.assertEqual((t["state"], t["payload"]), ("scheduled", {"d": 1}), t)
        self.assertEqual(self.get_task(s, ids["run_at"])["state"], "canceled")
        self.assertEqual(self.get_task(s, ids["cancel_b"])["state"], "canceled")
        self.assertEqual(self.get_task(s, ids["paused"])["state"], "ready")
        stats = self.queue_stats(s, self.QA)
        for k, v in self.CONFIG_A.items():
            self.assertEqual(stats["config"][k], v, stats)
        self.assertTrue(self.queue_stats(s, self.QB)["config"]["paused"])

    def restart_keeps_everything(self, how):
        d = self.make_dir()
        s = self.start(d)
        ids = self.build_state(s)
        self.check_expected_values(s, ids)
        before = self.snapshot(s)
        all_ids = {t["id"] for q in before for t in before[q][1]}
        self.assertEqual(len(all_ids), 14)
        if how == "sigterm":
            self.assertEqual(s.sigterm(), 0, "clean shutdown should exit 0:\n" + s.output())
        else:
            s.kill9()

        s = self.start(d)
        rec = s.recovered()
        self.assertIsNotNone(rec, "no 'recovered N tasks' line:\n" + s.output())
        self.assertEqual(rec[0], 14, s.output())
        after = self.snapshot(s)
        for q in before:
            self.assertEqual(after[q][0], before[q][0], f"queue {q} stats/config changed")
            b = {t["id"]: t for t in before[q][1]}
            a = {t["id"]: t for t in after[q][1]}
            self.assertEqual(sorted(a), sorted(b), f"queue {q}: task ids differ")
            for i in b:
                self.assertEqual(a[i], b[i], f"task {i} changed across the restart")
        self.check_expected_values(s, ids)

        # The idempotency key still deduplicates.
        status, dup = s.call("POST", f"/v1/queues/{self.QA}/tasks",
                             {"payload": {"order": 19}, "idempotency_key": "order-17"})
        self.assertEqual(status, 200, dup)
        self.assertEqual((dup["id"], dup.get("duplicate")), (ids["idem"], True), dup)
        # Lease order survives: priority, then the time each became ready.
        leased = self.lease(s, self.QA, n=10, lease_ms=60000)
        self.assertEqual([t["id"] for t in leased], [ids["retry"], ids["idem"], ids["low"]])
        self.assertEqual([t["attempts"] for t in leased], [1, 2, 2])
        self.assertEqual(self.lease(s, self.QB, n=10), [], "queue keep-b is paused")
        # New ids beyond every old one, in any queue.
        for q in ("fresh-1", "fresh-2", self.QA):
            new_id = self.enqueue(s, q, "new")["id"]
            self.assertGreater(new_id, max(all_ids), f"id reused/went back in {q}")

    def test_restart_after_sigterm_keeps_everything(self):
        self.restart_keeps_everything("sigterm")

    def test_restart_after_kill9_keeps_everything(self):
        self.restart_keeps_everything("kill9")

    def test_ids_increase_after_newest_tasks_purged(self):
        d = self.make_dir()
        s = self.start(d)
        purge_queues = [f"purge-{i}" for i in range(4)]
        for q in purge_queues:
            status, cfg = s.call("PUT", f"/v1/queues/{q}", {"retention_ms": 1})
            self.assertEqual(status, 200, cfg)
        keep = self.enqueue(s, "stay", "kept")["id"]
        purged = []
        for q in purge_queues:  # the newest tasks of the server, in several shards
            purged.append(self.enqueue(s, q, q)["id"])
            (t,) = self.lease(s, q, n=1)
            status, r = s.call("POST", f"/v1/tasks/{t['id']}/ack", {"lease": t["lease"]["token"]})
            self.assertEqual(status, 200, r)
        newest = max(purged)
        self.assertGreater(newest, keep)
        deadline = time.time() + 5
        while time.time() < deadline:
            if all(s.call("GET", f"/v1/tasks/{i}")[0] == 404 for i in purged):
                break
            time.sleep(0.05)
        for i in purged:
            self.get_task(s, i, expect=404)
        time.sleep(0.3)  # purges are written without a fsync wait; let them reach the WAL
        s.kill9()

        s = self.start(d)  # restart without creating anything
        for i in purged:
            self.get_task(s, i, expect=404)
        self.get_task(s, keep)
        s.kill9()

        s = self.start(d)
        for q in ["stay"] + purge_queues + ["other"]:
            new_id = self.enqueue(s, q, "after")["id"]
            self.assertGreater(new_id, newest,
                               f"new id {new_id} in {q} not above purged id {newest}")
            newest = new_id


class LeasedAtCrashTest(DurableTestCase):
    """TESTPLAN A.3."""

    LEASE_MS = 2500  # long enough for a kill -9 + restart on a busy machine

    def test_leased_at_crash_stays_leased_until_old_expiry(self):
        d = self.make_dir()
        s = self.start(d)
        a = self.enqueue(s, "lq", {"n": "a"})["id"]
        b = self.enqueue(s, "lq", {"n": "b"})["id"]
        leased = self.lease(s, "lq", n=2, lease_ms=self.LEASE_MS)
        self.assertEqual(sorted(t["id"] for t in leased), sorted([a, b]))
        token = {t["id"]: t["lease"]["token"] for t in leased}
        expires = {t["id"]: t["lease"]["expires_at"] for t in leased}
        # A lease is written without waiting for fsync; give the commit thread a moment so
        # the lease is recorded (SPEC: a recorded lease stays until it expires).
        time.sleep(0.3)
        s.kill9()

        s = self.start(d)
        for i in (a, b):
            t = self.get_task(s, i)
            self.assertEqual(t["state"], "leased",
                             f"task {i} leased before the crash came back {t['state']}: {t}")
            self.assertEqual(t["lease"]["expires_at"], expires[i], t)
            self.assertEqual(t["attempts"], 1, t)
        self.assertEqual(self.lease(s, "lq", n=5), [], "a still-leased task was handed out")
        self.assertLess(now_ms(), expires[b] - 200,
                        "restart took too long to test the old token before expiry")
        status, r = s.call("POST", f"/v1/tasks/{b}/ack",
                           {"lease": token[b], "result": "after-restart"})
        self.assertEqual(status, 200, f"old token refused after restart, before expiry: {r}")
        t = self.get_task(s, b)
        self.assertEqual((t["state"], t["result"]), ("succeeded", "after-restart"), t)

        deadline = expires[a] / 1000.0 + 5
        while True:
            t = self.get_task(s, a)
            seen = now_ms()
            if t["state"] != "leased":
                break
            self.assertLess(time.time(), deadline, f"lease never expired after restart: {t}")
            time.sleep(0.02)
        self.assertGreaterEqual(seen, expires[a] - CLOCK_SLACK_MS,
                                f"task {a} left `leased` before its old expires_at")
        self.assertEqual((t["state"], t["attempts"]), ("ready", 1), t)
        for verb, body in (("ack", {}), ("nack", {"error": "late"}),
                           ("extend", {"lease_ms": 1000})):
            body["lease"] = token[a]
            status, r = s.call("POST", f"/v1/tasks/{a}/{verb}", body)
            self.assertEqual(status, 409, f"{verb} with the expired pre-crash token: {r}")
        (t,) = self.lease(s, "lq", n=5)
        self.assertEqual((t["id"], t["attempts"]), (a, 2), t)


class KillLoopTest(DurableTestCase):
    """TESTPLAN A.1 / A.2 (and A.17's batch all-or-nothing), bounded for `make test`."""

    QUEUES = ["kl-0", "kl-1", "kl-2", "kl-3"]

    def setUp(self):
        self.rng = random.Random(SEED)
        self.sent = {}             # pid -> (payload, queue), every enqueue sent
        self.confirmed = {}        # pid -> id, enqueues answered 2xx
        self.batches = []          # (pids, ids or None) per batch sent
        self.acks_sent = {}        # id -> [result, ...] acks sent (any answer)
        self.acks_ok = {}          # id -> result acked with 200
        self.lease_ids = set()     # every id handed out in a lease answer
        self.listed_max = 0        # the largest id listed after the last restart
        self.unexpected = []       # non-2xx answers while the server was up

    def worker(self, port, cycle, tid, stop, out):
        rng = random.Random(SEED * 1000003 + cycle * 101 + tid)
        conn = None
        n = 0

        def post(path, body):
            conn.request("POST", path, body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if data else None

        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                # The first LONG_POLLERS clients only long-poll and ack: they get tasks the
                # moment they are created, before the creation is stored.
                r = 1.0 if tid < LONG_POLLERS else rng.random()
                q = rng.choice(self.QUEUES)
                if r < 0.65:
                    n += 1
                    pid = f"c{cycle}-t{tid}-{n}"
                    payload = {"pid": pid, "n": n, "f": 1.5, "pad": "x" * rng.randrange(100)}
                    out["sent"].append((pid, payload, q))
                    status, body = post(f"/v1/queues/{q}/tasks",
                                        {"payload": payload, "priority": rng.randrange(-2, 3)})
                    if status == 201:
                        out["confirmed"].append((pid, body["id"]))
                    else:
                        out["unexpected"].append(("enqueue", status, body))
                elif r < 0.8:
                    specs, pids = [], []
                    for _ in range(rng.randrange(2, 6)):
                        n += 1
                        pid = f"c{cycle}-t{tid}-{n}"
                        payload = {"pid": pid, "n": n, "batch": True}
                        out["sent"].append((pid, payload, q))
                        specs.append({"payload": payload})
                        pids.append(pid)
                    batch = [pids, None]
                    out["batches"].append(batch)
                    status, body = post(f"/v1/queues/{q}/tasks", {"tasks": specs})
                    if status == 201:
                        batch[1] = body["ids"]
                        out["confirmed"] += list(zip(pids, body["ids"]))
                    else:
                        out["unexpected"].append(("batch", status, body))
                else:
                    status, body = post(f"/v1/queues/{q}/lease",
                                        {"max": 2, "lease_ms": 30000, "worker": f"t{tid}",
                                         "wait_ms": 1000 if tid < LONG_POLLERS else 0})
                    if status != 200:
                        out["unexpected"].append(("lease", status, body))
                        continue
                    for task in body["tasks"]:
                        out["seen"].append(task["id"])
                        result = {"by": f"t{tid}", "cycle": cycle, "pid": task["payload"]["pid"]}
                        out["acks_sent"].append((task["id"], result))
                        status, ab = post(f"/v1/tasks/{task['id']}/ack",
                                          {"lease": task["lease"]["token"], "result": result})
                        if status == 200:
                            out["acks_ok"].append((task["id"], result))
                        else:
                            out["unexpected"].append(("ack", status, ab))
            except (OSError, http.client.HTTPException, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
                if stop.is_set():
                    break
                time.sleep(0.01)  # the server is gone; the main thread stops us
        if conn is not None:
            conn.close()

    def run_cycle(self, server, cycle):
        stop = threading.Event()
        outs = [{"sent": [], "confirmed": [], "batches": [], "acks_sent": [], "acks_ok": [],
                 "seen": [], "unexpected": []} for _ in range(CLIENTS)]
        threads = [threading.Thread(target=self.worker, args=(server.port, cycle, i, stop, o),
                                    daemon=True) for i, o in enumerate(outs)]
        for t in threads:
            t.start()
        time.sleep(self.rng.uniform(0.2, 1.5))
        server.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=20)
            self.assertFalse(t.is_alive(), "a client thread hung after the kill")
        new_ids = []
        for o in outs:
            for pid, payload, q in o["sent"]:
                self.sent[pid] = (payload, q)
            for pid, i in o["confirmed"]:
                self.confirmed[pid] = i
                new_ids.append(i)
            self.batches += o["batches"]
            for i, result in o["acks_sent"]:
                self.acks_sent.setdefault(i, []).append(result)
            for i, result in o["acks_ok"]:
                self.acks_ok[i] = result
            self.lease_ids.update(o["seen"])
            self.unexpected += o["unexpected"]
        return new_ids

    def verify(self, server):
        """Checks the restarted server against everything recorded; returns counts."""
        tasks = []
        for q in self.QUEUES:
            tasks += self.list_tasks(server, q)
        status, body = server.call("GET", "/v1/queues")
        self.assertEqual(status, 200, body)
        unknown = {x["name"] for x in body["queues"]} - set(self.QUEUES)
        self.assertFalse(unknown, f"queues nobody created: {unknown}")
        rec = server.recovered()
        self.assertIsNotNone(rec, "no 'recovered' line:\n" + server.output())
        self.assertEqual(rec[0], len(tasks), "recovered count != tasks listed")
        self.assertLess(rec[2], MAX_STARTUP_S, f"recovery of {rec[0]} tasks took {rec[2]} s")

        # Plain checks collecting problems (tens of thousands of tasks per cycle: unittest's
        # assert methods per field would dominate the cycle time).
        problems = []
        by_id, by_pid = {}, {}
        for t in tasks:
            missing = [f for f in TASK_FIELDS if f not in t]
            if missing:
                problems.append(f"task lacks {missing}: {t}")
                continue
            if t["id"] in by_id:
                problems.append(f"duplicate id {t['id']}: {t} / {by_id[t['id']]}")
            by_id[t["id"]] = t
            payload = t["payload"]
            pid = payload.get("pid") if isinstance(payload, dict) else None
            if pid not in self.sent:
                problems.append(f"task with a payload never sent: {t}")
                continue
            if pid in by_pid:
                problems.append(f"payload {pid} stored twice: {t} / {by_pid[pid]}")
            by_pid[pid] = t
            sent_payload, q = self.sent[pid]
            if payload != sent_payload or t["queue"] != q:
                problems.append(f"payload/queue not intact: {t}, sent {sent_payload} to {q}")
            # A.2: only states this workload can reach, and only ones it did reach.
            state = t["state"]
            if state not in ("ready", "leased", "succeeded"):
                problems.append(f"state never reached: {t}")
            if state in ("leased", "succeeded") and t["attempts"] < 1:
                problems.append(f"{state} with attempts 0: {t}")
            if state == "leased" and "expires_at" not in (t.get("lease") or {}):
                problems.append(f"leased without lease.expires_at: {t}")
            if state == "succeeded":
                if t["result"] not in self.acks_sent.get(t["id"], []):
                    problems.append(f"succeeded without such an ack sent: {t}")
            elif t["result"] is not None:
                problems.append(f"result on an unfinished task: {t}")
            if not isinstance(t["errors"], list) or not isinstance(t["created_at"], int):
                problems.append(f"malformed fields: {t}")

        for pid, i in self.confirmed.items():
            if pid not in by_pid:
                problems.append(f"2xx-enqueued {pid} (id {i}) lost")
            elif by_pid[pid]["id"] != i:
                problems.append(f"{pid} enqueued as id {i} came back as {by_pid[pid]}")
        for i, result in self.acks_ok.items():
            if i not in by_id:
                problems.append(f"2xx-acked task {i} lost")
            elif by_id[i]["state"] != "succeeded":
                problems.append(f"2xx-acked task not succeeded: {by_id[i]}")
        for pids, ids in self.batches:  # A.17: a batch is all or nothing
            present = [p in by_pid for p in pids]
            if len(set(present)) != 1:
                problems.append(f"batch half-present: {list(zip(pids, present))}")
            elif ids is not None and [by_pid[p]["id"] if p in by_pid else None
                                      for p in pids] != ids:
                problems.append(f"2xx batch {pids} ids {ids} not all back as such")
        self.assertFalse(problems, f"{len(problems)} problems after restart, first ones:\n"
                         + "\n".join(problems[:10]))
        self.listed_max = max(by_id, default=0)
        return len(tasks)

    def test_kill9_loop_sync(self):
        d = self.make_dir()
        started = time.monotonic()
        server = self.start(d)
        durable_max = lease_max = 0
        reused = []
        cycles = kills = checked = 0
        for cycle in range(KILL_CYCLES):
            if time.monotonic() - started > KILL_LOOP_BUDGET_S:
                sys.stderr.write(f"kill loop: time budget reached after {cycles} cycles\n")
                break
            new_ids = self.run_cycle(server, cycle)
            kills += 1
            self.assertFalse(self.unexpected, f"non-2xx answers under load: "
                                              f"{self.unexpected[:5]}")
            # SPEC: ids strictly increase across restarts, never reused. Checked against the
            # ids storage showed or 2xx'd before (durable), and separately against ids only
            # seen in lease answers (a task leased before its creation was synced).
            low = sorted(i for i in new_ids if i <= durable_max)
            self.assertFalse(low, f"cycle {cycle}: new ids {low[:5]} (sequence "
                                  f"{[i >> 6 for i in low[:5]]}) not above {durable_max} (sequence "
                                  f"{durable_max >> 6}), the largest id listed after the previous "
                                  "restart or 2xx-enqueued before it")
            low = sorted(i for i in new_ids if i <= lease_max)
            if low:  # reported at the end, so the other invariants keep being checked
                reused.append(f"cycle {cycle}: {len(low)} new ids, e.g. {low[:3]}, not above "
                              f"{lease_max}, an id handed out in a lease before the previous "
                              f"kill whose task did not survive it (the id was reused)")
            server = self.start(d)
            checked = self.verify(server)
            cycles += 1
            durable_max = max(self.listed_max, max(self.confirmed.values(), default=0))
            lease_max = max(self.lease_ids, default=0)
        self.assertEqual(server.sigterm(), 0, server.output())
        sys.stderr.write(
            f"kill loop: seed {SEED}, {cycles} cycles, {kills} kills, {len(self.sent)} "
            f"enqueues sent, {len(self.confirmed)} confirmed, {len(self.acks_ok)} acks "
            f"confirmed, {sum(1 for _, ids in self.batches if ids is None)} unanswered "
            f"batches, {len(self.lease_ids)} leased, {len(reused)} cycles with a reused id, "
            f"{checked} tasks checked after the last restart, "
            f"{time.monotonic() - started:.1f} s\n")
        self.assertGreater(len(self.confirmed), 0, "no enqueue succeeded at all")
        self.assertGreater(len(self.acks_ok), 0, "no ack succeeded at all")
        self.assertFalse(reused, "SPEC: ids are never reused across restarts:\n"
                         + "\n".join(reused))


class DataDirTest(DurableTestCase):
    """TESTPLAN B.9 and B.10."""

    def assertRefusedUntouched(self, d, *must_mention):
        before = dir_snapshot(d)
        rc, out = run_serve_to_exit(d)
        self.assertIsNotNone(rc, f"serve on {d} did not exit:\n{out}")
        self.assertNotEqual(rc, 0, out)
        self.assertTrue(out.strip(), "refused without a message")
        for word in must_mention:
            self.assertIn(word, out)
        after = dir_snapshot(d)
        self.assertEqual({k: v[0] for k, v in after.items()},
                         {k: v[0] for k, v in before.items()}, "files changed or appeared")
        self.assertEqual(after, before, "a file's mtime changed")
        return out

    def test_non_empty_dir_without_marker_refused(self):
        d = self.make_dir()
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("someone else's data\n")
        os.mkdir(os.path.join(d, "sub"))
        with open(os.path.join(d, "sub", "x.bin"), "wb") as f:
            f.write(bytes(range(256)))
        self.assertRefusedUntouched(d, d)

    def test_future_format_refused(self):
        d = self.make_dir()
        s = self.start(d)  # a real data dir with a task in it, then marked format 99
        task_id = self.enqueue(s, "q", "keep")["id"]
        self.assertEqual(s.sigterm(), 0, s.output())
        with open(os.path.join(d, "CONVEYOR"), "w") as f:
            f.write("conveyor-data-format 99\n")
        out = self.assertRefusedUntouched(d, "99")
        # And a marker that is not ours at all.
        with open(os.path.join(d, "CONVEYOR"), "w") as f:
            f.write("hello world\n")
        self.assertRefusedUntouched(d)
        # Putting format 1 back makes it usable, with the task intact.
        with open(os.path.join(d, "CONVEYOR"), "w") as f:
            f.write("conveyor-data-format 1\n")
        s = self.start(d)
        self.assertEqual(self.get_task(s, task_id)["payload"], "keep", out)

    def test_second_serve_refused_with_holder_pid(self):
        d = self.make_dir()
        first = self.start(d)
        a = self.enqueue(first, "q", "one")["id"]
        rc, out = run_serve_to_exit(d)
        self.assertIsNotNone(rc, "second serve on a locked dir kept running:\n" + out)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, rf"\b{first.pid}\b", "message does not name the holder's PID")
        self.assertTrue(first.alive(), "the first server died")
        b = self.enqueue(first, "q", "two")["id"]
        self.assertGreater(b, a)
        self.assertEqual(self.get_task(first, a)["payload"], "one")
        # Still locked on a second try; free once the first is gone.
        rc, out = run_serve_to_exit(d)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, rf"\b{first.pid}\b")
        self.assertEqual(first.sigterm(), 0, first.output())
        s = self.start(d)
        self.assertEqual(self.get_task(s, b)["payload"], "two")


WAL_BLOCK = 32768
RECYCLABLE_TYPES = {5, 6, 7, 8, 11, 131}


def wal_records(data):
    """(offset, header size, length, type) of each physical record of a RocksDB WAL."""
    records, off = [], 0
    while off + 7 <= len(data):
        left = WAL_BLOCK - off % WAL_BLOCK
        if left < 7:
            off += left  # block trailer
            continue
        _crc, length, rtype = struct.unpack_from("<IHB", data, off)
        if rtype == 0 and length == 0:
            break  # zeroes: preallocated, never written
        header = 11 if rtype in RECYCLABLE_TYPES else 7
        records.append((off, header, length, rtype))
        off += header + length
    return records


def newest_wal(d):
    db = os.path.join(d, "db")
    logs = [f for f in os.listdir(db) if re.fullmatch(r"\d+\.log", f)]
    logs.sort(key=lambda f: int(f[:-4]))
    return os.path.join(db, logs[-1]) if logs else None


class CorruptWalTest(DurableTestCase):
    """TESTPLAN B.11. kill -9 keeps the data in the WAL (a clean stop may flush it to SSTs)."""

    def fill(self, count):
        d = self.make_dir()
        s = self.start(d)
        ids = [self.enqueue(s, "w", {"i": i, "pad": "p" * 50})["id"] for i in range(count)]
        s.kill9()
        wal = newest_wal(d)
        self.assertIsNotNone(wal, os.listdir(os.path.join(d, "db")))
        with open(wal, "rb") as f:
            data = f.read()
        full = [r for r in wal_records(data) if r[3] in (1, 5)]
        self.assertGreaterEqual(len(full), count, f"expected one WAL record per enqueue in {wal}")
        return d, ids, wal, data, full

    def test_torn_wal_tail_recovers_to_last_complete_record(self):
        d, ids, wal, data, full = self.fill(20)
        last_end = full[-1][0] + full[-1][1] + full[-1][2]
        with open(wal, "r+b") as f:
            f.truncate(last_end - 3)  # mid-way through the last record
        s = self.start(d)
        out = s.output()
        present = [i for i in ids if s.call("GET", f"/v1/tasks/{i}")[0] == 200]
        self.assertEqual(present[:len(ids) - 1], ids[:-1],
                         "tasks before the torn record were lost")
        for i in present:
            t = self.get_task(s, i)
            self.assertTaskComplete(t)
            self.assertEqual(t["payload"]["i"], ids.index(i), t)
        new_id = self.enqueue(s, "w", "after")["id"]
        self.assertGreater(new_id, max(present))
        sys.stderr.write(f"torn WAL tail: {len(present)}/{len(ids)} tasks back; server said: "
                         f"{out.strip()!r}\n")

    # One flipped byte in the middle record of the WAL, at each part of the record:
    # (name, offset in the record given its header size and length, xor mask).
    FLIPS = [
        ("payload byte", lambda header, length: header + length // 2, 0x5A),
        ("checksum byte", lambda header, length: 0, 0x10),
        ("length low byte", lambda header, length: 4, 0x01),
        ("length high byte", lambda header, length: 5, 0x80),
        ("type byte (full -> recyclable full)", lambda header, length: 6, 0x04),
    ]

    def test_flipped_byte_mid_wal_refuses_to_start(self):
        d, ids, wal, data, full = self.fill(30)
        pristine = self.make_dir()
        os.rmdir(pristine)
        shutil.copytree(d, pristine)
        off, header, length, _ = full[len(full) // 2]
        for name, where, mask in self.FLIPS:
            with self.subTest(flip=name):
                shutil.rmtree(d)
                shutil.copytree(pristine, d)
                pos = off + where(header, length)
                corrupted = bytearray(data)
                corrupted[pos] ^= mask
                with open(wal, "wb") as f:
                    f.write(corrupted)
                rc, out = run_serve_to_exit(d)
                if rc is None:  # say how much it dropped
                    s = self.start(d)
                    back = sum(1 for i in ids if s.call("GET", f"/v1/tasks/{i}")[0] == 200)
                    s.kill9()
                    self.fail(f"{name} flipped at byte {pos} of {len(data)} in {wal} (record "
                              f"{len(full) // 2 + 1} of {len(full)}): serve started anyway "
                              f"with {back} of {len(ids)} fsync'd tasks (silent salvage)\n"
                              f"{out}")
                self.assertNotEqual(rc, 0, out)
                self.assertTrue(os.path.basename(wal) in out or "corrupt" in out.lower(),
                                f"message names neither the file nor corruption:\n{out}")
                with open(wal, "rb") as f:
                    self.assertEqual(f.read(), bytes(corrupted), "the corrupt WAL was modified")


class DurabilityModesTest(DurableTestCase):
    def test_batch_mode_keeps_tasks_written_300ms_before_kill(self):
        d = self.make_dir()
        s = self.start(d, durability="batch")
        ids = {self.enqueue(s, "bq", {"i": i})["id"]: i for i in range(20)}
        (t,) = self.lease(s, "bq", n=1)
        status, r = s.call("POST", f"/v1/tasks/{t['id']}/ack",
                           {"lease": t["lease"]["token"], "result": "ok"})
        self.assertEqual(status, 200, r)
        time.sleep(0.3)  # > the 100 ms batch fsync interval
        s.kill9()
        s = self.start(d, durability="batch")
        for i, n in ids.items():
            self.assertEqual(self.get_task(s, i)["payload"], {"i": n})
        self.assertEqual(self.get_task(s, t["id"])["state"], "succeeded")
        self.assertGreater(self.enqueue(s, "bq", "new")["id"], max(ids))

    def test_none_mode_keeps_nothing_and_writes_nothing(self):
        d = self.make_dir()
        s = self.start(d, durability="none")
        self.assertIsNone(s.recovered(), "`none` should not recover anything:\n" + s.output())
        a = self.enqueue(s, "nq", "gone")["id"]
        self.assertEqual(s.sigterm(), 0, s.output())
        self.assertEqual(os.listdir(d), [], "`none` created files in the data dir")
        s = self.start(d, durability="none")
        self.get_task(s, a, expect=404)
        self.assertEqual(self.list_tasks(s, "nq"), [])
        s.kill9()
        self.assertEqual(os.listdir(d), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
