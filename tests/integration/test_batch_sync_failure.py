"""Foundation II item 4: in `--durability batch`, a failed WAL sync (the BatchSyncer's
fsync every 100 ms) degrades the server exactly like a failed write in `sync` mode: it
says `degraded`, state-changing requests get 503 `storage_unavailable` with Retry-After,
reads keep working, nothing is retried blindly, and it takes changes again once the disk
works and storage has been reopened and reloaded. What was acknowledged before the last
good sync is kept.

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_batch_sync_failure.py
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402


class BatchSyncFailureTest(DurableTestCase):

    def test_a_failed_wal_sync_degrades_batch_mode_until_storage_recovers(self):
        flag = os.path.join(self.make_dir(), "fault")
        data = self.make_dir()
        server = self.start(data, durability="batch", env={"CONVEYOR_FAULT_FILE": flag})
        kept = [self.enqueue(server, "bq", {"n": i})["id"] for i in range(20)]
        time.sleep(0.3)  # synced by the 100 ms syncer
        with open(flag, "w") as f:
            f.write("eio-sync\n")
        self.addCleanup(lambda: os.path.exists(flag) and os.remove(flag))
        deadline = time.monotonic() + 5
        degraded = False
        while time.monotonic() < deadline and not degraded:
            status, body = server.call("GET", "/healthz")
            degraded = status == 200 and body.get("status") == "degraded"
            time.sleep(0.05)
        self.assertTrue(degraded, "a failed WAL sync in batch mode did not degrade the server")
        status, hdrs, body = server.request("POST", "/v1/queues/bq/tasks", {"payload": "late"})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "storage_unavailable")
        self.assertIn("retry-after", hdrs)
        self.assertEqual(self.get_task(server, kept[0])["payload"], {"n": 0})  # reads work
        os.remove(flag)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = server.call("POST", "/v1/queues/bq/tasks", {"payload": "after"})
            if status == 201:
                break
            time.sleep(0.2)
        self.assertEqual(status, 201, f"still refused after the disk came back: {body}")
        self.assertEqual(server.call("GET", "/healthz")[1]["status"], "ok")
        self.assertEqual(server.sigterm(), 0)
        again = self.start(data, durability="batch")
        for i, task_id in enumerate(kept):
            self.assertEqual(self.get_task(again, task_id)["payload"], {"n": i})


if __name__ == "__main__":
    unittest.main(verbosity=2)
