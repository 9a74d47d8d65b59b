"""Safe shutdown (Foundation II item 5): SIGTERM/SIGINT stop accepting, answer long-polls
with what they have, let in-flight requests finish (their durability wait included),
flush, close storage and exit 0 within the documented bound.

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_shutdown.py
"""
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
import rawhttp  # noqa: E402


class ShutdownTest(DurableTestCase):

    def test_sigterm_answers_a_parked_long_poll_and_exits_zero(self):
        server = self.start(self.make_dir())
        answers = []

        def long_poll():
            answers.append(server.call("POST", "/v1/queues/sd/lease",
                                       {"max": 1, "wait_ms": 30000}, timeout=20))

        t = threading.Thread(target=long_poll)
        t.start()
        time.sleep(0.3)
        started = time.monotonic()
        code = server.sigterm(timeout=10)
        t.join(timeout=10)
        self.assertEqual(code, 0, server.output())
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertEqual(answers, [(200, {"tasks": []})], server.output())

    def test_sigint_exits_zero_and_keeps_what_was_acknowledged(self):
        data = self.make_dir()
        server = self.start(data)
        ids = [self.enqueue(server, "sd", {"n": i})["id"] for i in range(50)]
        os.kill(server.pid, signal.SIGINT)
        self.assertEqual(server.proc.wait(timeout=10), 0, server.output())
        again = self.start(data)
        for i, task_id in enumerate(ids):
            self.assertEqual(self.get_task(again, task_id)["payload"], {"n": i})

    def test_request_waiting_for_a_slow_fsync_is_finished_before_exit(self):
        flag = os.path.join(self.make_dir(), "fault")
        data = self.make_dir()
        server = self.start(data, env={"CONVEYOR_FAULT_FILE": flag})
        with open(flag, "w") as f:
            f.write("slow")  # every fsync takes 2 s
        self.addCleanup(lambda: os.path.exists(flag) and os.remove(flag))
        answers = []

        def enqueue():
            answers.append(server.call("POST", "/v1/queues/sd/tasks", {"payload": "late"},
                                       timeout=20))

        t = threading.Thread(target=enqueue)
        t.start()
        time.sleep(0.3)  # the enqueue is now waiting for its fsync
        code = server.sigterm(timeout=15)
        t.join(timeout=15)
        self.assertEqual(code, 0, server.output())
        self.assertEqual(len(answers), 1)
        status, body = answers[0]
        self.assertEqual(status, 201, body)
        os.remove(flag)
        again = self.start(data)
        self.assertEqual(self.get_task(again, body["id"])["payload"], "late")

    def test_idle_keep_alive_connections_do_not_hold_up_the_exit(self):
        server = self.start(self.make_dir())
        idle = []
        for _ in range(20):
            c = rawhttp.RawClient(server.port)
            c.send(rawhttp.request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response(timeout=5).status, 200)
            idle.append(c)
        started = time.monotonic()
        code = server.sigterm(timeout=10)
        self.assertEqual(code, 0, server.output())
        self.assertLess(time.monotonic() - started, 3.0)
        for c in idle:
            self.assertTrue(c.wait_closed(2.0))
            c.close()

    def test_new_connections_are_refused_while_draining(self):
        flag = os.path.join(self.make_dir(), "fault")
        server = self.start(self.make_dir(), env={"CONVEYOR_FAULT_FILE": flag},
                            extra_args=["--shutdown-timeout-ms", "3000"])
        with open(flag, "w") as f:
            f.write("slow")
        t = threading.Thread(target=lambda: server.call(
            "POST", "/v1/queues/sd/tasks", {"payload": 1}, timeout=20))
        t.start()
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(0.3)  # draining: the enqueue still waits for its 2 s fsync
        with self.assertRaises(OSError):
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
                s.sendall(rawhttp.request_bytes("GET", "/healthz"))
                if not s.recv(1):
                    raise ConnectionResetError("closed without an answer")
        self.assertEqual(server.proc.wait(timeout=10), 0, server.output())
        t.join(timeout=10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
