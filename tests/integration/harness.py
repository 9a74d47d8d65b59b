"""Starts a real `conveyor serve` on a free loopback port for integration tests.

Used by every tests/integration/test_*.py. Standard library only. The binary comes from
the CONVEYOR_BIN environment variable (ctest sets it). Each server is stopped by PID in
stop() / tearDown, so a failing test never leaves a process behind.
"""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest
import uuid


def conveyor_bin():
    path = os.environ.get("CONVEYOR_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "conveyor")
    return os.path.abspath(path)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One conveyor serve process. extra_args are appended to the command line."""

    def __init__(self, extra_args=(), env=None, durability="none"):
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="conveyor-test-")
        args = [conveyor_bin(), "serve", "--listen", f"127.0.0.1:{self.port}",
                "--durability", durability, "--data-dir", self.data_dir]
        args += list(extra_args)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env)
        self._wait_ready()

    def _wait_ready(self, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("conveyor exited early:\n" + self.output())
            try:
                status, _, _ = self.request("GET", "/healthz", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("conveyor did not become ready:\n" + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, headers dict with lower-case names, parsed JSON or raw bytes)."""
        conn = self.connect(timeout)
        try:
            hdrs = dict(headers or {})
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = data
            return resp.status, rh, parsed
        finally:
            conn.close()

    def call(self, method, path, body=None, **kw):
        """Returns (status, parsed JSON)."""
        status, _, parsed = self.request(method, path, body, **kw)
        return status, parsed

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class ServerTestCase(unittest.TestCase):
    """A test case with one fresh server per test class (self.server)."""

    server_args = ()
    durability = "none"

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_args, durability=cls.durability)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def qname(self, prefix="q"):
        """A queue name no other test uses, so tests can share one server."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def call(self, method, path, body=None, timeout=10):
        return self.server.call(method, path, body, timeout=timeout)

    def enqueue(self, queue, payload=None, **fields):
        """Enqueues one task (fields are spec fields) and returns its id; expects 201."""
        spec = dict(fields)
        spec["payload"] = payload
        status, body = self.call("POST", f"/v1/queues/{queue}/tasks", spec)
        self.assertEqual(status, 201, body)
        return body["id"]

    def assertError(self, status, body, expected_status, code=None):
        self.assertEqual(status, expected_status, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body)
        self.assertIsInstance(body["error"].get("code"), str)
        self.assertIsInstance(body["error"].get("message"), str)
        if code is not None:
            self.assertEqual(body["error"]["code"], code, body)
