"""The C++ SDK (conveyor::client) through its example program, examples/sdk_worker.cpp,
built by the tests: it enqueues a batch, works it with a coroutine handler (leases,
extends, acks, dead), stops gracefully, and the server's view must match."""
import os
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, conveyor_bin  # noqa: E402


def example_bin():
    path = os.environ.get("CONVEYOR_SDK_EXAMPLE")
    if not path:
        path = os.path.join(os.path.dirname(conveyor_bin()), "examples", "sdk_worker")
    return path


class SdkExampleTest(ServerTestCase):
    durability = "sync"

    def test_the_example_enqueues_and_works_every_task(self):
        queue = f"sdk-{uuid.uuid4().hex[:8]}"
        proc = subprocess.run([example_bin(), self.server.url, queue, "40"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("enqueued 40 tasks", proc.stdout)
        self.assertIn("handled 40 tasks", proc.stdout)
        self.assertIn("is succeeded with result", proc.stdout)
        counts = self.server.call("GET", f"/v1/queues/{queue}")[1]["counts"]
        self.assertEqual((counts["succeeded"], counts["leased"], counts["ready"]), (40, 0, 0))
        status, page = self.server.call("GET", f"/v1/queues/{queue}/tasks?state=succeeded&limit=1")
        self.assertEqual(page["tasks"][0]["result"]["sent"], True)

    def test_a_long_running_worker_stops_gracefully_on_sigterm(self):
        queue = f"sdk-{uuid.uuid4().hex[:8]}"
        for i in range(5):
            status, body = self.server.call("POST", f"/v1/queues/{queue}/tasks",
                                            {"payload": {"to": i}})
            self.assertEqual(status, 201, body)
        proc = subprocess.Popen([example_bin(), self.server.url, queue, "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.time() + 20
        while self.server.call("GET", f"/v1/queues/{queue}")[1]["counts"]["succeeded"] < 5:
            self.assertLess(time.time(), deadline, "the worker never did the tasks")
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertIsNone(proc.poll(), "COUNT 0 runs until it is told to stop")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, out + err)
        self.assertIn("handled 5 tasks", out)
        counts = self.server.call("GET", f"/v1/queues/{queue}")[1]["counts"]
        self.assertEqual((counts["succeeded"], counts["leased"]), (5, 0))


if __name__ == "__main__":
    unittest.main()
