"""Finished tasks live in storage, not in memory (Foundation II item 1): once its final
state is durable a finished task leaves RAM (only its id stays in its queue's indexes),
and everything that reads it — GET, ?wait_ms, pages, a repeated ack, a nack/extend/cancel
that must be refused, a retry of a dead task, idempotency keys, retention — reads its
record back from storage. Also after a restart.

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_finished_tasks.py
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402


class FinishedTasksTest(DurableTestCase):

    def finish(self, server, queue, n, result=None):
        """Enqueues n tasks, leases and acks them; returns [(id, token)]."""
        ids = [self.enqueue(server, queue, {"n": i, "pad": "p" * 200}, idempotency_key=f"k{i}")["id"]
               for i in range(n)]
        done = []
        for t in self.lease(server, queue, n):
            body = {"lease": t["lease"]["token"]}
            if result is not None:
                body["result"] = result
            status, r = server.call("POST", f"/v1/tasks/{t['id']}/ack", body)
            self.assertEqual(status, 200, r)
            done.append((t["id"], t["lease"]["token"]))
        self.assertEqual(sorted(i for i, _ in done), sorted(ids))
        return done

    def test_a_finished_task_reads_back_whole_and_refuses_changes(self):
        server = self.start(self.make_dir())
        done = self.finish(server, "fin", 20, result={"ok": [1, 2.50]})
        time.sleep(0.2)  # durable by now, and out of memory
        for i, (task_id, token) in enumerate(done):
            task = self.get_task(server, task_id)
            self.assertEqual(task["state"], "succeeded")
            self.assertEqual(task["result"], {"ok": [1, 2.5]})
            self.assertEqual(task["payload"]["pad"], "p" * 200)
            self.assertNotIn("lease", task)
            # A repeated ack with the same token stays harmless; other calls are refused.
            self.assertEqual(server.call("POST", f"/v1/tasks/{task_id}/ack",
                                         {"lease": token})[0], 200)
            self.assertEqual(server.call("POST", f"/v1/tasks/{task_id}/ack",
                                         {"lease": "0" * 32})[0], 409)
            self.assertEqual(server.call("POST", f"/v1/tasks/{task_id}/nack",
                                         {"lease": token})[0], 409)
            self.assertEqual(server.call("POST", f"/v1/tasks/{task_id}/extend",
                                         {"lease": token, "lease_ms": 1000})[0], 409)
            self.assertEqual(server.call("DELETE", f"/v1/tasks/{task_id}")[0], 409)
            self.assertEqual(server.call("POST", f"/v1/tasks/{task_id}/retry")[0], 409)
            status, waited = server.call("GET", f"/v1/tasks/{task_id}?wait_ms=5000")
            self.assertEqual((status, waited["state"]), (200, "succeeded"))
        # Pages, whole and by state, in id order.
        status, page = server.call("GET", "/v1/queues/fin/tasks?state=succeeded&limit=1000")
        self.assertEqual(status, 200, page)
        self.assertEqual([t["id"] for t in page["tasks"]], sorted(i for i, _ in done))
        status, page = server.call("GET", "/v1/queues/fin/tasks?limit=7")
        self.assertEqual(len(page["tasks"]), 7)
        self.assertEqual(page["next_after"], page["tasks"][-1]["id"])
        # An idempotency key of a finished task still answers the first id.
        status, dup = server.call("POST", "/v1/queues/fin/tasks",
                                  {"payload": 0, "idempotency_key": "k3"})
        self.assertEqual(status, 200, dup)
        self.assertTrue(dup["duplicate"])
        self.assertEqual(dup["state"], "succeeded")
        self.assertEqual(self.queue_stats(server, "fin")["counts"]["succeeded"], 20)

    def test_a_dead_task_out_of_memory_can_be_retried(self):
        server = self.start(self.make_dir())
        task_id = self.enqueue(server, "dq", {"x": 1}, max_attempts=1)["id"]
        leased = self.lease(server, "dq", 1)[0]
        status, r = server.call("POST", f"/v1/tasks/{task_id}/nack",
                                {"lease": leased["lease"]["token"], "error": "boom"})
        self.assertEqual((status, r["state"]), (200, "dead"))
        time.sleep(0.2)
        self.assertEqual(self.get_task(server, task_id)["errors"][0]["message"], "boom")
        status, r = server.call("POST", f"/v1/tasks/{task_id}/retry")
        self.assertEqual((status, r["state"]), (200, "ready"), r)
        again = self.lease(server, "dq", 1)
        self.assertEqual(again[0]["id"], task_id)
        self.assertEqual(again[0]["payload"], {"x": 1})
        self.assertEqual(len(again[0]["errors"]), 1)

    def test_finished_tasks_survive_a_restart_and_are_purged_after_retention(self):
        data = self.make_dir()
        server = self.start(data)
        self.assertEqual(server.call("PUT", "/v1/queues/ret", {"retention_ms": 4000})[0], 200)
        done = self.finish(server, "ret", 10, result="r")
        self.assertEqual(server.sigterm(), 0)
        server = self.start(data)
        for task_id, _ in done:
            self.assertEqual(self.get_task(server, task_id)["result"], "r")
        self.assertEqual(self.queue_stats(server, "ret")["counts"]["succeeded"], 10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.queue_stats(server, "ret")["counts"]["succeeded"] == 0:
                break
            time.sleep(0.2)
        self.assertEqual(self.queue_stats(server, "ret")["counts"]["succeeded"], 0)
        for task_id, _ in done:
            self.assertEqual(server.call("GET", f"/v1/tasks/{task_id}")[0], 404)
        # Their idempotency keys are forgotten with them.
        status, again = server.call("POST", "/v1/queues/ret/tasks",
                                    {"payload": 1, "idempotency_key": "k0"})
        self.assertEqual(status, 201, again)


if __name__ == "__main__":
    unittest.main(verbosity=2)
