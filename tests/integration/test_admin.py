"""Operators' API through the real binary (issue 14, part 2): retry every dead task of a
queue (or up to a limit), purge its finished tasks by state, delete an empty queue (409
while it has tasks; its config is gone after a restart), and a lowered retention_ms
applying to tasks that finished before the change."""
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
from harness import ServerTestCase  # noqa: E402


class AdminTest(ServerTestCase):
    durability = "sync"

    def dead_tasks(self, q, n):
        ids = [self.enqueue(q, i, max_attempts=1) for i in range(n)]
        status, got = self.call("POST", f"/v1/queues/{q}/lease", {"max": n})
        for t in got["tasks"]:
            self.call("POST", f"/v1/tasks/{t['id']}/nack", {"lease": t["lease"]["token"],
                                                          "error": "boom"})
        self.assertEqual(self.call("GET", f"/v1/queues/{q}")[1]["counts"]["dead"], n)
        return ids

    def test_retry_dead_all_or_up_to_a_limit(self):
        q = self.qname()
        ids = self.dead_tasks(q, 5)
        status, body = self.call("POST", f"/v1/queues/{q}/retry-dead?limit=2")
        self.assertEqual((status, body), (200, {"retried": 2, "remaining": 3}))
        status, body = self.call("POST", f"/v1/queues/{q}/retry-dead", {"limit": 1})
        self.assertEqual((status, body), (200, {"retried": 1, "remaining": 2}))
        status, body = self.call("POST", f"/v1/queues/{q}/retry-dead")
        self.assertEqual((status, body), (200, {"retried": 2, "remaining": 0}))
        counts = self.call("GET", f"/v1/queues/{q}")[1]["counts"]
        self.assertEqual((counts["dead"], counts["ready"]), (0, 5))
        task = self.call("GET", f"/v1/tasks/{ids[0]}")[1]
        self.assertEqual((task["state"], task["attempts"]), ("ready", 0))
        self.assertEqual(self.call("POST", f"/v1/queues/{self.qname()}/retry-dead")[1],
                         {"retried": 0, "remaining": 0})
        for bad in ("?limit=0", "?limit=x", "?limit=-1"):
            status, answer = self.call("POST", f"/v1/queues/{q}/retry-dead{bad}")
            self.assertError(status, answer, 400)
        self.assertEqual(self.call("GET", f"/v1/queues/{q}/retry-dead")[0], 405)

    def test_purge_by_state(self):
        q = self.qname()
        done = []
        for i in range(4):
            self.enqueue(q, i)
        status, got = self.call("POST", f"/v1/queues/{q}/lease", {"max": 4})
        for t in got["tasks"]:
            self.call("POST", f"/v1/tasks/{t['id']}/ack", {"lease": t["lease"]["token"]})
            done.append(t["id"])
        canceled = self.enqueue(q, "c")
        self.call("DELETE", f"/v1/tasks/{canceled}")
        status, body = self.call("POST", f"/v1/queues/{q}/purge?state=succeeded")
        self.assertEqual((status, body), (200, {"purged": 4, "remaining": 0}))
        self.assertEqual(self.call("GET", f"/v1/tasks/{done[0]}")[0], 404)
        counts = self.call("GET", f"/v1/queues/{q}")[1]["counts"]
        self.assertEqual((counts["succeeded"], counts["canceled"]), (0, 1))
        status, body = self.call("POST", f"/v1/queues/{q}/purge", {"state": "canceled"})
        self.assertEqual((status, body), (200, {"purged": 1, "remaining": 0}))
        for bad in ("", "?state=ready", "?state=leased", "?state=nope"):
            status, answer = self.call("POST", f"/v1/queues/{q}/purge{bad}")
            self.assertError(status, answer, 400)
            self.assertIn("state", answer["error"]["message"])

    def test_delete_only_an_empty_queue(self):
        q = self.qname()
        self.call("PUT", f"/v1/queues/{q}", {"max_attempts": 3})
        task = self.enqueue(q, 1)
        status, answer = self.call("DELETE", f"/v1/queues/{q}")
        self.assertError(status, answer, 409)
        self.assertIn("1 tasks", answer["error"]["message"])
        self.call("DELETE", f"/v1/tasks/{task}")  # canceled: still a task
        self.assertEqual(self.call("DELETE", f"/v1/queues/{q}")[0], 409)
        self.call("POST", f"/v1/queues/{q}/purge?state=canceled")
        status, body = self.call("DELETE", f"/v1/queues/{q}")
        self.assertEqual((status, body), (200, {"name": q, "deleted": True}))
        names = [x["name"] for x in self.call("GET", "/v1/queues")[1]["queues"]]
        self.assertNotIn(q, names)
        self.assertEqual(self.call("GET", f"/v1/queues/{q}")[1]["config"]["max_attempts"], 25)
        self.assertEqual(self.call("DELETE", f"/v1/queues/{q}")[0], 404)

    def test_lower_retention_applies_to_finished_tasks(self):
        q = self.qname()
        self.enqueue(q, 1)
        status, got = self.call("POST", f"/v1/queues/{q}/lease", {"max": 1})
        t = got["tasks"][0]
        self.call("POST", f"/v1/tasks/{t['id']}/ack", {"lease": t["lease"]["token"]})
        self.assertEqual(self.call("GET", f"/v1/tasks/{t['id']}")[0], 200)
        self.call("PUT", f"/v1/queues/{q}", {"retention_ms": 100})
        deadline = time.time() + 5
        while self.call("GET", f"/v1/tasks/{t['id']}")[0] != 404:
            self.assertLess(time.time(), deadline, "the old finished task was kept")
            time.sleep(0.05)


class AdminDurabilityTest(DurableTestCase):
    def test_a_deleted_queue_stays_deleted_after_a_restart(self):
        data_dir = self.make_dir()
        server = self.start(data_dir)
        q = f"gone-{uuid.uuid4().hex[:8]}"
        server.call("PUT", f"/v1/queues/{q}", {"max_attempts": 7, "paused": True})
        self.assertEqual(server.call("DELETE", f"/v1/queues/{q}")[0], 200)
        server.kill9()
        server = self.start(data_dir)
        names = [x["name"] for x in server.call("GET", "/v1/queues")[1]["queues"]]
        self.assertNotIn(q, names)
        self.assertEqual(server.call("GET", f"/v1/queues/{q}")[1]["config"]["max_attempts"], 25)


if __name__ == "__main__":
    unittest.main()
