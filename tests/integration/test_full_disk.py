"""A full or broken disk under every file the store writes (TESTPLAN G.43b, B.8).

test_storage_faults.py fails the WAL only; here the flag file says `enospc-all` or
`eio-all`, which fails every write, sync and creation of every file RocksDB writes (SST
tables, MANIFEST, OPTIONS, WAL), as a real full disk does, and RealTmpfsFullTest fills a
real tmpfs. Pass: no crash, no abort (also not at start-up on a full disk), every refusal is
503 with Retry-After, reads keep answering 200, /healthz says degraded and then ok again,
writes resume once the disk is back, and after a restart every 2xx'd task is there with
its payload byte for byte. A refused (503) task may or may not be there: a request whose
write was in flight when the disk failed may be kept (docs/API.md), so its absence is not
asserted. Random payloads come from a seed printed to stderr (CONVEYOR_TEST_SEED replays it).

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_full_disk.py
RealTmpfsFullTest needs root (mount -t tmpfs); it skips itself otherwise.
"""
import errno
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import (  # noqa: E402
    READY_TIMEOUT, DurableServer, DurableTestCase, clean_env, serve_args)
from harness import free_port  # noqa: E402

SEED = int(os.environ.get("CONVEYOR_TEST_SEED", str(int(time.time()) % 100000)))
sys.stderr.write(f"test_full_disk: seed {SEED} (CONVEYOR_TEST_SEED)\n")

Q = "fullq"
FAULT_PHASE_S = 2.0       # how long writes are hammered while the disk fails
RECOVERY_TIMEOUT_S = 10.0  # flag removed -> 201 and /healthz ok within this
TMPFS_RECOVERY_S = 15.0
REFUSAL_CODES = ("storage_unavailable", "storage_timeout")
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def tail(text, lines=20):
    return "\n".join(text.splitlines()[-lines:])


def how_it_ended(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return f"signal {-rc} ({signal.Signals(-rc).name})"
        except ValueError:
            return f"signal {-rc}"
    return f"exit {rc}"


class Blob:
    """Deterministic payload strings from one seeded random block: payload(n) is unique per
    marker and cheap to regenerate for the byte-for-byte check."""

    def __init__(self, rng, size):
        self.base = "".join(rng.choices(LETTERS, k=size * 4))
        self.size = size

    def payload(self, marker, n):
        start = (n * 7919) % (len(self.base) - self.size)
        return f"{marker}:" + self.base[start:start + self.size]


class FullDiskCase(DurableTestCase):
    """Shared helpers: requests that record answers instead of raising."""

    def setUp(self):
        self.rng = random.Random(f"{SEED}-{self.id()}")
        self.accepted = {}    # task id -> payload (every 2xx'd task)
        self.answers = []     # (what, status or exception text) of every write
        self.codes = {}       # status -> count, for the failure messages

    def send(self, server, method, path, body=None, timeout=10):
        """(status, headers, body), or (None, None, 'exception text') when no answer came
        (connection reset, timeout, crash)."""
        try:
            return server.request(method, path, body, timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            return None, None, f"{type(e).__name__}: {e}"

    def note(self, status):
        self.codes[status] = self.codes.get(status, 0) + 1

    def assertRefusalOrOk(self, server, what, status, headers, body, ok=(201,)):
        """A write's answer during a storage fault: ok, or 503 + Retry-After + code."""
        self.note(status)
        self.answers.append((what, status))
        if status is None:
            self.fail(f"{what}: no answer ({body}); server alive={server.alive()} "
                      f"rc={server.proc.returncode}\nserver output tail:\n"
                      f"{tail(server.output())}")
        if status in ok:
            return True
        self.assertEqual(status, 503, f"{what}: {status} {body}")
        self.assertIn("retry-after", headers, f"{what}: 503 without Retry-After: {body}")
        self.assertIsInstance(body, dict, body)
        self.assertIn(body.get("error", {}).get("code"), REFUSAL_CODES, body)
        return False

    def enqueue_one(self, server, payload, what="enqueue"):
        status, headers, body = self.send(server, "POST", f"/v1/queues/{Q}/tasks",
                                          {"payload": payload})
        if self.assertRefusalOrOk(server, what, status, headers, body):
            self.accepted[body["id"]] = payload
            return True
        return False

    def enqueue_batch(self, server, payloads, what="batch"):
        status, headers, body = self.send(server, "POST", f"/v1/queues/{Q}/tasks",
                                          {"tasks": [{"payload": p} for p in payloads]},
                                          timeout=20)
        if self.assertRefusalOrOk(server, what, status, headers, body):
            self.assertEqual(len(body["ids"]), len(payloads), body)
            for i, p in zip(body["ids"], payloads):
                self.accepted[i] = p
            return True
        return False

    def assertRead(self, server, task_id=None):
        """GET of an earlier task (payload intact) and GET /v1/queues: 200."""
        if task_id is not None:
            status, _, body = self.send(server, "GET", f"/v1/tasks/{task_id}")
            self.assertEqual(status, 200, f"GET task {task_id} while the disk fails: {body}")
            self.assertEqual(body["payload"], self.accepted[task_id],
                             f"task {task_id} payload changed")
        status, _, body = self.send(server, "GET", "/v1/queues")
        self.assertEqual(status, 200, f"GET /v1/queues while the disk fails: {body}")

    def health(self, server):
        status, _, body = self.send(server, "GET", "/healthz")
        self.assertEqual(status, 200, f"/healthz: {body}")
        self.assertIsInstance(body, dict, body)
        return body.get("status")

    def assertAlive(self, server, when):
        if not server.alive():
            self.fail(f"server died {when}: {how_it_ended(server.proc.returncode)}\n"
                      f"last 20 lines of its output:\n{tail(server.output())}")

    def wait_writable(self, server, make_payload, timeout):
        """Enqueues until a 201 comes (each 503 must be a proper refusal)."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            n += 1
            if self.enqueue_one(server, make_payload(n), "enqueue after the fault"):
                return n
            self.assertAlive(server, "while recovering")
            if time.monotonic() > deadline:
                self.fail(f"still 503 {timeout} s after the disk came back; answers "
                          f"{self.codes}\nserver output tail:\n{tail(server.output())}")
            time.sleep(0.25)

    def wait_health_ok(self, server, timeout):
        deadline = time.monotonic() + timeout
        while True:
            h = self.health(server)
            if h == "ok":
                return
            if time.monotonic() > deadline:
                self.fail(f"/healthz still {h!r} {timeout} s after the disk came back")
            time.sleep(0.2)

    def stop_cleanly(self, server):
        rc = server.sigterm(timeout=15)
        self.assertIsNotNone(rc, "SIGTERM did not stop the server in 15 s (SIGKILLed)\n"
                                 + tail(server.output()))
        self.assertEqual(rc, 0, f"SIGTERM exit code {rc}\n{tail(server.output())}")

    def assertAllAccepted(self, server):
        """Every 2xx'd task present, payload byte for byte (payloads are JSON strings,
        so equal strings are equal bytes)."""
        lost, changed = [], []
        for task_id, payload in self.accepted.items():
            status, _, body = self.send(server, "GET", f"/v1/tasks/{task_id}", timeout=30)
            if status != 200:
                lost.append((task_id, status))
            elif body.get("payload") != payload:
                changed.append(task_id)
        self.assertFalse(lost, f"{len(lost)} of {len(self.accepted)} 2xx'd tasks lost "
                               f"across the restart: {lost[:5]}")
        self.assertFalse(changed, f"payloads changed across the restart: {changed[:5]}")


class AllFilesFaultCase(FullDiskCase):
    """TESTPLAN G.43b with injected faults on every file: writes refused properly, reads
    served, recovery once the flag file is gone, nothing 2xx'd lost after a restart."""

    KIND = "enospc-all"

    def setUp(self):
        super().setUp()
        self.dir = self.make_dir()
        self.flag = os.path.join(self.make_dir("conveyor-flag-"), "fail-writes")
        self.env = {"CONVEYOR_FAULT_FILE": self.flag}
        self.server = self.start(self.dir, env=self.env)
        self.small = Blob(self.rng, 2048)
        self.large = Blob(self.rng, 500_000)

    def before_fault(self):
        s = self.server
        for i in range(100):
            self.assertTrue(self.enqueue_one(s, self.small.payload(f"pre{i}", i)))
        for b in range(2):
            self.assertTrue(self.enqueue_batch(
                s, [self.small.payload(f"preb{b}-{j}", 100 + 50 * b + j) for j in range(50)]))
        pre_ids = sorted(self.accepted)
        self.assertEqual(len(pre_ids), 200)
        leased = self.lease(s, Q, n=5, lease_ms=120000)
        self.assertEqual(len(leased), 5)
        done = leased[0]
        status, r = s.call("POST", f"/v1/tasks/{done['id']}/ack",
                           {"lease": done["lease"]["token"], "result": "pre-fault"})
        self.assertEqual(status, 200, r)
        time.sleep(0.3)  # leases are written without a fsync wait; let them reach the WAL
        return pre_ids, done["id"]

    def test_every_file_fails(self):
        s = self.server
        pre_ids, acked = self.before_fault()
        with open(self.flag, "w") as f:
            f.write(self.KIND + "\n")
        self.codes = {}
        # Files RocksDB must create or flush while the disk fails: a config change and a
        # burst of large payloads (each ~500 KB, under the 1 MiB body limit).
        status, headers, body = self.send(s, "PUT", f"/v1/queues/{Q}", {"max_attempts": 7})
        self.assertRefusalOrOk(s, "PUT queue config", status, headers, body, ok=(200,))
        for k in range(8):
            self.enqueue_one(s, self.large.payload(f"big{k}", k), "500 KB enqueue")
        self.assertAlive(s, "after the large-payload burst")

        sys.stderr.write(f"{self.KIND}: PUT config {status}, 500 KB burst {self.codes}\n")
        self.codes = {}
        degraded_seen = False
        deadline = time.monotonic() + FAULT_PHASE_S
        n = 0
        while time.monotonic() < deadline:
            n += 1
            self.enqueue_one(s, self.small.payload(f"f{n}", 1000 + n), "enqueue")
            self.enqueue_batch(s, [self.small.payload(f"fb{n}-{j}", 2000 + 50 * n + j)
                                   for j in range(50)], "batch of 50")
            self.assertAlive(s, f"during the {self.KIND} fault")
            self.assertRead(s, self.rng.choice(pre_ids))
            if self.health(s) == "degraded":
                degraded_seen = True
        refused = self.codes.get(503, 0)
        sys.stderr.write(f"{self.KIND}: during the fault {self.codes} over {n} rounds\n")
        self.assertGreater(refused, 0, f"no write refused while every file fails: {self.codes}")
        self.assertTrue(degraded_seen, f"/healthz never said degraded during {self.KIND}")

        os.remove(self.flag)
        self.wait_writable(s, lambda i: self.small.payload(f"after{i}", 900000 + i),
                           RECOVERY_TIMEOUT_S)
        self.wait_health_ok(s, RECOVERY_TIMEOUT_S)
        self.assertTrue(self.enqueue_batch(
            s, [self.small.payload(f"afterb{j}", 950000 + j) for j in range(50)]))
        status, r = s.call("PUT", f"/v1/queues/{Q}", {"max_attempts": 11})
        self.assertEqual(status, 200, r)
        self.stop_cleanly(s)

        s = self.server = self.start(self.dir)
        self.assertAllAccepted(s)
        self.assertEqual(self.get_task(s, acked)["state"], "succeeded")
        self.assertEqual(self.get_task(s, acked)["result"], "pre-fault")
        # The PUT during the fault (200 or 503) was overwritten by the 2xx'd one after it.
        self.assertEqual(self.queue_stats(s, Q)["config"]["max_attempts"], 11)


class EnospcAllTest(AllFilesFaultCase):
    KIND = "enospc-all"


class EioAllTest(AllFilesFaultCase):
    KIND = "eio-all"


del AllFilesFaultCase  # only the concrete kinds run


class StartOnFullDiskTest(FullDiskCase):
    """TESTPLAN G.43b "no abort, also not at start": a start on a disk where every file
    write fails either serves (reads work, writes 503) or exits non-zero with a message;
    it never dies by a signal. The next start on a good disk has every task."""

    def observe_start(self, data_dir, env, timeout=READY_TIMEOUT):
        """Starts serve; returns ('serves', proc, port, log) or ('exited', rc, output)."""
        port = free_port()
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        proc = subprocess.Popen(serve_args(data_dir, port, "sync"), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=clean_env(env))
        self.addCleanup(self._kill, proc)
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                self.fail(f"start on a full disk neither served nor exited in {timeout} s")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return "serves", proc, port, log
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        log.seek(0)
        return "exited", proc.returncode, log.read().decode("utf-8", "replace")

    @staticmethod
    def _kill(proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def test_start_with_every_file_failing(self):
        data_dir = self.make_dir()
        flag = os.path.join(self.make_dir("conveyor-flag-"), "fail-writes")
        env = {"CONVEYOR_FAULT_FILE": flag}
        blob = Blob(self.rng, 2048)
        s = self.start(data_dir, env=env)
        for i in range(5):
            self.assertTrue(self.enqueue_one(s, blob.payload(f"pre{i}", i)))
        self.stop_cleanly(s)

        with open(flag, "w") as f:
            f.write("enospc-all\n")
        outcome = self.observe_start(data_dir, env)
        if outcome[0] == "serves":
            _, proc, port, log = outcome
            srv = DurableServer.__new__(DurableServer)  # a handle on the running process
            srv.port, srv.proc, srv.log, srv.data_dir = port, proc, log, data_dir
            h = self.health(srv)
            for task_id in self.accepted:
                status, _, body = self.send(srv, "GET", f"/v1/tasks/{task_id}")
                self.assertEqual(status, 200, f"GET on a full disk: {status} {body}")
                self.assertEqual(body["payload"], self.accepted[task_id])
            status, headers, body = self.send(srv, "POST", f"/v1/queues/{Q}/tasks",
                                              {"payload": "on-full-disk"})
            self.assertRefusalOrOk(srv, "enqueue on a full disk", status, headers, body, ok=())
            rc = srv.sigterm(timeout=15)
            sys.stderr.write(f"start on enospc-all: serves (healthz {h!r}, writes {status}); "
                             f"SIGTERM exit {rc}\n")
            self.assertIsNotNone(rc, "did not stop on SIGTERM")
            self.assertGreaterEqual(rc, 0, f"{how_it_ended(rc)}\n{tail(srv.output())}")
        else:
            _, rc, out = outcome
            last = tail(out, 3)
            sys.stderr.write(f"start on enospc-all: exited {rc}: {last}\n")
            self.assertGreaterEqual(rc, 0, f"start on a full disk: {how_it_ended(rc)}\n"
                                           f"{tail(out)}")
            self.assertNotEqual(rc, 0, f"start on a full disk exited 0:\n{tail(out)}")
            self.assertRegex(out, r"(?i)no space|space left|ENOSPC|full",
                             f"no clear message on stderr:\n{tail(out)}")

        os.remove(flag)
        s = self.start(data_dir, env=env)
        self.assertAllAccepted(s)
        self.assertTrue(self.enqueue_one(s, "after-full-start"))
        self.stop_cleanly(s)


class RealTmpfsFullTest(FullDiskCase):
    """TESTPLAN B.8 / G.43b on a real file system: a 256 MiB tmpfs filled to the last few
    MiB, then filled by enqueues. Needs root."""

    SIZE = "256m"
    LEAVE_FREE = 6 << 20
    TASK_BYTES = 64 * 1024
    MAX_SECONDS = 30.0
    MAX_REQUESTS = 2000
    REFUSING_FOR_S = 2.0

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs")
        if not shutil.which("mount") or not shutil.which("umount"):
            self.skipTest("mount/umount not found")
        self.mnt = tempfile.mkdtemp(prefix="conveyor-tmpfs-")
        self.addCleanup(shutil.rmtree, self.mnt, True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs",
                            self.mnt], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"mount -t tmpfs failed: {r.stderr.strip()}")
        self.addCleanup(self._unmount)
        self.servers = []
        self.addCleanup(self._kill_servers)  # runs before _unmount (cleanups are LIFO)
        self.data = os.path.join(self.mnt, "data")
        os.makedirs(self.data)
        self.filler = os.path.join(self.mnt, "filler")
        self.blob = Blob(self.rng, self.TASK_BYTES)

    def _kill_servers(self):
        for s in self.servers:
            s.kill9()

    def _unmount(self):
        r = subprocess.run(["umount", self.mnt], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", self.mnt], capture_output=True, text=True)

    def free_bytes(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def fill(self):
        """Zeros in 1 MiB blocks until ENOSPC, then truncate so ~LEAVE_FREE is free."""
        block = b"\0" * (1 << 20)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(1024):
                try:
                    if os.write(fd, block) < len(block):
                        continue  # partial: the next write says ENOSPC
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
            else:
                self.fail("the tmpfs never filled")
            size = os.fstat(fd).st_size
            cut = self.LEAVE_FREE - self.free_bytes()
            if cut > 0:
                os.ftruncate(fd, max(0, size - cut))
        finally:
            os.close(fd)
        return self.free_bytes()

    def test_fill_tmpfs_by_enqueues(self):
        s = self.start(self.data, env={})
        self.servers.append(s)
        for i in range(5):
            self.assertTrue(self.enqueue_one(s, self.blob.payload(f"pre{i}", i)))
        pre_ids = sorted(self.accepted)
        st = os.statvfs(self.mnt)
        store_mib = (st.f_blocks - st.f_bfree) * st.f_frsize >> 20
        self.codes = {}
        free = self.fill()
        sys.stderr.write(f"tmpfs: {free >> 10} KiB free after filling "
                         f"(the store used {store_mib} MiB)\n")

        started = time.monotonic()
        first_refusal = None
        requests = 0
        n = 0
        while True:
            now = time.monotonic()
            if first_refusal is not None and now - first_refusal >= self.REFUSING_FOR_S:
                break
            if now - started > self.MAX_SECONDS or requests >= self.MAX_REQUESTS:
                self.fail(f"no 503 for {self.REFUSING_FOR_S} s within {self.MAX_SECONDS} s / "
                          f"{self.MAX_REQUESTS} requests: answers {self.codes}, "
                          f"{self.free_bytes() >> 10} KiB free\n{tail(s.output())}")
            payloads = []
            for _ in range(10):
                n += 1
                payloads.append(self.blob.payload(f"t{n}", n))
            requests += 1
            ok = self.enqueue_batch(s, payloads, "batch of 10 x 64 KB")
            if not ok and first_refusal is None:
                first_refusal = time.monotonic()
            self.assertAlive(s, "while the tmpfs is full")
            if requests % 3 == 0 or first_refusal is not None:
                requests += 2
                self.assertRead(s, self.rng.choice(pre_ids))
        sys.stderr.write(f"tmpfs full: {self.codes} in {requests} requests, "
                         f"{time.monotonic() - started:.1f} s, first 503 after "
                         f"{first_refusal - started:.1f} s\n")

        os.remove(self.filler)
        self.wait_writable(s, lambda i: self.blob.payload(f"after{i}", 10 ** 6 + i),
                           TMPFS_RECOVERY_S)
        self.stop_cleanly(s)

        s = self.start(self.data, env={})
        self.servers.append(s)
        self.assertAllAccepted(s)
        sys.stderr.write(f"tmpfs: {len(self.accepted)} 2xx'd tasks all present after restart\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
