"""TESTPLAN G.38, the memory bound: with --max-memory-bytes, enqueueing faster than anyone
drains is answered 503 `overloaded` with Retry-After once the server's RSS passes the
ceiling; RSS stays below ceiling + slack (no OOM kill); once the tasks are drained and
purged the server takes enqueues again. Also --durability none (the same bound holds).

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_memory_bound.py
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server  # noqa: E402

CEILING = 160 << 20
SLACK = 64 << 20        # the RSS is sampled every 100 ms; one batch in flight per client
PAYLOAD = "x" * 8000    # ~8 KB per task, 100 per request: ~800 KB per enqueue


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MemoryBoundTest(unittest.TestCase):
    DURABILITY = "sync"

    def setUp(self):
        # Under the ASan build, freed memory would sit in ASan's quarantine (256 MiB) and
        # never reach the kernel; a small quarantine that is released keeps RSS meaningful.
        # Other builds ignore the variable.
        asan = "quarantine_size_mb=4:allocator_release_to_os_interval_ms=50"
        # Payloads are kept in memory (a cache above the ceiling), so that RAM fills fast.
        self.server = Server(["--max-memory-bytes", str(CEILING),
                              "--payload-cache-bytes", str(4 * CEILING)],
                             durability=self.DURABILITY,
                             env={"ASAN_OPTIONS": asan})
        self.addCleanup(self.server.stop)

    def fill_until_refused(self, queue, limit_s=60):
        conn = self.server.connect(timeout=30)
        self.addCleanup(conn.close)
        body = json.dumps({"tasks": [{"payload": PAYLOAD} for _ in range(100)]})
        accepted, peak, started = 0, 0, time.monotonic()
        while time.monotonic() - started < limit_s:
            conn.request("POST", f"/v1/queues/{queue}/tasks", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = json.loads(resp.read())
            peak = max(peak, rss_bytes(self.server.proc.pid))
            if resp.status == 503:
                self.assertEqual(data["error"]["code"], "overloaded", data)
                self.assertEqual(resp.getheader("Retry-After"), "1")
                return accepted, peak
            self.assertEqual(resp.status, 201, data)
            accepted += 100
        self.fail(f"no 503 after {accepted} tasks; RSS {peak >> 20} MiB")

    def test_enqueues_past_the_ceiling_are_refused_and_resume_after_a_drain(self):
        queue = "mem"
        self.assertEqual(self.server.call("PUT", f"/v1/queues/{queue}",
                                          {"retention_ms": 1})[0], 200)
        accepted, peak = self.fill_until_refused(queue)
        self.assertGreater(accepted, 0)
        self.assertLess(peak, CEILING + SLACK, f"RSS peaked at {peak >> 20} MiB")
        # Everything refused stays refused while the memory is held...
        status, body = self.server.call("POST", f"/v1/queues/{queue}/tasks", {"payload": 1})
        self.assertEqual(status, 503, body)
        # ...reads and leases keep working; drain every task (finished ones purge at once).
        drained = 0
        while drained < accepted:
            status, got = self.server.call("POST", f"/v1/queues/{queue}/lease", {"max": 1000},
                                           timeout=30)
            self.assertEqual(status, 200, got)
            if not got["tasks"]:
                break
            acks = [{"id": t["id"], "lease": t["lease"]["token"]} for t in got["tasks"]]
            status, res = self.server.call("POST", "/v1/ack", {"acks": acks}, timeout=30)
            self.assertEqual(status, 200, res)
            drained += len(acks)
        self.assertEqual(drained, accepted)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, body = self.server.call("POST", f"/v1/queues/{queue}/tasks", {"payload": 1})
            if status == 201:
                break
            time.sleep(0.2)
        self.assertEqual(status, 201, f"still refused after the drain: {body}; RSS "
                                      f"{rss_bytes(self.server.proc.pid) >> 20} MiB")
        self.assertIsNone(self.server.proc.poll())


class MemoryBoundInMemoryTest(MemoryBoundTest):
    DURABILITY = "none"


if __name__ == "__main__":
    unittest.main(verbosity=2)
