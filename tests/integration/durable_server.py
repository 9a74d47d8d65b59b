"""Helpers for the durability tests: a `conveyor serve` on a data dir the test chooses.

harness.Server makes a fresh temp data dir for every start; crash tests must restart on
the same dir, so DurableServer (a harness.Server) takes the dir as an argument and adds
kill -9 / SIGTERM by PID. DurableTestCase owns the dirs and servers of one test and stops
every process it started (by PID) and removes every dir in cleanup. Standard library only.

Used by test_durability.py and test_storage_faults.py.
"""
import hashlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, conveyor_bin, free_port  # noqa: E402

READY_TIMEOUT = 15.0   # seconds for a (re)start to answer /healthz on a busy machine
EXIT_TIMEOUT = 15.0    # seconds for a refused start to exit
RECOVERED_RE = re.compile(
    r"conveyor: recovered (\d+) tasks in (\d+) queues from (.*) in ([0-9.]+) s")

TASK_FIELDS = ("id", "queue", "payload", "priority", "state", "attempts", "max_attempts",
               "created_at", "run_at", "deadline", "result", "progress", "errors",
               "dead_reason")
STATES = ("scheduled", "ready", "leased", "succeeded", "dead", "canceled")


# CONVEYOR_PAYLOAD_CACHE_BYTES=0 is set by the sanitized ctest run: the whole suite then
# also runs with every payload read back from storage.
KEPT_SETTINGS = ("CONVEYOR_BIN", "CONVEYOR_PAYLOAD_CACHE_BYTES")


def clean_env(extra=None):
    """The test's environment without CONVEYOR_* settings (a stray CONVEYOR_FAULT_FILE or
    CONVEYOR_DURABILITY would change what is tested)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONVEYOR_") or k in KEPT_SETTINGS}
    if extra:
        env.update(extra)
    return env


def serve_args(data_dir, port, durability, extra_args=()):
    return [conveyor_bin(), "serve", "--listen", f"127.0.0.1:{port}",
            "--durability", durability, "--data-dir", data_dir] + list(extra_args)


class DurableServer(Server):
    """One `conveyor serve` on data_dir (kept after it stops). Ready when __init__ returns."""

    def __init__(self, data_dir, durability="sync", env=None, extra_args=()):
        # Deliberately not calling Server.__init__: it would make its own temp dir.
        self.port = free_port()
        self.data_dir = data_dir
        self.durability = durability
        self.log = tempfile.TemporaryFile()
        started = time.monotonic()
        self.proc = subprocess.Popen(serve_args(data_dir, self.port, durability, extra_args),
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env(env))
        self._wait_ready(READY_TIMEOUT)
        self.ready_seconds = time.monotonic() - started

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        """SIGKILL by PID; returns once the process is gone."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def sigterm(self, timeout=10.0):
        """SIGTERM by PID; returns the exit code, or None if it had to be SIGKILLed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def recovered(self):
        """(tasks, queues, seconds) from the start-up line, or None when absent."""
        m = RECOVERED_RE.search(self.output())
        if not m:
            return None
        return int(m.group(1)), int(m.group(2)), float(m.group(4))

    def raw(self, method, path, body=None, timeout=10):
        """Like request() but sends body bytes/str as they are (exact payload bytes)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        return self.request(method, path, body=body,
                            headers={"Content-Type": "application/json"}, timeout=timeout)


def run_serve_to_exit(data_dir, durability="sync", env=None, timeout=EXIT_TIMEOUT):
    """Runs a serve that is expected to refuse to start. Returns (exit code, output text).
    Exit code None means it did not exit: it answered /healthz (it started serving) or was
    still running after timeout; either way it is then killed by PID and the output ends
    with a note saying which."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(serve_args(data_dir, port, durability),
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env(env))
        note = None
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    note = f"[still running after {timeout} s; killed]"
                    break
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        note = "[it started serving; killed]"
                        break
                except OSError:
                    pass
                finally:
                    conn.close()
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    if note:
        return None, out + note
    return proc.returncode, out


def dir_snapshot(path):
    """{relative path: (sha256 of contents or 'dir', mtime_ns)} of everything under path."""
    snap = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            full = os.path.join(root, d)
            snap[os.path.relpath(full, path) + "/"] = ("dir", None)
        for f in files:
            full = os.path.join(root, f)
            with open(full, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            snap[os.path.relpath(full, path)] = (digest, os.stat(full).st_mtime_ns)
    return snap


def now_ms():
    return int(time.time() * 1000)


class DurableTestCase(unittest.TestCase):
    """Per test: make_dir() and start() register cleanup (servers stopped by PID, dirs
    removed)."""

    def make_dir(self, prefix="conveyor-dur-"):
        path = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def start(self, data_dir, durability="sync", env=None, extra_args=()):
        server = DurableServer(data_dir, durability, env, extra_args)
        self.addCleanup(server.log.close)
        self.addCleanup(server.kill9)
        return server

    # ---- API helpers (all take the server explicitly: tests restart it) ----

    def enqueue(self, server, queue, payload=None, expect=201, **fields):
        spec = dict(fields)
        spec["payload"] = payload
        status, body = server.call("POST", f"/v1/queues/{queue}/tasks", spec)
        self.assertEqual(status, expect, body)
        return body

    def enqueue_raw(self, server, queue, text, expect=201):
        status, _, body = server.raw("POST", f"/v1/queues/{queue}/tasks", text)
        self.assertEqual(status, expect, body)
        return body

    def lease(self, server, queue, n=1, lease_ms=None, wait_ms=0):
        req = {"max": n, "wait_ms": wait_ms}
        if lease_ms is not None:
            req["lease_ms"] = lease_ms
        status, body = server.call("POST", f"/v1/queues/{queue}/lease", req,
                                   timeout=10 + wait_ms / 1000.0)
        self.assertEqual(status, 200, body)
        return body["tasks"]

    def get_task(self, server, task_id, expect=200):
        status, body = server.call("GET", f"/v1/tasks/{task_id}")
        self.assertEqual(status, expect, body)
        return body

    def list_tasks(self, server, queue, state=None):
        tasks, after = [], None
        for _ in range(100000):
            path = f"/v1/queues/{queue}/tasks?limit=1000"
            if state:
                path += f"&state={state}"
            if after is not None:
                path += f"&after={after}"
            status, body = server.call("GET", path, timeout=30)
            self.assertEqual(status, 200, body)
            self.assertIsInstance(body, dict, "listing is not valid JSON")
            tasks += body["tasks"]
            nxt = body.get("next_after")
            if nxt is None:
                return tasks
            self.assertTrue(after is None or nxt > after, f"next_after went back: {nxt}")
            after = nxt
        self.fail("listing did not end")

    def queue_stats(self, server, queue):
        status, body = server.call("GET", f"/v1/queues/{queue}")
        self.assertEqual(status, 200, body)
        return body

    def assertTaskComplete(self, task):
        """Every SPEC field present with a sane type."""
        for field in TASK_FIELDS:
            self.assertIn(field, task, f"task lacks {field}: {task}")
        self.assertIsInstance(task["id"], int)
        self.assertIn(task["state"], STATES, task)
        self.assertIsInstance(task["attempts"], int)
        self.assertIsInstance(task["max_attempts"], int)
        self.assertIsInstance(task["created_at"], int)
        self.assertIsInstance(task["run_at"], int)
        self.assertIsInstance(task["errors"], list)
        for e in task["errors"]:
            self.assertTrue(set(e) >= {"at", "attempt", "message"}, task)
        if task["state"] == "leased":
            self.assertIn("lease", task, task)
            self.assertIn("expires_at", task["lease"], task)
        self.assertNotIn("token", task.get("lease") or {}, "GET must never show the token")
