"""Payloads past --payload-cache-bytes live in storage only (Foundation II item 1): a task
created (or recovered) when the payload cache is full keeps only its payload's size in
memory, and every lease, GET, task page and ?wait_ms answer reads the bytes back from
storage. The answers are the same as with the payload in memory, byte for byte, also after
a kill -9 and a restart; the cache's count (conveyor_payload_cache_bytes) stays within the
flag and goes back down as tasks leave memory. With --durability none there is nowhere to
read a payload back from: every payload stays in memory.

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_payload_cache.py
"""
import http.client
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402

# Payloads that must come back exactly as sent: the API returns JSON payloads verbatim.
RAW_PAYLOADS = [
    '{"n": 0, "price": 1.50, "tags": ["a", "b"]}',
    '"caf\\u00e9 \\u2603 \\ud83d\\ude00"',
    '[1, 2.0, 3e2, null, true, false, {"deep": {"x": []}}]',
    '{"big": "' + "x" * 100_000 + '"}',
    '12345678901234567890',
]


def raw_get(server, path):
    """(status, body bytes) exactly as the server sent them."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def cache_gauge(server):
    status, body = raw_get(server, "/metrics")
    assert status == 200, body
    m = re.search(rb"^conveyor_payload_cache_bytes (\d+)$", body, re.M)
    assert m, body[:400]
    return int(m.group(1))


class PayloadCacheTest(DurableTestCase):

    def enqueue_all(self, server, queue, raws):
        ids = []
        for i, raw in enumerate(raws):
            text = '{"payload": ' + raw + ', "priority": ' + str(-i) + '}'
            ids.append(self.enqueue_raw(server, queue, text)["id"])
        return ids

    def payload_text(self, server, task_id):
        """The payload member of GET /v1/tasks/{id}, as raw text."""
        status, body = raw_get(server, f"/v1/tasks/{task_id}")
        self.assertEqual(status, 200, body)
        text = body.decode("utf-8")
        start = text.index('"payload":') + len('"payload":')
        value, end = json.JSONDecoder().raw_decode(text, start)
        return text[start:end].strip(), value

    def check_payloads(self, server, ids, raws):
        for task_id, raw in zip(ids, raws):
            text, value = self.payload_text(server, task_id)
            self.assertEqual(text, raw, f"task {task_id}")
            self.assertEqual(value, json.loads(raw))

    def test_no_cache_every_answer_reads_the_payload_back(self):
        data = self.make_dir()
        server = self.start(data, extra_args=["--payload-cache-bytes", "0"])
        ids = self.enqueue_all(server, "pc0", RAW_PAYLOADS)
        self.assertEqual(cache_gauge(server), 0, "a payload was kept in memory")
        self.check_payloads(server, ids, RAW_PAYLOADS)
        page = self.list_tasks(server, "pc0", state="ready")
        self.assertEqual([t["payload"] for t in page], [json.loads(r) for r in RAW_PAYLOADS])
        status, waited = server.call("GET", f"/v1/tasks/{ids[0]}?wait_ms=50")
        self.assertEqual((status, waited["payload"]), (200, json.loads(RAW_PAYLOADS[0])))
        # A repeated idempotency key answers the first task, its payload unchanged.
        key_id = self.enqueue(server, "pc0", {"first": True}, idempotency_key="k1")["id"]
        dup = self.enqueue(server, "pc0", {"second": True}, expect=200, idempotency_key="k1")
        self.assertEqual((dup["id"], dup["duplicate"]), (key_id, True))
        self.assertEqual(self.get_task(server, key_id)["payload"], {"first": True})

        # Survives kill -9: recovery keeps them in storage too, and they lease whole.
        server.kill9()
        server = self.start(data, extra_args=["--payload-cache-bytes", "0"])
        self.check_payloads(server, ids, RAW_PAYLOADS)
        self.assertEqual(cache_gauge(server), 0)
        leased = self.lease(server, "pc0", 10)
        by_id = {t["id"]: t for t in leased}
        for task_id, raw in zip(ids, RAW_PAYLOADS):
            self.assertEqual(by_id[task_id]["payload"], json.loads(raw))
        for t in leased:
            status, r = server.call("POST", f"/v1/tasks/{t['id']}/ack",
                                    {"lease": t["lease"]["token"]})
            self.assertEqual(status, 200, r)
        self.assertEqual(self.get_task(server, ids[3])["payload"], json.loads(RAW_PAYLOADS[3]))

    def test_a_small_cache_holds_the_first_payloads_and_the_rest_read_back(self):
        server = self.start(self.make_dir(), extra_args=["--payload-cache-bytes", "2000"])
        raws = [json.dumps({"i": i, "pad": "p" * 180}) for i in range(60)]
        ids = self.enqueue_all(server, "pcs", raws)
        held = cache_gauge(server)
        self.assertGreater(held, 0, "the first payloads should be in memory")
        self.assertLessEqual(held, 2000, "the cache holds more than --payload-cache-bytes")
        # Leased in priority order: the cached ones first, then the ones read back.
        got = []
        while True:
            batch = self.lease(server, "pcs", 7)
            if not batch:
                break
            for t in batch:
                got.append(t["payload"])
                status, r = server.call("POST", f"/v1/tasks/{t['id']}/ack",
                                        {"lease": t["lease"]["token"]})
                self.assertEqual(status, 200, r)
        self.assertEqual(got, [json.loads(r) for r in raws])
        # Finished tasks leave memory once durable: the cache is empty again.
        for _ in range(100):
            if cache_gauge(server) == 0:
                break
            server.call("GET", "/healthz")
        self.assertEqual(cache_gauge(server), 0)
        self.check_payloads(server, ids[:3] + ids[-3:], raws[:3] + raws[-3:])

    def test_after_a_restart_the_cache_refills_within_its_budget(self):
        # Recovery copies a payload out of its walk only while the cache has room, with
        # one thread walking and one a shard restoring: the budget holds across them.
        data = self.make_dir()
        args = ["--payload-cache-bytes", "2000", "--threads", "2"]
        server = self.start(data, extra_args=args)
        raws = [json.dumps({"i": i, "pad": "q" * 180}) for i in range(3000)]
        ids = []
        for start in range(0, len(raws), 500):
            ids += self.enqueue_all(server, "pcr", raws[start:start + 500])
        server.kill9()
        server = self.start(data, extra_args=args)
        held = cache_gauge(server)
        self.assertGreater(held, 0, "the first payloads should be in memory again")
        self.assertLessEqual(held, 2000, "recovery filled the cache past --payload-cache-bytes")
        self.check_payloads(server, ids[:2] + ids[1500:1502] + ids[-2:],
                            raws[:2] + raws[1500:1502] + raws[-2:])

    def test_a_nacked_task_read_back_keeps_its_payload(self):
        server = self.start(self.make_dir(), extra_args=["--payload-cache-bytes", "0"])
        task_id = self.enqueue(server, "pcn", {"keep": "me"})["id"]
        for attempt in range(3):
            t = self.lease(server, "pcn", 1)[0]
            self.assertEqual((t["id"], t["payload"]), (task_id, {"keep": "me"}))
            status, r = server.call("POST", f"/v1/tasks/{task_id}/nack",
                                    {"lease": t["lease"]["token"], "error": f"e{attempt}",
                                     "retry_in_ms": 0})
            self.assertEqual(status, 200, r)
        self.assertEqual(self.get_task(server, task_id)["attempts"], 3)

    def test_without_storage_every_payload_stays_in_memory(self):
        server = self.start(self.make_dir(), durability="none",
                            extra_args=["--payload-cache-bytes", "0"])
        ids = self.enqueue_all(server, "pcm", RAW_PAYLOADS)
        self.assertEqual(cache_gauge(server), sum(len(r) for r in RAW_PAYLOADS))
        self.check_payloads(server, ids, RAW_PAYLOADS)


if __name__ == "__main__":
    unittest.main()
