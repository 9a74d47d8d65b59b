"""End-to-end tests of the HTTP API table in SPEC.md, against a real `conveyor serve`.

Each test class gets one server (harness.ServerTestCase); every test uses its own queue
names (uuid suffix) so tests never see each other's tasks. Timing checks use real time with
slack of a few hundred milliseconds, so they stay deterministic on a busy machine.

Run: CONVEYOR_BIN=/path/to/conveyor python3 -m unittest -v test_api
  or python3 tests/integration/test_api.py
"""
import json
import os
import re
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase  # noqa: E402

_MISSING = object()

TASK_FIELDS = ("id", "queue", "payload", "priority", "state", "attempts", "max_attempts",
               "created_at", "run_at", "deadline", "result", "progress", "errors",
               "dead_reason")
STATES = ("scheduled", "ready", "leased", "succeeded", "dead", "canceled")
TOTALS = ("enqueued", "acked", "nacked", "expired", "dead")
# An unknown (or purged) task id answers 404 not_found (docs/API.md).
TASK_NOT_FOUND = ("not_found",)
DEFAULT_BACKOFF = {"base_ms": 1000, "factor": 2, "max_ms": 3600000, "jitter": True}


def now_ms():
    return int(time.time() * 1000)


class ApiTestCase(ServerTestCase):
    """Small typed helpers over the HTTP API; each asserts the documented success status."""

    def qname(self, prefix="q"):
        return super().qname(prefix)

    def enqueue_raw(self, queue, spec):
        return self.call("POST", f"/v1/queues/{queue}/tasks", spec)

    def enqueue(self, queue, payload=None, **fields):
        spec = dict(fields)
        spec["payload"] = payload
        status, body = self.enqueue_raw(queue, spec)
        self.assertEqual(status, 201, body)
        self.assertIsInstance(body.get("id"), int, body)
        return body["id"]

    def enqueue_batch(self, queue, specs):
        status, body = self.enqueue_raw(queue, {"tasks": specs})
        self.assertEqual(status, 201, body)
        self.assertIsInstance(body.get("ids"), list, body)
        self.assertEqual(len(body["ids"]), len(specs), body)
        return body["ids"]

    def lease_raw(self, queue, n=1, wait_ms=0, lease_ms=None, worker=None):
        req = {"max": n, "wait_ms": wait_ms}
        if lease_ms is not None:
            req["lease_ms"] = lease_ms
        if worker is not None:
            req["worker"] = worker
        return self.call("POST", f"/v1/queues/{queue}/lease", req,
                         timeout=wait_ms / 1000.0 + 10)

    def lease(self, queue, n=1, wait_ms=0, lease_ms=None, worker=None):
        status, body = self.lease_raw(queue, n, wait_ms, lease_ms, worker)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body, dict, body)
        self.assertIsInstance(body.get("tasks"), list, body)
        for task in body["tasks"]:
            self.assertIsInstance(task.get("lease"), dict, task)
            self.assertIsInstance(task["lease"].get("token"), str, task)
            self.assertTrue(task["lease"]["token"], task)
            self.assertIsInstance(task["lease"].get("expires_at"), int, task)
            self.assertEqual(task.get("state"), "leased", task)
        return body["tasks"]

    def lease_one(self, queue, **kw):
        tasks = self.lease(queue, **kw)
        self.assertEqual(len(tasks), 1, tasks)
        return tasks[0]

    def get_task_raw(self, task_id, wait_ms=None):
        path = f"/v1/tasks/{task_id}"
        timeout = 10
        if wait_ms is not None:
            path += f"?wait_ms={wait_ms}"
            timeout += wait_ms / 1000.0
        return self.call("GET", path, timeout=timeout)

    def get_task(self, task_id, wait_ms=None):
        status, body = self.get_task_raw(task_id, wait_ms)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("id"), task_id, body)
        return body

    def ack(self, task_id, token, result=_MISSING):
        body = {"lease": token}
        if result is not _MISSING:
            body["result"] = result
        return self.call("POST", f"/v1/tasks/{task_id}/ack", body)

    def nack(self, task_id, token, error=None, **fields):
        body = {"lease": token}
        if error is not None:
            body["error"] = error
        body.update(fields)
        return self.call("POST", f"/v1/tasks/{task_id}/nack", body)

    def extend(self, task_id, token, lease_ms, progress=_MISSING):
        body = {"lease": token, "lease_ms": lease_ms}
        if progress is not _MISSING:
            body["progress"] = progress
        return self.call("POST", f"/v1/tasks/{task_id}/extend", body)

    def put_config(self, queue, cfg):
        return self.call("PUT", f"/v1/queues/{queue}", cfg)

    def configure(self, queue, cfg):
        status, body = self.put_config(queue, cfg)
        self.assertEqual(status, 200, body)
        return body

    def stats(self, queue):
        status, body = self.call("GET", f"/v1/queues/{queue}")
        self.assertEqual(status, 200, body)
        return body

    def list_tasks(self, queue, query=""):
        status, body = self.call("GET", f"/v1/queues/{queue}/tasks{query}")
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body.get("tasks"), list, body)
        self.assertIn("next_after", body)
        return body

    def assertAckOk(self, task_id, token, result=_MISSING):
        status, body = self.ack(task_id, token, result)
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("id"), task_id, body)
        self.assertEqual(body.get("state"), "succeeded", body)

    def assertFieldError(self, status, body, field):
        self.assertError(status, body, 400, "invalid_field")
        self.assertIn(field, body["error"]["message"], body)

    def assertTaskNotFound(self, status, body):
        self.assertError(status, body, 404)
        self.assertIn(body["error"]["code"], TASK_NOT_FOUND, body)

    def assertTimeNear(self, value, low_ms, high_ms, what=""):
        self.assertIsInstance(value, int, what)
        self.assertGreaterEqual(value, low_ms, what)
        self.assertLessEqual(value, high_ms, what)


class AddTaskTest(ApiTestCase):
    def test_add_task_classic_endpoint(self):
        status, body = self.call("POST", "/add_task", {"task": {"order": 17, "sku": "A-1"}})
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("message"), "task added to queue", body)
        self.assertIsInstance(body.get("id"), int, body)
        task = self.get_task(body["id"])
        self.assertEqual(task["queue"], "default")
        self.assertEqual(task["payload"], {"order": 17, "sku": "A-1"})
        self.assertEqual(task["state"], "ready")

    def test_add_task_requires_task(self):
        status, body = self.call("POST", "/add_task", {"payload": 1})
        self.assertFieldError(status, body, "task")

    def test_add_task_form_content_type_like_curl_d(self):
        raw = json.dumps({"task": "hello"}).encode()
        status, _, body = self.server.request(
            "POST", "/add_task", raw,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.get_task(body["id"])["payload"], "hello")

    def test_add_task_without_content_type(self):
        status, body = self.call("POST", "/add_task", json.dumps({"task": [1, 2]}).encode())
        self.assertEqual(status, 200, body)
        self.assertEqual(self.get_task(body["id"])["payload"], [1, 2])

    def test_add_task_lands_in_default_queue_leasable(self):
        # The classic endpoint feeds the ordinary queue "default"; drain whatever other
        # tests of this class left there and find ours among the leased tasks.
        status, body = self.call("POST", "/add_task", {"task": {"marker": "lease-me"}})
        self.assertEqual(status, 200, body)
        tid = body["id"]
        found = None
        for task in self.lease("default", n=100, lease_ms=60000):
            if task["id"] == tid:
                found = task
        self.assertIsNotNone(found)
        self.assertEqual(found["payload"], {"marker": "lease-me"})
        self.assertAckOk(tid, found["lease"]["token"])


class EnqueueTest(ApiTestCase):
    def test_single_enqueue_and_task_shape(self):
        q = self.qname()
        t0 = now_ms()
        status, body = self.enqueue_raw(q, {"payload": {"a": 1}})
        t1 = now_ms()
        self.assertEqual(status, 201, body)
        self.assertIsInstance(body.get("id"), int)
        self.assertEqual(body.get("state"), "ready")
        task = self.get_task(body["id"])
        for field in TASK_FIELDS:
            self.assertIn(field, task)
        self.assertEqual(task["queue"], q)
        self.assertEqual(task["payload"], {"a": 1})
        self.assertEqual(task["priority"], 0)
        self.assertEqual(task["state"], "ready")
        self.assertEqual(task["attempts"], 0)
        self.assertEqual(task["max_attempts"], 25)
        self.assertTimeNear(task["created_at"], t0 - 5, t1 + 5, "created_at")
        self.assertTimeNear(task["run_at"], t0 - 5, t1 + 5, "run_at = enqueue time")
        self.assertIsNone(task["deadline"])
        self.assertIsNone(task["result"])
        self.assertIsNone(task["progress"])
        self.assertEqual(task["errors"], [])
        self.assertIsNone(task["dead_reason"])
        self.assertIsNone(task.get("lease"))

    def test_spec_fields_are_stored(self):
        q = self.qname()
        deadline = now_ms() + 3600000
        tid = self.enqueue(q, "p", priority=-7, max_attempts=3, deadline=deadline,
                           lease_ms=4000)
        task = self.get_task(tid)
        self.assertEqual(task["priority"], -7)
        self.assertEqual(task["max_attempts"], 3)
        self.assertEqual(task["deadline"], deadline)

    def test_delayed_enqueue_is_scheduled(self):
        q = self.qname()
        status, body = self.enqueue_raw(q, {"payload": 1, "delay_ms": 60000})
        self.assertEqual(status, 201, body)
        self.assertEqual(body.get("state"), "scheduled")
        self.assertEqual(self.get_task(body["id"])["state"], "scheduled")

    def test_batch_enqueue(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(5)])
        self.assertEqual(ids, sorted(set(ids)), "ids strictly increasing in batch order")
        for i, tid in enumerate(ids):
            task = self.get_task(tid)
            self.assertEqual(task["payload"], i)
            self.assertEqual(task["queue"], q)
        self.assertEqual(self.stats(q)["counts"]["ready"], 5)

    def test_batch_all_or_nothing(self):
        q = self.qname()
        status, body = self.enqueue_raw(q, {"tasks": [
            {"payload": 1}, {"payload": 2, "priority": "high"}, {"payload": 3}]})
        self.assertFieldError(status, body, "priority")
        status, body = self.enqueue_raw(q, {"tasks": [{"payload": 1}, {"priority": 1}]})
        self.assertFieldError(status, body, "payload")
        self.assertEqual(self.lease(q, n=10), [])
        self.assertEqual(self.list_tasks(q)["tasks"], [])

    def test_empty_batch_rejected(self):
        q = self.qname()
        status, body = self.enqueue_raw(q, {"tasks": []})
        self.assertError(status, body, 400)
        self.assertEqual(self.list_tasks(q)["tasks"], [])

    def test_ids_strictly_increasing_across_queues(self):
        queues = [self.qname() for _ in range(3)]
        ids = []
        for i in range(12):
            ids.append(self.enqueue(queues[i % 3], i))
        ids += self.enqueue_batch(queues[0], [{"payload": 0}, {"payload": 1}])
        ids.append(self.enqueue(queues[2], "last"))
        for a, b in zip(ids, ids[1:]):
            self.assertLess(a, b, ids)

    def test_missing_payload_rejected(self):
        status, body = self.enqueue_raw(self.qname(), {"priority": 1})
        self.assertFieldError(status, body, "payload")

    def test_bad_field_types_and_ranges(self):
        q = self.qname()
        cases = [
            ({"payload": 1, "priority": "high"}, "priority"),
            ({"payload": 1, "priority": 2 ** 31}, "priority"),
            ({"payload": 1, "priority": -(2 ** 31) - 1}, "priority"),
            ({"payload": 1, "delay_ms": {"ms": 5}}, "delay_ms"),
            ({"payload": 1, "run_at": "tomorrow"}, "run_at"),
            ({"payload": 1, "deadline": [1]}, "deadline"),
            ({"payload": 1, "max_attempts": "many"}, "max_attempts"),
            ({"payload": 1, "idempotency_key": 5}, "idempotency_key"),
            ({"payload": 1, "lease_ms": "long"}, "lease_ms"),
        ]
        for spec, field in cases:
            with self.subTest(field=field, spec=spec):
                status, body = self.enqueue_raw(q, spec)
                self.assertFieldError(status, body, field)
        self.assertEqual(self.list_tasks(q)["tasks"], [])

    def test_priority_int32_bounds_accepted(self):
        q = self.qname()
        hi = self.enqueue(q, 1, priority=2 ** 31 - 1)
        lo = self.enqueue(q, 2, priority=-(2 ** 31))
        self.assertEqual(self.get_task(hi)["priority"], 2 ** 31 - 1)
        self.assertEqual(self.get_task(lo)["priority"], -(2 ** 31))

    def test_invalid_json(self):
        for raw in (b"{", b'{"payload": 1} x', b"[1,]", b""):
            with self.subTest(raw=raw):
                status, body = self.call("POST", f"/v1/queues/{self.qname()}/tasks", raw)
                self.assertError(status, body, 400)
                if raw:
                    self.assertEqual(body["error"]["code"], "invalid_json", body)

    def test_queue_names(self):
        self.enqueue("a" * 128, 1)
        self.enqueue("Az09._-x", 1)
        for bad in ("a" * 129, "...", "bad%24name", "bad%20name"):
            with self.subTest(queue=bad):
                status, body = self.enqueue_raw(bad, {"payload": 1})
                self.assertError(status, body, 400, "invalid_queue_name")

    def test_unsupported_media_type(self):
        status, _, body = self.server.request(
            "POST", f"/v1/queues/{self.qname()}/tasks", b'{"payload":1}',
            headers={"Content-Type": "text/plain"})
        self.assertError(status, body, 415, "unsupported_media_type")


class PayloadTest(ApiTestCase):
    def roundtrip(self, payload, raw_utf8=False):
        q = self.qname()
        if raw_utf8:
            raw = json.dumps({"payload": payload}, ensure_ascii=False).encode("utf-8")
            status, body = self.call("POST", f"/v1/queues/{q}/tasks", raw)
            self.assertEqual(status, 201, body)
            tid = body["id"]
        else:
            tid = self.enqueue(q, payload)
        self.assertSamePayload(self.get_task(tid)["payload"], payload)
        leased = self.lease_one(q)
        self.assertEqual(leased["id"], tid)
        self.assertSamePayload(leased["payload"], payload)

    def assertSamePayload(self, got, want):
        self.assertEqual(got, want)
        # Also compare canonical text, so 1 vs true or 42 vs 42.0 count as different.
        self.assertEqual(json.dumps(got, sort_keys=True), json.dumps(want, sort_keys=True))

    def test_structured_payload(self):
        payload = {"x": 1.5, "s": "é\u00e9", "n": None, "a": [1, 2, {"b": True}]}
        self.roundtrip(payload)
        self.roundtrip(payload, raw_utf8=True)

    def test_unicode_and_escapes(self):
        payload = {"emoji": "\U0001F600", "ctl": "tab\tnl\n\"q\"\\", "zh": "中文", "nul": "a\u0000b"}
        self.roundtrip(payload)
        self.roundtrip(payload, raw_utf8=True)

    def test_scalar_payloads(self):
        for payload in (None, "just a string", 42, -7, 0.1, 3.25, True, False, [], {}, ""):
            with self.subTest(payload=payload):
                self.roundtrip(payload)

    def test_result_and_progress_roundtrip(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        progress = {"done": 0.5, "note": "é", "steps": [1, None]}
        status, body = self.extend(tid, token, 10000, progress)
        self.assertEqual(status, 200, body)
        result = {"ok": True, "rows": [1.5, "x", None], "msg": "fertig ✓"}
        self.assertAckOk(tid, token, result)
        task = self.get_task(tid)
        self.assertEqual(task["result"], result)
        self.assertEqual(task["progress"], progress)


class LeaseTest(ApiTestCase):
    def test_lease_unused_queue(self):
        status, body = self.lease_raw(self.qname())
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("tasks"), [], body)

    def test_lease_order_priority_then_fifo(self):
        q = self.qname()
        a = self.enqueue(q, "a", priority=0)
        b = self.enqueue(q, "b", priority=5)
        c = self.enqueue(q, "c", priority=0)
        d = self.enqueue(q, "d", priority=5)
        e = self.enqueue(q, "e", priority=-1)
        f = self.enqueue(q, "f")  # default priority 0
        got = [t["id"] for t in self.lease(q, n=10)]
        self.assertEqual(got, [b, d, a, c, f, e])

    def test_lease_max(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(5)])
        first = self.lease(q, n=2)
        self.assertEqual([t["id"] for t in first], ids[:2])
        rest = self.lease(q, n=10)
        self.assertEqual([t["id"] for t in rest], ids[2:])
        self.assertEqual(self.lease(q, n=10), [])
        self.assertEqual(self.lease(q), [])

    def test_lease_answer_shape(self):
        q = self.qname()
        tid = self.enqueue(q, {"k": "v"}, priority=3)
        t0 = now_ms()
        task = self.lease_one(q, lease_ms=5000, worker="w1")
        t1 = now_ms()
        self.assertEqual(task["id"], tid)
        self.assertEqual(task["queue"], q)
        self.assertEqual(task["payload"], {"k": "v"})
        self.assertEqual(task["priority"], 3)
        self.assertEqual(task["attempts"], 1)
        self.assertTimeNear(task["lease"]["expires_at"], t0 + 5000 - 5, t1 + 5000 + 5)

    def test_get_hides_token_but_shows_lease(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        leased = self.lease_one(q, lease_ms=20000, worker="w1")
        token = leased["lease"]["token"]
        status, _, raw = self.server.request("GET", f"/v1/tasks/{tid}")
        self.assertEqual(status, 200)
        self.assertNotIn(token, json.dumps(raw))
        self.assertEqual(raw["state"], "leased")
        self.assertIsInstance(raw.get("lease"), dict, raw)
        self.assertNotIn("token", raw["lease"])
        self.assertEqual(raw["lease"].get("expires_at"), leased["lease"]["expires_at"])
        self.assertEqual(raw["lease"].get("worker"), "w1")
        # Nor in the queue listing.
        listing = self.list_tasks(q)
        self.assertNotIn(token, json.dumps(listing))
        self.assertAckOk(tid, token)
        self.assertIsNone(self.get_task(tid).get("lease"))

    def test_lease_time_precedence(self):
        q = self.qname()
        # Queue default is 30000.
        self.enqueue(q, "queue-default")
        t0 = now_ms()
        task = self.lease_one(q)
        self.assertTimeNear(task["lease"]["expires_at"], t0 + 30000 - 5, now_ms() + 30000 + 5,
                            "queue default lease_ms")
        # Task's lease_ms beats the queue's.
        self.enqueue(q, "task-lease", lease_ms=7000)
        t0 = now_ms()
        task = self.lease_one(q)
        self.assertTimeNear(task["lease"]["expires_at"], t0 + 7000 - 5, now_ms() + 7000 + 5,
                            "task lease_ms")
        # The request's lease_ms beats the task's.
        self.enqueue(q, "req-lease", lease_ms=7000)
        t0 = now_ms()
        task = self.lease_one(q, lease_ms=3000)
        self.assertTimeNear(task["lease"]["expires_at"], t0 + 3000 - 5, now_ms() + 3000 + 5,
                            "request lease_ms")
        # A configured queue lease_ms is used when neither gives one.
        self.configure(q, {"lease_ms": 12000})
        self.enqueue(q, "queue-config")
        t0 = now_ms()
        task = self.lease_one(q)
        self.assertTimeNear(task["lease"]["expires_at"], t0 + 12000 - 5, now_ms() + 12000 + 5,
                            "configured queue lease_ms")

    def test_lease_bad_input(self):
        q = self.qname()
        status, body = self.call("POST", f"/v1/queues/{q}/lease", {"max": "x", "wait_ms": 0})
        self.assertFieldError(status, body, "max")
        status, body = self.call("POST", f"/v1/queues/{q}/lease", {"max": 1, "wait_ms": 60001})
        self.assertError(status, body, 400)
        self.assertIn("wait_ms", body["error"]["message"])
        status, body = self.call("POST", f"/v1/queues/{q}/lease", b"{nope")
        self.assertError(status, body, 400, "invalid_json")
        status, body = self.call("POST", "/v1/queues/.../lease", {"max": 1, "wait_ms": 0})
        self.assertError(status, body, 400, "invalid_queue_name")

    def test_wait_ms_max_accepted_when_task_present(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        start = time.monotonic()
        task = self.lease_one(q, wait_ms=60000)
        self.assertEqual(task["id"], tid)
        self.assertLess(time.monotonic() - start, 2.0)


class AckNackExtendTest(ApiTestCase):
    def test_ack(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        self.assertAckOk(tid, token, {"answer": 42})
        task = self.get_task(tid)
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(task["result"], {"answer": 42})
        self.assertEqual(task["attempts"], 1)
        # Repeating the ack with the same token is harmless and changes nothing.
        self.assertAckOk(tid, token, {"answer": "other"})
        task = self.get_task(tid)
        self.assertEqual(task["state"], "succeeded")
        self.assertEqual(task["result"], {"answer": 42})
        self.assertEqual(self.lease(q), [])

    def test_ack_without_result(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        self.assertAckOk(tid, self.lease_one(q)["lease"]["token"])
        self.assertIsNone(self.get_task(tid)["result"])

    def test_ack_wrong_token(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.ack(tid, token + "x")
        self.assertError(status, body, 409, "lease_mismatch")
        status, body = self.ack(tid, "")
        self.assertError(status, body, 409, "lease_mismatch")
        self.assertEqual(self.get_task(tid)["state"], "leased")
        self.assertAckOk(tid, token)

    def test_ack_unleased_task_refused(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        status, body = self.ack(tid, "no-such-token")
        self.assertError(status, body, 409)
        self.assertEqual(self.get_task(tid)["state"], "ready")

    def test_ack_unknown_task(self):
        status, body = self.ack(10 ** 15, "tok")
        self.assertTaskNotFound(status, body)

    def test_ack_missing_lease_field(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        self.lease_one(q)
        status, body = self.call("POST", f"/v1/tasks/{tid}/ack", {"result": 1})
        self.assertFieldError(status, body, "lease")

    def test_nack_schedules_with_backoff(self):
        q = self.qname()
        self.configure(q, {"backoff": {"base_ms": 300, "factor": 2, "max_ms": 3600000,
                                       "jitter": False}})
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        t0 = now_ms()
        status, body = self.nack(tid, token, "boom")
        t1 = now_ms()
        self.assertEqual(status, 200, body)
        self.assertEqual((body.get("id"), body.get("state")), (tid, "scheduled"), body)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "scheduled")
        self.assertEqual(task["attempts"], 1)
        self.assertEqual(len(task["errors"]), 1, task)
        err = task["errors"][0]
        self.assertEqual(err.get("message"), "boom")
        self.assertEqual(err.get("attempt"), 1)
        self.assertTimeNear(err.get("at"), t0 - 5, t1 + 5, "errors[0].at")
        delay1 = task["run_at"] - t0
        # First retry waits base_ms (some policies use base*factor); never less than base.
        self.assertGreaterEqual(delay1, 300 - 5, task)
        self.assertLessEqual(delay1, 600 + (t1 - t0) + 50, task)
        self.assertEqual(self.lease(q), [], "not leasable during backoff")
        # Second failure: backoff grows by factor.
        time.sleep(max(0, task["run_at"] - now_ms()) / 1000.0)
        leased = self.lease_one(q, wait_ms=2000)
        self.assertEqual(leased["attempts"], 2)
        t0 = now_ms()
        status, body = self.nack(tid, leased["lease"]["token"], "again")
        t1 = now_ms()
        self.assertEqual(status, 200, body)
        task = self.get_task(tid)
        delay2 = task["run_at"] - t0
        self.assertGreaterEqual(delay2, 2 * delay1 - 50, (delay1, delay2))
        self.assertLessEqual(delay2, 2 * delay1 + (t1 - t0) + 50, (delay1, delay2))
        self.assertEqual([e["message"] for e in task["errors"]], ["boom", "again"])
        self.assertEqual([e["attempt"] for e in task["errors"]], [1, 2])

    def test_nack_backoff_capped_by_max_ms(self):
        q = self.qname()
        self.configure(q, {"backoff": {"base_ms": 200, "factor": 10, "max_ms": 400,
                                       "jitter": False}})
        tid = self.enqueue(q, 1)
        for attempt in (1, 2):
            leased = self.lease_one(q, wait_ms=3000)
            t0 = now_ms()
            status, body = self.nack(tid, leased["lease"]["token"], f"e{attempt}")
            t1 = now_ms()
            self.assertEqual(status, 200, body)
            delay = self.get_task(tid)["run_at"] - t0
            self.assertGreaterEqual(delay, 200 - 5)
            self.assertLessEqual(delay, 400 + (t1 - t0) + 50, f"attempt {attempt}")

    def test_nack_default_backoff(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        t0 = now_ms()
        status, body = self.nack(tid, token, "x")
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("state"), "scheduled")
        task = self.get_task(tid)
        self.assertEqual(task["state"], "scheduled")
        # base 1000 ms with jitter: somewhere in (t0, t0 + 2 s].
        self.assertTimeNear(task["run_at"], t0, now_ms() + 2000, "default backoff run_at")

    def test_nack_retry_in_ms(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        t0 = now_ms()
        status, body = self.nack(tid, token, "later", retry_in_ms=400)
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("state"), "scheduled")
        self.assertTimeNear(self.get_task(tid)["run_at"], t0 + 400 - 5, now_ms() + 400 + 5)
        self.assertEqual(self.lease(q), [])
        time.sleep(0.2)
        self.assertEqual(self.lease(q), [])
        leased = self.lease_one(q, wait_ms=2000)
        self.assertGreaterEqual(now_ms(), t0 + 400 - 5)
        self.assertEqual(leased["id"], tid)
        self.assertEqual(leased["attempts"], 2)

    def test_nack_dead(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.nack(tid, token, "fatal", dead=True)
        self.assertEqual(status, 200, body)
        self.assertEqual((body.get("id"), body.get("state")), (tid, "dead"), body)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "nack")
        self.assertEqual([e["message"] for e in task["errors"]], ["fatal"])
        self.assertEqual(self.lease(q), [])

    def test_nack_at_max_attempts_is_dead(self):
        q = self.qname()
        tid = self.enqueue(q, 1, max_attempts=2)
        self.assertEqual(self.nack(tid, self.lease_one(q)["lease"]["token"], "e1",
                                   retry_in_ms=50)[0], 200)
        leased = self.lease_one(q, wait_ms=2000)
        status, body = self.nack(tid, leased["lease"]["token"], "e2", retry_in_ms=50)
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("state"), "dead")
        task = self.get_task(tid)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "max_attempts")
        self.assertEqual(task["attempts"], 2)
        self.assertEqual([(e["attempt"], e["message"]) for e in task["errors"]],
                         [(1, "e1"), (2, "e2")])

    def test_nack_wrong_token(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.nack(tid, "bogus", "x")
        self.assertError(status, body, 409, "lease_mismatch")
        task = self.get_task(tid)
        self.assertEqual(task["state"], "leased")
        self.assertEqual(task["errors"], [])
        self.assertAckOk(tid, token)

    def test_extend(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        leased = self.lease_one(q, lease_ms=1000)
        token = leased["lease"]["token"]
        t0 = now_ms()
        status, body = self.extend(tid, token, 10000, {"pct": 50})
        t1 = now_ms()
        self.assertEqual(status, 200, body)
        self.assertTimeNear(body.get("expires_at"), t0 + 10000 - 5, t1 + 10000 + 5)
        task = self.get_task(tid)
        self.assertEqual(task["lease"]["expires_at"], body["expires_at"])
        self.assertEqual(task["progress"], {"pct": 50})
        self.assertEqual(task["state"], "leased")
        self.assertAckOk(tid, token)

    def test_extend_keeps_lease_alive(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q, lease_ms=300)["lease"]["token"]
        status, body = self.extend(tid, token, 3000)
        self.assertEqual(status, 200, body)
        time.sleep(0.7)
        self.assertEqual(self.lease(q), [], "extended lease must not have expired")
        self.assertEqual(self.get_task(tid)["state"], "leased")
        self.assertAckOk(tid, token)
        self.assertEqual(self.get_task(tid)["attempts"], 1)

    def test_extend_stale_token(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        old = self.lease_one(q, lease_ms=200)["lease"]["token"]
        time.sleep(0.4)
        new = self.lease_one(q, wait_ms=2000)
        self.assertEqual(new["id"], tid)
        self.assertNotEqual(new["lease"]["token"], old)
        status, body = self.extend(tid, old, 5000, {"p": 1})
        self.assertError(status, body, 409, "lease_mismatch")
        self.assertIsNone(self.get_task(tid)["progress"])
        self.assertEqual(self.extend(tid, new["lease"]["token"], 5000)[0], 200)

    def test_batch_ack(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(3)])
        leased = self.lease(q, n=3)
        self.assertEqual([t["id"] for t in leased], ids)
        tokens = [t["lease"]["token"] for t in leased]
        missing = 10 ** 15
        status, body = self.call("POST", "/v1/ack", {"acks": [
            {"id": ids[0], "lease": tokens[0], "result": "r0"},
            {"id": ids[1], "lease": "wrong"},
            {"id": ids[2], "lease": tokens[2], "result": {"r": 2}},
            {"id": missing, "lease": "x"},
        ]})
        self.assertEqual(status, 200, body)
        results = body["results"]
        self.assertEqual([r.get("id") for r in results], [ids[0], ids[1], ids[2], missing])
        for r in (results[0], results[2]):
            self.assertIs(r.get("ok"), True, r)
            self.assertNotIn("error", r)
        for r, codes in ((results[1], ("lease_mismatch",)), (results[3], TASK_NOT_FOUND)):
            self.assertIsNot(r.get("ok"), True, r)
            self.assertIsInstance(r.get("error"), dict, r)
            self.assertIn(r["error"].get("code"), codes, r)
            self.assertIsInstance(r["error"].get("message"), str, r)
        self.assertEqual(self.get_task(ids[0])["result"], "r0")
        self.assertEqual(self.get_task(ids[0])["state"], "succeeded")
        self.assertEqual(self.get_task(ids[1])["state"], "leased")
        self.assertEqual(self.get_task(ids[2])["result"], {"r": 2})

    def test_batch_ack_same_task_twice_in_order(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.call("POST", "/v1/ack", {"acks": [
            {"id": tid, "lease": "stale"}, {"id": tid, "lease": token, "result": 1},
            {"id": tid, "lease": token, "result": 2}]})
        self.assertEqual(status, 200, body)
        r = body["results"]
        self.assertEqual(r[0]["error"]["code"], "lease_mismatch", r)
        self.assertEqual([(x.get("id"), x.get("ok")) for x in r[1:]], [(tid, True)] * 2, r)
        self.assertEqual(self.get_task(tid)["result"], 1)

    def test_batch_ack_bad_body(self):
        status, body = self.call("POST", "/v1/ack", {"acks": "nope"})
        self.assertError(status, body, 400)
        status, body = self.call("POST", "/v1/ack", b"[")
        self.assertError(status, body, 400, "invalid_json")


class TaskEndpointsTest(ApiTestCase):
    def test_get_unknown(self):
        status, body = self.get_task_raw(10 ** 15)
        self.assertTaskNotFound(status, body)

    def test_get_non_numeric_id(self):
        status, body = self.call("GET", "/v1/tasks/abc")
        self.assertIn(status, (400, 404), body)
        self.assertError(status, body, status)

    def test_get_wait_returns_on_final_state(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        out = {}

        def waiter():
            start = time.monotonic()
            try:
                out["resp"] = self.get_task_raw(tid, wait_ms=5000)
            except Exception as e:  # reported below
                out["exc"] = e
            out["done"] = time.monotonic()
            out["elapsed"] = out["done"] - start

        th = threading.Thread(target=waiter)
        th.start()
        time.sleep(0.3)
        self.assertTrue(th.is_alive(), "GET ?wait_ms returned before the task was final")
        acker = threading.Thread(target=lambda: out.update(ack=self.ack(tid, token, "done")))
        ack_at = time.monotonic()
        acker.start()
        acker.join(10)
        th.join(10)
        self.assertNotIn("exc", out)
        self.assertEqual(out["ack"][0], 200, out["ack"])
        status, body = out["resp"]
        self.assertEqual(status, 200, body)
        self.assertEqual(body["state"], "succeeded")
        self.assertEqual(body["result"], "done")
        self.assertLess(out["done"] - ack_at, 1.0, "wait should end right after the ack")
        self.assertLess(out["elapsed"], 2.5)

    def test_get_wait_times_out_with_current_state(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        start = time.monotonic()
        task = self.get_task(tid, wait_ms=400)
        elapsed = time.monotonic() - start
        self.assertEqual(task["state"], "ready")
        self.assertGreaterEqual(elapsed, 0.35)
        self.assertLess(elapsed, 2.0)

    def test_get_wait_on_final_task_returns_at_once(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        self.assertAckOk(tid, self.lease_one(q)["lease"]["token"])
        start = time.monotonic()
        self.assertEqual(self.get_task(tid, wait_ms=5000)["state"], "succeeded")
        self.assertLess(time.monotonic() - start, 1.0)

    def test_cancel_ready_and_scheduled(self):
        q = self.qname()
        ready = self.enqueue(q, 1)
        sched = self.enqueue(q, 2, delay_ms=60000)
        for tid in (ready, sched):
            status, body = self.call("DELETE", f"/v1/tasks/{tid}")
            self.assertEqual(status, 200, body)
            self.assertEqual(body.get("state"), "canceled", body)
            self.assertEqual(self.get_task(tid)["state"], "canceled")
        self.assertEqual(self.lease(q, n=10), [])
        status, body = self.call("DELETE", f"/v1/tasks/{ready}")
        self.assertError(status, body, 409, "invalid_state")

    def test_cancel_leased_or_finished_conflicts(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.call("DELETE", f"/v1/tasks/{tid}")
        self.assertError(status, body, 409, "invalid_state")
        self.assertEqual(self.get_task(tid)["state"], "leased")
        self.assertAckOk(tid, token)
        status, body = self.call("DELETE", f"/v1/tasks/{tid}")
        self.assertError(status, body, 409, "invalid_state")
        self.assertEqual(self.get_task(tid)["state"], "succeeded")
        dead = self.enqueue(q, 2)
        self.nack(dead, self.lease_one(q)["lease"]["token"], "x", dead=True)
        status, body = self.call("DELETE", f"/v1/tasks/{dead}")
        self.assertError(status, body, 409, "invalid_state")

    def test_cancel_unknown(self):
        status, body = self.call("DELETE", f"/v1/tasks/{10 ** 15}")
        self.assertTaskNotFound(status, body)

    def test_retry_dead(self):
        q = self.qname()
        tid = self.enqueue(q, {"p": 1})
        token = self.lease_one(q)["lease"]["token"]
        self.assertEqual(self.nack(tid, token, "bad", dead=True)[0], 200)
        status, body = self.call("POST", f"/v1/tasks/{tid}/retry")
        self.assertEqual(status, 200, body)
        if isinstance(body, dict) and "state" in body:
            self.assertEqual(body["state"], "ready", body)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "ready")
        self.assertEqual(task["attempts"], 0)
        leased = self.lease_one(q)
        self.assertEqual(leased["id"], tid)
        self.assertEqual(leased["attempts"], 1)
        self.assertEqual(leased["payload"], {"p": 1})
        self.assertAckOk(tid, leased["lease"]["token"])

    def test_retry_non_dead_conflicts(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        status, body = self.call("POST", f"/v1/tasks/{tid}/retry")
        self.assertError(status, body, 409, "invalid_state")
        token = self.lease_one(q)["lease"]["token"]
        status, body = self.call("POST", f"/v1/tasks/{tid}/retry")
        self.assertError(status, body, 409, "invalid_state")
        self.assertAckOk(tid, token)
        status, body = self.call("POST", f"/v1/tasks/{tid}/retry")
        self.assertError(status, body, 409, "invalid_state")
        sched = self.enqueue(q, 2, delay_ms=60000)
        status, body = self.call("POST", f"/v1/tasks/{sched}/retry")
        self.assertError(status, body, 409, "invalid_state")
        status, body = self.call("POST", f"/v1/tasks/{10 ** 15}/retry")
        self.assertTaskNotFound(status, body)


class QueueTest(ApiTestCase):
    def assertStatsShape(self, stats, name):
        self.assertEqual(stats.get("name"), name, stats)
        self.assertEqual(set(STATES) - set(stats.get("counts", {})), set(), stats)
        self.assertEqual(set(TOTALS) - set(stats.get("totals", {})), set(), stats)
        for v in list(stats["counts"].values()) + list(stats["totals"].values()):
            self.assertIsInstance(v, int, stats)
        self.assertIsInstance(stats.get("config"), dict, stats)

    def assertDefaultConfig(self, cfg, **overrides):
        expected = {"lease_ms": 30000, "max_attempts": 25, "backoff": DEFAULT_BACKOFF,
                    "retention_ms": 86400000, "paused": False}
        expected.update(overrides)
        for key, value in expected.items():
            self.assertEqual(cfg.get(key), value, f"config[{key!r}] in {cfg}")

    def test_defaults(self):
        q = self.qname()
        self.enqueue(q, 1)
        stats = self.stats(q)
        self.assertStatsShape(stats, q)
        self.assertDefaultConfig(stats["config"])

    def test_put_partial_config_merges(self):
        q = self.qname()
        self.enqueue(q, 1)
        cfg = self.configure(q, {"lease_ms": 5000})
        self.assertDefaultConfig(cfg, lease_ms=5000)
        cfg = self.configure(q, {"max_attempts": 3})
        self.assertDefaultConfig(cfg, lease_ms=5000, max_attempts=3)
        backoff = {"base_ms": 10, "factor": 3, "max_ms": 100, "jitter": False}
        cfg = self.configure(q, {"backoff": backoff, "retention_ms": 1000000})
        self.assertDefaultConfig(cfg, lease_ms=5000, max_attempts=3, backoff=backoff,
                                 retention_ms=1000000)
        self.assertDefaultConfig(self.stats(q)["config"], lease_ms=5000, max_attempts=3,
                                 backoff=backoff, retention_ms=1000000)

    def test_put_creates_queue_and_config_applies_to_tasks(self):
        q = self.qname()
        cfg = self.configure(q, {"max_attempts": 4})
        self.assertDefaultConfig(cfg, max_attempts=4)
        tid = self.enqueue(q, 1)
        self.assertEqual(self.get_task(tid)["max_attempts"], 4)
        self.assertIn(q, [s.get("name") for s in self.call("GET", "/v1/queues")[1]["queues"]])

    def test_put_bad_config(self):
        q = self.qname()
        status, body = self.put_config(q, {"lease_ms": "long"})
        self.assertFieldError(status, body, "lease_ms")
        status, body = self.put_config(q, {"paused": "yes"})
        self.assertFieldError(status, body, "paused")
        status, body = self.put_config(q, {"max_attempts": -1})
        self.assertFieldError(status, body, "max_attempts")
        status, body = self.call("PUT", f"/v1/queues/{q}", b"{bad")
        self.assertError(status, body, 400, "invalid_json")
        status, body = self.put_config("...", {"lease_ms": 1000})
        self.assertError(status, body, 400, "invalid_queue_name")

    def test_paused_queue(self):
        q = self.qname()
        cfg = self.configure(q, {"paused": True})
        self.assertTrue(cfg["paused"])
        tid = self.enqueue(q, 1)
        self.assertEqual(self.lease(q, n=10), [])
        start = time.monotonic()
        self.assertEqual(self.lease(q, wait_ms=300), [])
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        stats = self.stats(q)
        self.assertTrue(stats["config"]["paused"])
        self.assertEqual(stats["counts"]["ready"], 1)
        cfg = self.configure(q, {"paused": False})
        self.assertFalse(cfg["paused"])
        self.assertEqual(self.lease_one(q)["id"], tid)

    def test_list_queues(self):
        q1, q2 = self.qname(), self.qname()
        self.enqueue(q1, 1)
        self.enqueue(q2, 1)
        self.enqueue(q2, 2)
        status, body = self.call("GET", "/v1/queues")
        self.assertEqual(status, 200, body)
        by_name = {s.get("name"): s for s in body["queues"]}
        self.assertIn(q1, by_name)
        self.assertIn(q2, by_name)
        self.assertStatsShape(by_name[q1], q1)
        self.assertEqual(by_name[q2]["counts"]["ready"], 2)
        self.assertEqual(by_name[q2]["totals"]["enqueued"], 2)

    def test_stats_counts_and_totals(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(5)])
        self.enqueue(q, "later", delay_ms=60000)
        leased = self.lease(q, n=3)
        self.assertEqual([t["id"] for t in leased], ids[:3])
        self.assertAckOk(ids[0], leased[0]["lease"]["token"])
        self.assertEqual(self.nack(ids[1], leased[1]["lease"]["token"], "x", dead=True)[0], 200)
        self.assertEqual(self.call("DELETE", f"/v1/tasks/{ids[3]}")[0], 200)
        stats = self.stats(q)
        self.assertStatsShape(stats, q)
        self.assertEqual({k: stats["counts"][k] for k in STATES}, {"scheduled": 1, "ready": 1, "leased": 1,
                                           "succeeded": 1, "dead": 1, "canceled": 1})
        self.assertEqual({k: stats["totals"][k] for k in TOTALS},
                         {"enqueued": 6, "acked": 1, "nacked": 1, "expired": 0, "dead": 1})

    def test_list_tasks_pagination(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(7)])
        page = self.list_tasks(q, "?limit=3")
        self.assertEqual([t["id"] for t in page["tasks"]], ids[0:3])
        self.assertEqual(page["next_after"], ids[2])
        page = self.list_tasks(q, f"?limit=3&after={ids[2]}")
        self.assertEqual([t["id"] for t in page["tasks"]], ids[3:6])
        self.assertEqual(page["next_after"], ids[5])
        page = self.list_tasks(q, f"?limit=3&after={ids[5]}")
        self.assertEqual([t["id"] for t in page["tasks"]], ids[6:])
        self.assertIsNone(page["next_after"])
        page = self.list_tasks(q)
        self.assertEqual([t["id"] for t in page["tasks"]], ids)
        self.assertIsNone(page["next_after"])
        self.assertEqual(page["tasks"][4]["payload"], 4)
        self.assertEqual(page["tasks"][4]["queue"], q)

    def test_list_tasks_state_filter(self):
        q = self.qname()
        ids = self.enqueue_batch(q, [{"payload": i} for i in range(5)])
        leased = self.lease(q, n=2)
        for t in leased:
            self.assertAckOk(t["id"], t["lease"]["token"])
        self.assertEqual([t["id"] for t in self.list_tasks(q, "?state=succeeded")["tasks"]],
                         ids[:2])
        self.assertEqual([t["id"] for t in self.list_tasks(q, "?state=ready")["tasks"]],
                         ids[2:])
        self.assertEqual(self.list_tasks(q, "?state=dead")["tasks"], [])
        page = self.list_tasks(q, "?state=ready&limit=2")
        self.assertEqual([t["id"] for t in page["tasks"]], ids[2:4])
        self.assertEqual(page["next_after"], ids[3])
        page = self.list_tasks(q, f"?state=ready&limit=2&after={ids[3]}")
        self.assertEqual([t["id"] for t in page["tasks"]], ids[4:])
        self.assertIsNone(page["next_after"])

    def test_list_tasks_bad_query(self):
        q = self.qname()
        self.enqueue(q, 1)
        for query in ("?state=bogus", "?limit=abc", "?after=-3"):
            with self.subTest(query=query):
                status, body = self.call("GET", f"/v1/queues/{q}/tasks{query}")
                self.assertError(status, body, 400)


class SchedulingTest(ApiTestCase):
    def wait_until_ms(self, t_ms):
        delay = t_ms - now_ms()
        if delay > 0:
            time.sleep(delay / 1000.0)

    def check_not_before(self, q, tid, run_at):
        self.assertEqual(self.lease(q), [])
        self.wait_until_ms(run_at - 150)
        self.assertEqual(self.lease(q), [], "leased before run_at")
        self.wait_until_ms(run_at + 150)
        task = self.lease_one(q, wait_ms=2000)
        self.assertGreaterEqual(now_ms(), run_at)
        self.assertEqual(task["id"], tid)

    def test_delay_ms(self):
        q = self.qname()
        t0 = now_ms()
        tid = self.enqueue(q, 1, delay_ms=450)
        t1 = now_ms()
        task = self.get_task(tid)
        self.assertEqual(task["state"], "scheduled")
        self.assertTimeNear(task["run_at"], t0 + 450 - 5, t1 + 450 + 5, "run_at")
        self.check_not_before(q, tid, task["run_at"])

    def test_run_at(self):
        q = self.qname()
        run_at = now_ms() + 450
        tid = self.enqueue(q, 1, run_at=run_at)
        task = self.get_task(tid)
        self.assertEqual(task["state"], "scheduled")
        self.assertEqual(task["run_at"], run_at)
        self.check_not_before(q, tid, run_at)

    def test_run_at_in_past_is_ready(self):
        q = self.qname()
        tid = self.enqueue(q, 1, run_at=now_ms() - 10000)
        self.assertEqual(self.lease_one(q)["id"], tid)

    def test_scheduled_becomes_ready_state(self):
        q = self.qname()
        tid = self.enqueue(q, 1, delay_ms=300)
        time.sleep(0.6)
        stats = self.stats(q)
        self.assertEqual(self.get_task(tid)["state"], "ready")
        self.assertEqual(stats["counts"]["ready"], 1, stats)
        self.assertEqual(stats["counts"]["scheduled"], 0, stats)

    def test_long_poll_wakes_for_delayed_task(self):
        q = self.qname()
        tid = self.enqueue(q, 1, delay_ms=400)
        run_at = self.get_task(tid)["run_at"]
        task = self.lease_one(q, wait_ms=3000)
        got = now_ms()
        self.assertEqual(task["id"], tid)
        self.assertGreaterEqual(got, run_at)
        self.assertLess(got, run_at + 700, "long-poll should wake when the task is due")

    def test_deadline_in_past_ends_dead(self):
        q = self.qname()
        status, body = self.enqueue_raw(q, {"payload": 1, "deadline": now_ms() - 1000})
        self.assertEqual(status, 201, body)
        tid = body["id"]
        self.assertEqual(self.lease(q), [])
        task = self.get_task(tid, wait_ms=3000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "expired")
        self.assertEqual(task["attempts"], 0)

    def test_deadline_reached_unleased(self):
        q = self.qname()
        deadline = now_ms() + 400
        tid = self.enqueue(q, 1, deadline=deadline)
        task = self.get_task(tid, wait_ms=4000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "expired")
        self.assertGreaterEqual(now_ms(), deadline)
        self.assertLess(now_ms(), deadline + 2000)
        self.assertEqual(self.lease(q), [])

    def test_delayed_past_deadline_ends_dead(self):
        q = self.qname()
        tid = self.enqueue(q, 1, delay_ms=2000, deadline=now_ms() + 300)
        task = self.get_task(tid, wait_ms=4000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "expired")

    def test_deadline_does_not_kill_leased_task(self):
        q = self.qname()
        tid = self.enqueue(q, 1, deadline=now_ms() + 300)
        token = self.lease_one(q, lease_ms=5000)["lease"]["token"]
        time.sleep(0.6)
        self.assertEqual(self.get_task(tid)["state"], "leased")
        self.assertAckOk(tid, token)

    def test_max_attempts_via_lease_expiry(self):
        q = self.qname()
        tid = self.enqueue(q, 1, max_attempts=1)
        self.lease_one(q, lease_ms=200)
        start = time.monotonic()
        task = self.get_task(tid, wait_ms=3000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "max_attempts")
        self.assertEqual(task["attempts"], 1)
        self.assertLess(time.monotonic() - start, 2.5)
        self.assertEqual(self.lease(q), [])

    def test_max_attempts_two_expiries(self):
        q = self.qname()
        tid = self.enqueue(q, 1, max_attempts=2)
        first = self.lease_one(q, lease_ms=200)
        second = self.lease_one(q, wait_ms=3000, lease_ms=200)
        self.assertEqual(second["id"], tid)
        self.assertEqual(second["attempts"], 2)
        self.assertGreaterEqual(now_ms(), first["lease"]["expires_at"])
        task = self.get_task(tid, wait_ms=3000)
        self.assertEqual(task["state"], "dead")
        self.assertEqual(task["dead_reason"], "max_attempts")
        self.assertEqual(task["attempts"], 2)
        status, body = self.ack(tid, second["lease"]["token"])
        self.assertError(status, body, 409, "lease_mismatch")


class IdempotencyTest(ApiTestCase):
    def test_duplicate_returns_first_id(self):
        q = self.qname()
        status, body = self.enqueue_raw(q, {"payload": "first", "idempotency_key": "k1"})
        self.assertEqual(status, 201, body)
        first = body["id"]
        self.assertNotEqual(body.get("duplicate"), True)
        status, body = self.enqueue_raw(q, {"payload": "second", "idempotency_key": "k1"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("id"), first)
        self.assertIs(body.get("duplicate"), True)
        self.assertEqual(self.get_task(first)["payload"], "first")
        stats = self.stats(q)
        self.assertEqual(stats["counts"]["ready"], 1, stats)
        self.assertEqual(len(self.list_tasks(q)["tasks"]), 1)

    def test_key_scoped_to_queue(self):
        q1, q2 = self.qname(), self.qname()
        a = self.enqueue(q1, 1, idempotency_key="same")
        b = self.enqueue(q2, 1, idempotency_key="same")
        self.assertNotEqual(a, b)
        c = self.enqueue(q1, 1, idempotency_key="other")
        self.assertNotEqual(a, c)

    def test_key_known_after_task_finished(self):
        q = self.qname()
        tid = self.enqueue(q, 1, idempotency_key="done-key")
        self.assertAckOk(tid, self.lease_one(q)["lease"]["token"])
        status, body = self.enqueue_raw(q, {"payload": 2, "idempotency_key": "done-key"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("id"), tid)
        self.assertIs(body.get("duplicate"), True)
        self.assertEqual(self.lease(q), [])

    def test_concurrent_duplicates(self):
        q = self.qname()
        n = 8
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            try:
                barrier.wait(5)
                results[i] = self.server.call(
                    "POST", f"/v1/queues/{q}/tasks",
                    {"payload": i, "idempotency_key": "race"}, timeout=10)
            except Exception as e:  # reported by the assertions below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        for r in results:
            self.assertIsInstance(r, tuple, r)
        created = [b for s, b in results if s == 201]
        dups = [b for s, b in results if s == 200]
        self.assertEqual(len(created), 1, results)
        self.assertEqual(len(dups), n - 1, results)
        tid = created[0]["id"]
        for b in dups:
            self.assertEqual(b.get("id"), tid, results)
            self.assertIs(b.get("duplicate"), True, results)
        self.assertEqual(len(self.list_tasks(q)["tasks"]), 1)


class HttpTest(ApiTestCase):
    def test_healthz(self):
        status, _, _ = self.server.request("GET", "/healthz")
        self.assertEqual(status, 200)

    def test_metrics(self):
        q = self.qname()
        tid = self.enqueue(q, 1)
        self.assertAckOk(tid, self.lease_one(q)["lease"]["token"])
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        self.assertIsInstance(body, bytes)
        text = body.decode("utf-8")
        names = set()
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    names.add(parts[2])
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            self.assertIsNotNone(m, f"not a Prometheus sample line: {line!r}")
            float(m.group(3))  # the value parses as a number
            names.add(m.group(1))
        self.assertTrue(names)
        for name in names:
            self.assertTrue(name.startswith("conveyor_"), name)
        self.assertIn(f'queue="{q}"', text)

    def test_unknown_path(self):
        status, body = self.call("GET", "/v1/nope")
        self.assertError(status, body, 404, "not_found")
        status, body = self.call("GET", "/nope")
        self.assertError(status, body, 404, "not_found")

    def test_method_not_allowed(self):
        q = self.qname()
        cases = [("GET", f"/v1/queues/{q}/lease", "POST"),
                 ("GET", "/v1/tasks/1/ack", "POST"),
                 ("PATCH", "/v1/tasks/1", "GET"),
                 ("GET", "/add_task", "POST"),
                 ("POST", "/healthz", "GET")]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                status, headers, body = self.server.request(method, path)
                self.assertError(status, body, 405, "method_not_allowed")
                allow = [m.strip() for m in headers.get("allow", "").split(",")]
                self.assertIn(allowed, allow, headers)

    def test_server_keeps_serving_after_errors(self):
        for raw in (b"{", b"null", b"[]", b'"x"', b'{"payload":'):
            with self.subTest(raw=raw):
                status, body = self.call("POST", f"/v1/queues/{self.qname()}/tasks", raw)
                self.assertError(status, body, 400)
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)
        self.assertIsNone(self.server.proc.poll())


if __name__ == "__main__":
    unittest.main()
