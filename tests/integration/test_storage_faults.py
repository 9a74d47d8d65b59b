"""Storage errors (TESTPLAN B.7 fsync/write failure, B.8 disk full) against a real serve.

The server is started with CONVEYOR_FAULT_FILE=<flag>: while the flag file exists every WAL
append/sync fails (ENOSPC when it says `enospc`, else EIO). Pass: state-changing requests
get 503 {"error":{"code":"storage_unavailable"}} with Retry-After and change nothing; GETs,
lists, /metrics and /healthz keep answering; once the flag is gone writes succeed again
within a few seconds (the server retries every second); after a restart every 2xx'd change
is there and none of the refused ones. Each scenario runs for EIO and for ENOSPC.
Random choices use a seed printed to stderr (CONVEYOR_TEST_SEED replays it).

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_storage_faults.py
  or CONVEYOR_BIN=/path/to/conveyor python3 -m unittest -v test_storage_faults
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402

SEED = int(os.environ.get("CONVEYOR_TEST_SEED", str(int(time.time()) % 100000)))
sys.stderr.write(f"test_storage_faults: seed {SEED} (CONVEYOR_TEST_SEED)\n")

RECOVERY_TIMEOUT_S = 6.0  # "recovers within a few seconds (it retries every second)"
Q = "fq"


class FaultCase(DurableTestCase):
    KIND = "eio"  # flag file content

    def setUp(self):
        self.dir = self.make_dir()
        self.flag = os.path.join(self.make_dir("conveyor-flag-"), "fail-writes")
        self.env = {"CONVEYOR_FAULT_FILE": self.flag}
        self.server = self.start(self.dir, env=self.env)
        self.refused = []  # payload markers of writes answered 503

    def set_fault(self, on):
        if on:
            with open(self.flag, "w") as f:
                f.write(self.KIND + "\n")
        elif os.path.exists(self.flag):
            os.remove(self.flag)

    def assertStorageUnavailable(self, status, headers, body, what):
        self.assertEqual(status, 503, f"{what} during a {self.KIND} fault: {status} {body}")
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("error", {}).get("code"), "storage_unavailable", body)
        self.assertIsInstance(body["error"].get("message"), str, body)
        self.assertIn("retry-after", headers, f"503 without Retry-After for {what}")

    def before_fault(self):
        """Tasks stored before the fault: some ready, one leased (token kept), one acked."""
        s = self.server
        ids = [self.enqueue(s, Q, {"pre": i})["id"] for i in range(6)]
        (leased,) = self.lease(s, Q, n=1, lease_ms=120000)
        (done,) = self.lease(s, Q, n=1, lease_ms=120000)
        status, r = s.call("POST", f"/v1/tasks/{done['id']}/ack",
                           {"lease": done["lease"]["token"], "result": "pre-fault"})
        self.assertEqual(status, 200, r)
        status, r = s.call("PUT", f"/v1/queues/{Q}", {"max_attempts": 9})
        self.assertEqual(status, 200, r)
        time.sleep(0.3)  # the lease is written without a fsync wait; let it reach the WAL
        snapshot = {t["id"]: t for t in self.list_tasks(s, Q)}
        self.assertEqual(sorted(snapshot), sorted(ids))
        return {"ids": ids, "leased": leased, "done": done["id"], "snapshot": snapshot}

    def refused_writes(self, pre):
        """Every kind of state-changing request during the fault → 503, nothing changed."""
        s = self.server
        ready_id = next(i for i, t in pre["snapshot"].items() if t["state"] == "ready")
        leased = pre["leased"]
        token = leased["lease"]["token"]
        attempts = [
            ("enqueue", "POST", f"/v1/queues/{Q}/tasks", {"payload": {"refused": "e1"}}),
            ("enqueue other queue", "POST", "/v1/queues/fq-other/tasks",
             {"payload": {"refused": "e2"}}),
            ("batch enqueue", "POST", f"/v1/queues/{Q}/tasks",
             {"tasks": [{"payload": {"refused": "b1"}}, {"payload": {"refused": "b2"}}]}),
            ("ack", "POST", f"/v1/tasks/{leased['id']}/ack",
             {"lease": token, "result": "during-fault"}),
            ("nack", "POST", f"/v1/tasks/{leased['id']}/nack", {"lease": token, "error": "x"}),
            ("cancel", "DELETE", f"/v1/tasks/{ready_id}", None),
            ("PUT queue", "PUT", f"/v1/queues/{Q}", {"max_attempts": 3}),
            ("add_task", "POST", "/add_task", {"task": {"refused": "a1"}}),
        ]
        for what, method, path, body in attempts:
            status, headers, resp = s.request(method, path, body)
            self.assertStorageUnavailable(status, headers, resp, what)
        self.refused += ["e1", "e2", "b1", "b2", "a1"]

    def assertReadsWork(self, pre):
        s = self.server
        for path in ("/healthz", "/metrics", "/v1/queues", f"/v1/queues/{Q}",
                     f"/v1/queues/{Q}/tasks", f"/v1/tasks/{pre['ids'][0]}"):
            status, body = s.call("GET", path)
            self.assertEqual(status, 200, f"GET {path} during a {self.KIND} fault: {body}")
        status, _, metrics = s.request("GET", "/metrics")
        self.assertIn(b"conveyor_", metrics)

    def assertStateAsBefore(self, pre, allow_new=()):
        """The pre-fault tasks exactly as before (the refused ack/nack/cancel changed
        nothing), the queue config kept, and none of the refused payloads anywhere."""
        s = self.server
        now = {t["id"]: t for t in self.list_tasks(s, Q)}
        for i, t in pre["snapshot"].items():
            self.assertIn(i, now, f"pre-fault task {i} lost")
            self.assertEqual(now[i], t, f"pre-fault task {i} changed")
        self.assertEqual(self.queue_stats(s, Q)["config"]["max_attempts"], 9,
                         "refused PUT changed the config (or the 2xx'd one was lost)")
        everything = list(now.values())
        for q in ("fq-other", "default"):
            everything += self.list_tasks(s, q)
        for t in everything:
            payload = t["payload"]
            if isinstance(payload, dict) and "refused" in payload:
                self.fail(f"a write answered 503 shows up: {t}")
            if t["id"] not in pre["snapshot"]:
                self.assertIn(t["id"], allow_new, f"unexpected task {t}")

    def wait_for_recovery(self):
        """Enqueues until one is accepted; the 503'd ones are recorded as refused."""
        s = self.server
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        n = 0
        while True:
            n += 1
            marker = f"poll{n}"
            status, headers, body = s.request("POST", f"/v1/queues/{Q}/tasks",
                                              {"payload": {"after": marker}})
            if status == 201:
                return body["id"]
            self.assertStorageUnavailable(status, headers, body, "enqueue while recovering")
            self.refused.append(marker)
            if time.monotonic() > deadline:
                self.fail(f"still 503 {RECOVERY_TIMEOUT_S} s after the {self.KIND} flag file was "
                          f"removed: {body}\nserver output:\n{s.output()}\n"
                          f"RocksDB LOG tail:\n{self.rocksdb_log_tail()}")
            time.sleep(0.25)

    def rocksdb_log_tail(self, lines=8):
        try:
            with open(os.path.join(self.dir, "db", "LOG"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return str(e)

    def all_payload_markers(self, s):
        tasks = []
        for q in (Q, "fq-other", "default"):
            tasks += self.list_tasks(s, q)
        markers = set()
        for t in tasks:
            p = t["payload"]
            if isinstance(p, dict):
                markers.update(str(v) for k, v in p.items() if k in ("refused", "after"))
        return tasks, markers

    # ---- the scenarios ----

    def test_writes_refused_reads_served(self):
        pre = self.before_fault()
        self.set_fault(True)
        self.refused_writes(pre)
        self.assertReadsWork(pre)
        self.assertStateAsBefore(pre)
        # A second round: still refused (no write slipped through after the first failure).
        status, headers, body = self.server.request("POST", f"/v1/queues/{Q}/tasks",
                                                    {"payload": {"refused": "e3"}})
        self.assertStorageUnavailable(status, headers, body, "second enqueue")
        self.assertStateAsBefore(pre)
        self.assertTrue(self.server.alive(), "the server died on a storage error")

    def test_recovers_when_flag_removed_then_restart_consistent(self):
        s = self.server
        pre = self.before_fault()
        self.set_fault(True)
        self.refused_writes(pre)
        self.set_fault(False)
        first = self.wait_for_recovery()
        self.assertGreater(first, max(pre["ids"]))
        self.assertStateAsBefore(pre, allow_new=[first])
        # The lease recorded before the fault is still valid; the refused ack did nothing.
        leased = pre["leased"]
        status, r = s.call("POST", f"/v1/tasks/{leased['id']}/ack",
                           {"lease": leased["lease"]["token"], "result": "after-fault"})
        self.assertEqual(status, 200, f"pre-fault lease unusable after recovery: {r}")
        accepted = {first}
        for i in range(5):
            accepted.add(self.enqueue(s, Q, {"after": f"ok{i}"})["id"])
        status, r = s.call("PUT", f"/v1/queues/{Q}", {"max_attempts": 11})
        self.assertEqual(status, 200, r)
        self.assertEqual(s.sigterm(), 0, s.output())

        s = self.server = self.start(self.dir)
        tasks, markers = self.all_payload_markers(s)
        by_id = {t["id"]: t for t in tasks}
        for i in list(pre["ids"]) + sorted(accepted):
            self.assertIn(i, by_id, f"2xx'd task {i} lost across the restart")
        self.assertEqual(by_id[leased["id"]]["result"], "after-fault")
        self.assertEqual(by_id[pre["done"]]["result"], "pre-fault")
        self.assertFalse(markers & set(self.refused),
                         f"503'd writes present after restart: {markers & set(self.refused)}")
        self.assertEqual(len(tasks), len(pre["ids"]) + len(accepted), "extra tasks appeared")
        self.assertEqual(self.queue_stats(s, Q)["config"]["max_attempts"], 11)

    # kill -9 while the disk still fails; restart on a healthy disk.
    def test_restart_during_fault_is_consistent(self):
        pre = self.before_fault()
        self.set_fault(True)
        self.refused_writes(pre)
        self.server.kill9()
        self.set_fault(False)
        s = self.server = self.start(self.dir)
        self.assertStateAsBefore(pre)
        tasks, markers = self.all_payload_markers(s)
        self.assertFalse(markers & set(self.refused), markers)
        self.assertEqual(len(tasks), len(pre["ids"]))
        self.assertGreater(self.enqueue(s, Q, "after-restart")["id"], max(pre["ids"]))

    # 8 clients enqueue while the fault starts: every 201 kept, every 503 absent.
    def test_fault_under_load_then_restart(self):
        s = self.server
        rng = random.Random(SEED)
        stop = threading.Event()
        results = [[] for _ in range(8)]  # (marker, status, id)

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    marker = f"L{k}-{n}"
                    try:
                        conn.request("POST", f"/v1/queues/{Q}/tasks",
                                     body=json.dumps({"payload": {"after": marker}}),
                                     headers={"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        body = json.loads(resp.read() or b"null")
                        results[k].append((marker, resp.status,
                                           body.get("id") if resp.status == 201 else body))
                    except (OSError, http.client.HTTPException, ValueError):
                        results[k].append((marker, None, None))
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 0.8))
        self.set_fault(True)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=15)
            self.assertFalse(t.is_alive(), "client hung")
        s.kill9()
        self.set_fault(False)
        flat = [r for rs in results for r in rs]
        ok = {m: i for m, st, i in flat if st == 201}
        refused = {m for m, st, _ in flat if st == 503}
        other = [(m, st, b) for m, st, b in flat if st not in (201, 503, None)]
        self.assertFalse(other, f"answers other than 201/503: {other[:5]}")
        self.assertTrue(ok, "nothing was accepted before the fault")
        self.assertTrue(refused, "nothing was refused during the fault")

        s = self.server = self.start(self.dir)
        tasks = self.list_tasks(s, Q)
        by_marker = {t["payload"]["after"]: t for t in tasks}
        self.assertEqual(len(by_marker), len(tasks), "a payload stored twice")
        lost = [m for m in ok if m not in by_marker]
        self.assertFalse(lost, f"201'd enqueues lost: {lost[:5]}")
        for m, i in ok.items():
            self.assertEqual(by_marker[m]["id"], i)
        # A request whose write reached the WAL file but whose fsync then failed was
        # refused, yet may be on disk: after a failed fsync nobody can tell (docs/API.md).
        # Only such requests, each client's first refusal (in flight when the disk broke),
        # may show up; everything refused after that was refused before being written.
        in_flight_at_fault = set()
        for rs in results:
            first = next((m for m, st, _ in rs if st == 503), None)
            if first is not None:
                in_flight_at_fault.add(first)
        back = (refused & set(by_marker)) - in_flight_at_fault
        self.assertFalse(back, f"503'd enqueues present after restart: {sorted(back)[:5]}")
        sys.stderr.write(f"{self.KIND} under load: {len(ok)} accepted, {len(refused)} refused, "
                         f"{len(flat) - len(ok) - len(refused)} unanswered\n")

    # TESTPLAN B.7: /healthz keeps answering 200 but says that the storage is failing.
    def test_healthz_reports_degraded(self):
        s = self.server
        status, healthy = s.call("GET", "/healthz")
        self.assertEqual(status, 200, healthy)
        self.set_fault(True)
        status, headers, body = s.request("POST", f"/v1/queues/{Q}/tasks", {"payload": 1})
        self.assertStorageUnavailable(status, headers, body, "enqueue")
        status, degraded = s.call("GET", "/healthz")
        self.assertEqual(status, 200, degraded)
        self.assertNotEqual(degraded, healthy,
                            f"/healthz during a {self.KIND} fault looks healthy: {degraded}")


class EioFaultTest(FaultCase):
    KIND = "eio"


class EnospcFaultTest(FaultCase):
    KIND = "enospc"


del FaultCase  # only the concrete kinds run


class StalledFsyncTest(DurableTestCase):
    """TESTPLAN G.39: while fsyncs stall (2 s each), changes waiting for the next commit
    are bounded: past --max-commit-backlog-bytes the shard answers 503 with Retry-After
    instead of buffering without limit, and it takes changes again once the disk keeps up."""

    def test_backlog_is_bounded_while_fsync_stalls(self):
        data_dir = self.make_dir()
        flag = os.path.join(self.make_dir("conveyor-flag-"), "fail-writes")
        server = self.start(data_dir, env={"CONVEYOR_FAULT_FILE": flag},
                            extra_args=["--max-commit-backlog-bytes", "1048576",
                                        "--threads", "1"])
        self.enqueue(server, Q, {"warm": 1})
        with open(flag, "w") as f:
            f.write("slow\n")
        payload = {"blob": "x" * 300_000}
        results = []

        def one(i):
            status, headers, body = server.request(
                "POST", f"/v1/queues/{Q}/tasks", {"payload": dict(payload, n=i)}, timeout=30)
            results.append((i, status, headers, body))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        os.remove(flag)
        statuses = sorted(r[1] for r in results)
        self.assertEqual(len(results), 12, "a request hung")
        self.assertIn(503, statuses, f"no request was refused: {statuses}")
        self.assertIn(201, statuses, f"nothing got through: {statuses}")
        for i, status, headers, body in results:
            self.assertIn(status, (201, 503), body)
            if status == 503:
                self.assertEqual(body["error"]["code"], "storage_unavailable", body)
                self.assertIn("retry-after", headers)
        # Once the disk keeps up again, changes are taken.
        deadline = time.time() + RECOVERY_TIMEOUT_S
        while True:
            status, _, body = server.request("POST", f"/v1/queues/{Q}/tasks", {"payload": 2})
            if status == 201 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status, 201, body)
        accepted = {r[0] for r in results if r[1] == 201}
        stored = {t["payload"].get("n") for t in self.list_tasks(server, Q)
                  if isinstance(t["payload"], dict) and "blob" in t["payload"]}
        self.assertEqual(stored, accepted)

if __name__ == "__main__":
    unittest.main(verbosity=2)
