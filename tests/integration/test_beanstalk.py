"""The beanstalkd protocol listener (`serve --beanstalk`), through the real binary:
commands and their replies, a reserved job belonging to its connection, one store seen
through both doors (beanstalkd and HTTP), bad input, and a differential run of one script
against Debian's beanstalkd 1.12 (when it is installed) and Conveyor. TESTPLAN D.29."""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beanstalk_client import Beanstalk, start_beanstalkd, yaml_dict  # noqa: E402
from durable_server import DurableTestCase  # noqa: E402
from harness import Server, conveyor_bin, free_port  # noqa: E402


class BeanstalkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bport = free_port()
        cls.server = Server(["--beanstalk", f"127.0.0.1:{cls.bport}"], durability="sync")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self):
        c = Beanstalk(self.bport)
        self.addCleanup(c.close)
        return c

    def tube(self, c, name):
        self.assertEqual(c.cmd(f"use {name}")[0], f"USING {name}".encode())
        self.assertEqual(c.cmd(f"watch {name}")[0], b"WATCHING 2")
        self.assertEqual(c.cmd("ignore default")[0], b"WATCHING 1")

    def test_put_reserve_delete_in_priority_order_across_watched_tubes(self):
        c = self.client()
        c.cmd("use prio-a")
        low = c.put(b"low", pri=100)
        c.cmd("use prio-b")
        urgent = c.put(b"urgent", pri=1)
        c.cmd("watch prio-a")
        c.cmd("watch prio-b")
        c.cmd("ignore default")
        line, body = c.cmd("reserve-with-timeout 0")
        self.assertEqual((line, body), (f"RESERVED {urgent} 6".encode(), b"urgent"))
        line, body = c.cmd("reserve")
        self.assertEqual((line, body), (f"RESERVED {low} 3".encode(), b"low"))
        self.assertEqual(c.cmd(f"delete {urgent}")[0], b"DELETED")
        self.assertEqual(c.cmd(f"delete {urgent}")[0], b"NOT_FOUND")
        self.assertEqual(c.cmd(f"delete {low}")[0], b"DELETED")
        self.assertEqual(c.cmd("reserve-with-timeout 0")[0], b"TIMED_OUT")

    def test_delay_peek_kick_release_bury_and_stats_job(self):
        c = self.client()
        self.tube(c, "jobs-life")
        delayed = c.put(b"later", pri=5, delay=100)
        self.assertEqual(c.cmd("peek-delayed"), (f"FOUND {delayed} 5".encode(), b"later"))
        self.assertEqual(yaml_dict(c.cmd(f"stats-job {delayed}")[1])["state"], "delayed")
        self.assertEqual(c.cmd("kick 10")[0], b"KICKED 1")
        line, _ = c.cmd("reserve-with-timeout 1")
        self.assertEqual(line, f"RESERVED {delayed} 5".encode())
        stats = yaml_dict(c.cmd(f"stats-job {delayed}")[1])
        self.assertEqual((stats["state"], stats["tube"], stats["pri"]),
                         ("reserved", "jobs-life", "5"))
        self.assertEqual(c.cmd(f"touch {delayed}")[0], b"TOUCHED")
        self.assertEqual(c.cmd(f"release {delayed} 7 0")[0], b"RELEASED")
        self.assertEqual(yaml_dict(c.cmd(f"stats-job {delayed}")[1])["pri"], "7")
        self.assertEqual(c.cmd(f"release {delayed} 7 0")[0], b"NOT_FOUND")  # not reserved
        c.cmd("reserve-with-timeout 1")
        self.assertEqual(c.cmd(f"bury {delayed} 9")[0], b"BURIED")
        self.assertEqual(c.cmd("peek-buried"), (f"FOUND {delayed} 5".encode(), b"later"))
        self.assertEqual(yaml_dict(c.cmd(f"stats-job {delayed}")[1])["state"], "buried")
        self.assertEqual(c.cmd(f"kick-job {delayed}")[0], b"KICKED")
        self.assertEqual(c.cmd(f"kick-job {delayed}")[0], b"NOT_FOUND")
        self.assertEqual(c.cmd("peek-ready")[0], f"FOUND {delayed} 5".encode())
        self.assertEqual(c.cmd(f"delete {delayed}")[0], b"DELETED")
        self.assertEqual(c.cmd(f"peek {delayed}")[0], b"NOT_FOUND")

    def test_a_reserved_job_belongs_to_its_connection_until_it_closes(self):
        a, b = self.client(), self.client()
        self.tube(a, "owned")
        self.tube(b, "owned")
        job = a.put(b"mine", pri=10)
        self.assertEqual(yaml_dict(a.cmd("stats-tube owned")[1])["current-jobs-urgent"], "1")
        self.assertEqual(a.cmd("reserve-with-timeout 0")[0], f"RESERVED {job} 4".encode())
        self.assertEqual(b.cmd(f"delete {job}")[0], b"NOT_FOUND")
        self.assertEqual(b.cmd(f"release {job} 0 0")[0], b"NOT_FOUND")
        self.assertEqual(b.cmd(f"touch {job}")[0], b"NOT_FOUND")
        self.assertEqual(b.cmd(f"peek {job}")[0], f"FOUND {job} 4".encode())
        # A waiting reserve on b gets the job the moment a goes away.
        b.send(b"reserve-with-timeout 5\r\n")
        time.sleep(0.2)
        a.close()
        started = time.time()
        self.assertEqual(b.read_reply()[0], f"RESERVED {job} 4".encode())
        self.assertLess(time.time() - started, 2.0)
        self.assertEqual(b.cmd(f"delete {job}")[0], b"DELETED")

    def test_ttr_expiry_and_deadline_soon(self):
        c = self.client()
        self.tube(c, "ttr")
        job = c.put(b"slow", ttr=2)
        self.assertEqual(c.cmd("reserve")[0], f"RESERVED {job} 4".encode())
        started = time.time()
        self.assertEqual(c.cmd("reserve-with-timeout 10")[0], b"DEADLINE_SOON")
        self.assertLess(time.time() - started, 2.5)
        time.sleep(1.5)  # past the ttr: the job is ready again
        self.assertEqual(c.cmd("reserve-with-timeout 2")[0], f"RESERVED {job} 4".encode())
        self.assertEqual(c.cmd(f"delete {job}")[0], b"DELETED")
        # A job whose ttr ran out is no longer the connection's: no DEADLINE_SOON for it.
        gone = c.put(b"gone", ttr=1)
        self.assertEqual(c.cmd("reserve")[0], f"RESERVED {gone} 4".encode())
        time.sleep(1.3)
        other = self.client()
        self.assertEqual(other.cmd(f"delete {gone}")[0], b"DELETED")  # ready again: anyone's
        started = time.time()
        self.assertEqual(c.cmd("reserve-with-timeout 1")[0], b"TIMED_OUT")
        self.assertGreater(time.time() - started, 0.8)
        self.assertEqual(yaml_dict(c.cmd("stats")[1])["job-timeouts"] != "0", True)

    def test_pause_tube_delays_reserves_and_reserve_job_takes_any_job(self):
        c = self.client()
        self.tube(c, "paused")
        job = c.put(b"wait")
        self.assertEqual(c.cmd("pause-tube paused 2")[0], b"PAUSED")
        stats = yaml_dict(c.cmd("stats-tube paused")[1])
        self.assertEqual(stats["pause"], "2")
        self.assertEqual((stats["current-using"], stats["current-watching"]), ("1", "1"))
        # A tube only watched exists for stats-tube and list-tubes, as in beanstalkd.
        watcher = self.client()
        self.assertEqual(watcher.cmd("watch only-watched")[0], b"WATCHING 2")
        self.assertEqual(yaml_dict(c.cmd("stats-tube only-watched")[1])["current-watching"], "1")
        self.assertIn(b"- only-watched\n", c.cmd("list-tubes")[1])
        watcher.send(b"reserve\r\n")
        time.sleep(0.3)
        self.assertEqual(yaml_dict(c.cmd("stats-tube only-watched")[1])["current-waiting"], "1")
        watcher.close()
        time.sleep(0.3)
        self.assertEqual(c.cmd("stats-tube only-watched")[0], b"NOT_FOUND")
        self.assertEqual(c.cmd("reserve-with-timeout 0")[0], b"TIMED_OUT")
        started = time.time()
        self.assertEqual(c.cmd("reserve-with-timeout 5")[0], f"RESERVED {job} 4".encode())
        self.assertGreater(time.time() - started, 1.0)
        self.assertEqual(c.cmd(f"release {job} 0 0")[0], b"RELEASED")
        self.assertEqual(c.cmd("pause-tube paused 60")[0], b"PAUSED")
        self.assertEqual(c.cmd("pause-tube paused 0")[0], b"PAUSED")  # unpause at once
        self.assertEqual(c.cmd("reserve-with-timeout 0")[0], f"RESERVED {job} 4".encode())
        self.assertEqual(c.cmd(f"bury {job} 1")[0], b"BURIED")
        self.assertEqual(c.cmd("pause-tube never-seen-tube 5")[0], b"NOT_FOUND")
        # reserve-job: a buried, delayed or ready job, whichever tube and pause.
        other = self.client()
        self.assertEqual(other.cmd(f"reserve-job {job}")[0], f"RESERVED {job} 4".encode())
        self.assertEqual(c.cmd(f"reserve-job {job}")[0], b"NOT_FOUND")  # reserved already
        self.assertEqual(other.cmd(f"delete {job}")[0], b"DELETED")
        self.assertEqual(other.cmd("reserve-job 99999999")[0], b"NOT_FOUND")

    def rss(self):
        with open(f"/proc/{self.server.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def test_a_thousand_connections_and_a_client_that_never_reads(self):
        many = []
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", self.bport), timeout=10)
            many.append(s)
            self.addCleanup(s.close)
        for s in many[::50]:
            s.sendall(b"list-tube-used\r\n")
        for s in many[::50]:
            self.assertEqual(s.recv(64), b"USING default\r\n")
        # A client that pipelines peeks of a 64 KiB job without reading: the server stops
        # reading it once its replies back up, so memory stays bounded and others are served.
        c = self.client()
        self.tube(c, "no-reader")
        job = c.put(b"y" * 65536)
        before = self.rss()
        greedy = socket.create_connection(("127.0.0.1", self.bport), timeout=10)
        self.addCleanup(greedy.close)
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.settimeout(0.05)
        request = f"peek {job}\r\n".encode() * 1000
        sent = 0
        deadline = time.time() + 10
        while time.time() < deadline and sent < 200 * len(request):
            try:
                sent += greedy.send(request)
            except (socket.timeout, BlockingIOError):
                break
        grown = self.rss() - before
        # 200,000 peeks would be 13 GB of replies; what is held is the socket buffers and one
        # connection's 64 KiB of pending replies.
        self.assertLess(grown, 64 << 20, f"RSS grew {grown >> 20} MiB")
        self.assertEqual(c.cmd("list-tube-used")[0], b"USING no-reader")
        self.assertEqual(c.cmd(f"delete {job}")[0], b"DELETED")

    def test_one_store_two_doors(self):
        c = self.client()
        self.tube(c, "doors")
        body = b"bin\r\n\x00\xff\xfe end"
        job = c.put(body)
        status, task = self.server.call("GET", f"/v1/tasks/{job}")
        self.assertEqual(status, 200, task)
        self.assertEqual(task["payload_encoding"], "base64")
        self.assertEqual(base64.b64decode(task["payload"]), body)
        status, leased = self.server.call("POST", "/v1/queues/doors/lease", {"max": 1})
        self.assertEqual(leased["tasks"][0]["id"], job)
        token = leased["tasks"][0]["lease"]["token"]
        status, _ = self.server.call("POST", f"/v1/tasks/{job}/ack", {"lease": token})
        self.assertEqual(status, 200)
        self.assertEqual(c.cmd(f"peek {job}")[0], b"NOT_FOUND")
        # Tasks enqueued over HTTP: a JSON string is the body's text, anything else its JSON.
        status, made = self.server.call("POST", "/v1/queues/doors/tasks",
                                        {"payload": "héllo\r\n", "priority": 10})
        self.assertEqual(status, 201)
        line, data = c.cmd("reserve-with-timeout 1")
        self.assertEqual((line.split()[1], data), (str(made["id"]).encode(), "héllo\r\n".encode()))
        self.assertEqual(c.cmd(f"delete {made['id']}")[0], b"DELETED")
        self.server.call("POST", "/v1/queues/doors/tasks", {"payload": {"a": [1, 2]}})
        self.assertEqual(json.loads(c.cmd("reserve-with-timeout 1")[1]), {"a": [1, 2]})
        # /metrics counts the beanstalkd commands like HTTP requests.
        status, _, page = self.server.request("GET", "/metrics")
        text = page.decode() if isinstance(page, bytes) else str(page)
        puts = re.search(r'^conveyor_beanstalk_commands_total\{command="put"\} (\d+)$', text, re.M)
        self.assertIsNotNone(puts, text[-3000:])
        self.assertGreaterEqual(int(puts.group(1)), 1)
        self.assertRegex(text, r"(?m)^conveyor_beanstalk_connections [1-9]")

    def test_bad_input_gets_beanstalkds_errors_and_the_connection_goes_on(self):
        c = self.client()
        self.assertEqual(c.cmd("x" * 300)[0], b"BAD_FORMAT")
        self.assertEqual(c.cmd("list-tube-used")[0], b"USING default")
        self.assertEqual(c.cmd("bogus")[0], b"UNKNOWN_COMMAND")
        self.assertEqual(c.cmd(b"put 0 0 1 2\r\nabc\r\n")[0], b"EXPECTED_CRLF")
        # The "\n" left over starts the next line, as in beanstalkd.
        self.assertEqual(c.cmd("list-tube-used")[0], b"UNKNOWN_COMMAND")
        big = 2 * 1024 * 1024
        self.assertEqual(c.cmd(f"put 0 0 1 {big}", b"z" * big)[0], b"JOB_TOO_BIG")
        self.assertEqual(c.cmd("put -1 0 1 1", b"a"), (b"BAD_FORMAT", None))
        self.assertEqual(c.read_reply()[0], b"UNKNOWN_COMMAND")  # the body, read as a command
        self.assertEqual(c.cmd("ignore default")[0], b"NOT_IGNORED")
        # A client that announces 4 GB and goes away harms no one.
        huge = Beanstalk(self.bport)
        huge.send(b"put 0 0 1 4294967295\r\nshort")
        huge.close()
        self.assertEqual(c.cmd("list-tube-used")[0], b"USING default")
        c.send(b"quit\r\n")
        self.assertTrue(c.closed_within(2))

    def test_the_watch_list_is_bounded(self):
        c = self.client()
        for i in range(1, 256):
            self.assertEqual(c.cmd(f"watch cap-{i}")[0], f"WATCHING {i + 1}".encode())
        self.assertEqual(c.cmd("watch cap-one-too-many")[0], b"OUT_OF_MEMORY")
        self.assertEqual(c.cmd("watch cap-7")[0], b"WATCHING 256")  # watched already
        self.assertEqual(c.cmd("ignore cap-7")[0], b"WATCHING 255")
        self.assertEqual(c.cmd("watch cap-one-more")[0], b"WATCHING 256")
        self.assertEqual(c.cmd("list-tube-used")[0], b"USING default")

    def test_conveyor_stats_counts_beanstalkd_commands_and_http_requests(self):
        c = self.client()
        self.tube(c, "stats-door")
        for _ in range(3):
            c.put(b"x")
        for _ in range(2):
            self.assertTrue(c.cmd("reserve-with-timeout 0")[0].startswith(b"RESERVED"))
        self.server.request("GET", "/v1/queues/stats-door")
        out = subprocess.run([conveyor_bin(), "stats", "--server", self.server.url],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in ("http", "beanstalkd"):
                rows[(parts[0], parts[1])] = int(parts[2])
        self.assertGreaterEqual(rows.get(("beanstalkd", "put"), 0), 3, out.stdout)
        self.assertGreaterEqual(rows.get(("beanstalkd", "reserve-with-timeout"), 0), 2,
                                out.stdout)
        self.assertGreaterEqual(rows.get(("http", "get_queue"), 0), 1, out.stdout)


# One session of commands, malformed ones included; each entry is sent as is and its
# reply (line and data) compared. Ids are mapped to J1, J2... in order of appearance.
SCRIPT = [
    b"use diff-t\r\n", b"watch diff-t\r\n", b"list-tubes-watched\r\n", b"ignore default\r\n",
    b"ignore diff-t\r\n", b"list-tube-used\r\n", b"put 5 0 10 3\r\nabc\r\n",
    b"put 1 0 10 2\r\nxy\r\n", b"put 9 100 10 1\r\nd\r\n", b"peek-ready\r\n",
    b"peek-delayed\r\n", b"peek-buried\r\n", b"reserve-with-timeout 0\r\n",
    b"stats-job J2 \r\n", b"touch J2\r\n", b"release J2 3 0\r\n", b"reserve\r\n",
    b"bury J2 4\r\n", b"peek-buried\r\n", b"kick 5\r\n", b"kick-job J2\r\n", b"kick 1\r\n",
    b"stats-job J2\r\n", b"peek J3\r\n", b"reserve-with-timeout 0\r\n", b"delete J3\r\n", b"delete J3\r\n",
    b"reserve-job\r\n", b"delete\r\n", b"delete \r\n", b"delete x\r\n", b"delete -1\r\n",
    b"peek 18446744073709551616\r\n", b"put 1 0 1\r\n", b"put 0 0 1 1 \r\nz\r\n",
    b"put 0 0 1 2\r\nabcd\r\n", b"PUT 0 0 1 1\r\n", b"reservex\r\n", b"stats-jobx 1\r\n",
    b"peek-readyx\r\n", b"list-tubes \r\n", b"use -bad\r\n", b"use  two\r\n", b"watch a b\r\n",
    b"kick x\r\n", b"kick 5x\r\n", b"bury 1\r\n", b"release 1 2\r\n", b"touch 99999\r\n",
    b"x" * 250 + b"\r\n", b"list-tube-used\r\n", b"put 0 0 1 0\r\n\r\n",
    b"reserve-with-timeout 0\r\n", b"delete J4\r\n", b"stats-tube nonexistent-tube\r\n",
    b"pause-tube diff-t 0\r\n", b"pause-tube nonexistent-tube 1\r\n", b"pause-tube -x 1\r\n",
    b"put 3 0 10 1\r\nr\r\n", b"reserve-job J5\r\n", b"reserve-job J5\r\n",
    b"release J5 3 5\r\n", b"reserve-job J5\r\n", b"bury J5 2\r\n", b"reserve-job J5\r\n",
    b"stats-job J5\r\n", b"stats-tube diff-t\r\n", b"delete J5\r\n",
    b"reserve-job 424242\r\n", b"use diff-u\r\n", b"put 1 0 10 1\r\nu\r\n",
    b"put 2000 0 10 1\r\nv\r\n", b"stats-tube diff-u\r\n", b"pause-tube diff-u 0\r\n",
    b"watch diff-u\r\n", b"reserve-with-timeout 0\r\n", b"delete J6\r\n",
    b"stats-tube diff-u\r\n", b"reserve-with-timeout 0\r\n", b"delete J7\r\n",
]


def normalize(replies):
    ids = {}

    def name(raw):
        return ids.setdefault(raw, f"J{len(ids) + 1}")

    out = []
    for line, data in replies:
        words = line.split(b" ")
        if words[0] in (b"INSERTED", b"RESERVED", b"FOUND", b"BURIED") and len(words) > 1:
            words[1] = name(words[1]).encode()
        if words[0] == b"OK" and data is not None and data.startswith(b"---\nid:"):
            # Times and the file number differ; the rest must be the same.
            fields = yaml_dict(data)
            kept = ("tube", "state", "pri", "ttr", "reserves", "timeouts", "releases",
                    "buries", "kicks")
            data = " ".join(f"{k}={fields.get(k)}" for k in kept).encode()
            words = [b"OK", b"<stats-job>"]
        out.append((b" ".join(words), data))
    return out, ids


def run_script(port):
    c = Beanstalk(port, timeout=5)
    replies, ids = [], {}
    try:
        for entry in SCRIPT:
            for alias, raw in ids.items():
                entry = entry.replace(alias.encode(), raw)
            c.send(entry)
            reply = c.read_reply()
            replies.append(reply)
            if entry.startswith(b"put 0 0 1 1 \r\n"):
                replies.append(c.read_reply())  # the unread body, parsed as a command
            if entry.startswith(b"put 0 0 1 2\r\nabcd"):
                replies.append(c.read_reply())  # "cd" left over after EXPECTED_CRLF
            normalized, ids_by_raw = normalize(replies)
            ids = {v: k for k, v in ids_by_raw.items()}
    finally:
        c.close()
    return normalize(replies)[0]


class DifferentialTest(unittest.TestCase):
    def test_the_same_script_gets_the_same_replies_as_beanstalkd(self):
        bport = free_port()
        server = Server(["--beanstalk", f"127.0.0.1:{bport}"])
        self.addCleanup(server.stop)
        port = free_port()
        ref = start_beanstalkd(port, "-z", "1048576")  # Conveyor's job size limit
        self.addCleanup(lambda: (ref.kill(), ref.wait()))
        theirs = run_script(port)
        ours = run_script(bport)
        for i, (a, b) in enumerate(zip(theirs, ours)):
            self.assertEqual(a, b, f"reply {i}: beanstalkd {a!r}, Conveyor {b!r}")
        self.assertEqual(len(theirs), len(ours))


class BeanstalkRestartTest(DurableTestCase):
    """A put answered INSERTED survives kill -9; a job held at an orderly stop is ready
    again after the restart, at once (its release is durable before the server exits)."""

    def test_jobs_survive_a_crash_and_a_held_job_is_ready_after_a_stop(self):
        d = self.make_dir()
        bport = free_port()
        server = self.start(d, extra_args=["--beanstalk", f"127.0.0.1:{bport}"])
        c = Beanstalk(bport)
        self.addCleanup(c.close)
        c.cmd("use survive")
        kept = c.put(b"kept\r\n\x00", pri=3, ttr=600)
        server.kill9()
        server = self.start(d, extra_args=["--beanstalk", f"127.0.0.1:{bport}"])
        c = Beanstalk(bport)
        self.addCleanup(c.close)
        c.cmd("watch survive")
        line, body = c.cmd("reserve-with-timeout 2")
        self.assertEqual((line, body), (f"RESERVED {kept} 7".encode(), b"kept\r\n\x00"))
        server.sigterm()  # holding the job, ttr 600 s
        server = self.start(d, extra_args=["--beanstalk", f"127.0.0.1:{bport}"])
        c = Beanstalk(bport)
        self.addCleanup(c.close)
        c.cmd("watch survive")
        self.assertEqual(c.cmd("reserve-with-timeout 0")[0], f"RESERVED {kept} 7".encode())
        self.assertEqual(c.cmd(f"delete {kept}")[0], b"DELETED")
        server.kill9()
        server = self.start(d, extra_args=["--beanstalk", f"127.0.0.1:{bport}"])
        c = Beanstalk(bport)
        self.addCleanup(c.close)
        self.assertEqual(c.cmd(f"peek {kept}")[0], b"NOT_FOUND")


if __name__ == "__main__":
    unittest.main(verbosity=2)
