"""Unique and debounced work through the real binary (issue 13): a second task with the
same unique key is refused (200 with the first id) while the first is queued or active and
for at most ttl_ms, replace gives the queued task the latest payload, the key is still held
after a kill -9, and bad input is refused."""
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
from harness import ServerTestCase  # noqa: E402


class UniqueTest(ServerTestCase):
    durability = "sync"

    def post(self, queue, spec):
        return self.call("POST", f"/v1/queues/{queue}/tasks", spec)

    def lease(self, queue):
        status, got = self.call("POST", f"/v1/queues/{queue}/lease", {"max": 1})
        self.assertEqual(status, 200, got)
        return got["tasks"]

    def test_a_duplicate_is_refused_with_the_first_id(self):
        q = self.qname()
        status, first = self.post(q, {"payload": 1, "unique": {"key": "report:7"}})
        self.assertEqual(status, 201, first)
        status, again = self.post(q, {"payload": 2, "unique": {"key": "report:7"}})
        self.assertEqual((status, again["id"], again.get("duplicate")), (200, first["id"], True))
        task = self.call("GET", f"/v1/tasks/{first['id']}")[1]
        self.assertEqual(task["unique"], {"key": "report:7", "while": "queued", "expires_at": None})
        self.assertEqual(task["payload"], 1)
        leased = self.lease(q)
        self.assertEqual(leased[0]["id"], first["id"])
        status, third = self.post(q, {"payload": 3, "unique": {"key": "report:7"}})
        self.assertEqual(status, 201, third)  # the first is leased: no longer queued

    def test_while_active_and_ttl(self):
        q = self.qname()
        status, first = self.post(q, {"payload": 1, "unique": {"key": "s", "while": "active"}})
        task = self.lease(q)[0]
        status, again = self.post(q, {"payload": 2, "unique": {"key": "s", "while": "active"}})
        self.assertEqual((status, again["id"]), (200, first["id"]))
        self.call("POST", f"/v1/tasks/{task['id']}/ack", {"lease": task["lease"]["token"]})
        status, after = self.post(q, {"payload": 3, "unique": {"key": "s", "while": "active"}})
        self.assertEqual(status, 201, after)
        q2 = self.qname()
        status, held = self.post(q2, {"payload": 1, "delay_ms": 60000,
                                      "unique": {"key": "t", "ttl_ms": 300}})
        self.assertEqual(self.post(q2, {"payload": 2, "unique": {"key": "t"}})[0], 200)
        time.sleep(0.4)
        self.assertEqual(self.post(q2, {"payload": 3, "unique": {"key": "t"}})[0], 201)

    def test_replace_debounces_to_the_latest_payload(self):
        q = self.qname()
        ids = set()
        for n in range(5):
            status, body = self.post(q, {"payload": {"n": n}, "delay_ms": 300,
                                         "unique": {"key": "search:abc", "replace": True}})
            self.assertIn(status, (200, 201), body)
            ids.add(body["id"])
            if n > 0:
                self.assertTrue(body.get("replaced"), body)
        self.assertEqual(len(ids), 1)
        (only,) = ids
        self.assertEqual(self.call("GET", f"/v1/tasks/{only}")[1]["payload"], {"n": 4})
        # replace may also stand beside unique.
        status, body = self.post(q, {"payload": {"n": 5}, "replace": True,
                                     "unique": {"key": "search:abc"}})
        self.assertEqual((status, body.get("replaced")), (200, True), body)
        deadline = time.time() + 5
        got = []
        while not got and time.time() < deadline:
            got = self.lease(q)
            time.sleep(0.05)
        self.assertEqual([(t["id"], t["payload"]) for t in got], [(only, {"n": 5})])

    def test_bad_input(self):
        q = self.qname()
        for spec, field in [({"payload": 1, "unique": "k"}, "unique"),
                            ({"payload": 1, "unique": {}}, "unique.key"),
                            ({"payload": 1, "unique": {"key": ""}}, "unique.key"),
                            ({"payload": 1, "unique": {"key": "k", "while": "always"}},
                             "unique.while"),
                            ({"payload": 1, "unique": {"key": "k", "ttl_ms": 0}}, "unique.ttl_ms"),
                            ({"payload": 1, "unique": {"key": "k", "scope": 1}}, "unique"),
                            ({"payload": 1, "replace": True}, "replace")]:
            with self.subTest(spec=spec):
                status, answer = self.post(q, spec)
                self.assertError(status, answer, 400)
                self.assertIn(field, answer["error"]["message"])


class UniqueDurabilityTest(DurableTestCase):
    def test_the_key_is_still_held_after_a_kill(self):
        data_dir = self.make_dir()
        server = self.start(data_dir)
        q = f"u-{uuid.uuid4().hex[:8]}"
        first = self.enqueue(server, q, {"v": 1}, unique={"key": "nightly"})
        server.kill9()
        server = self.start(data_dir)
        status, again = server.call("POST", f"/v1/queues/{q}/tasks",
                                    {"payload": {"v": 2}, "unique": {"key": "nightly"}})
        self.assertEqual((status, again["id"]), (200, first["id"]), again)


if __name__ == "__main__":
    unittest.main()
