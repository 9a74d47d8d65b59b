"""The `conveyor` command line end to end: enqueue, stats, work and serve's flags.

Every command runs the real binary (CONVEYOR_BIN) against a real `conveyor serve`
(harness.Server, --durability none); results are checked through the HTTP API of SPEC.md.
Every subprocess has a timeout and is stopped in cleanup, so a failing test leaves nothing
behind. Timing checks use real time with slack for a busy machine.

Run: CONVEYOR_BIN=/path/to/conveyor python3 tests/integration/test_cli.py
  or CONVEYOR_BIN=/path/to/conveyor python3 -m unittest -v test_cli
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, conveyor_bin, free_port  # noqa: E402

PY = sys.executable or "python3"
CLI_TIMEOUT = 20  # seconds for any one short CLI run


# CONVEYOR_PAYLOAD_CACHE_BYTES=0 is set by the sanitized ctest run: the whole suite then
# also runs with every payload read back from storage.
KEPT_SETTINGS = ("CONVEYOR_BIN", "CONVEYOR_PAYLOAD_CACHE_BYTES")


def clean_env(extra=None):
    """The test's environment without CONVEYOR_* settings (they would change defaults)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONVEYOR_") or k in KEPT_SETTINGS}
    if extra:
        env.update(extra)
    return env


def run_cli(args, input=None, timeout=CLI_TIMEOUT, env=None):
    """Runs `conveyor ARGS` to completion (killed on timeout); returns CompletedProcess with
    text stdout/stderr."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    proc = subprocess.run([conveyor_bin()] + list(args), input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, env=clean_env(env))
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def describe(proc):
    return f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"


def stop_process(proc, sig=signal.SIGTERM, timeout=5):
    """Stops a Popen by its PID: sig, then SIGKILL after timeout."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def parse_table(text):
    """`conveyor stats` output -> (header list, {queue name: {column: value}})."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return [], {}
    header = lines[0].split()
    rows = {}
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == len(header):
            rows[parts[0]] = dict(zip(header, parts))
    return header, rows


class CliTestCase(ServerTestCase):
    def qname(self, prefix="cli"):
        return super().qname(prefix)

    def enqueue_raw(self, queue, body_text):
        """Enqueues a raw JSON body (so the payload's exact bytes are known)."""
        status, _, body = self.server.request(
            "POST", f"/v1/queues/{queue}/tasks", body=body_text.encode("utf-8"),
            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 201, body)
        return body["id"]

    def task(self, task_id):
        status, body = self.call("GET", f"/v1/tasks/{task_id}")
        self.assertEqual(status, 200, body)
        return body

    def queue_stats(self, queue):
        status, body = self.call("GET", f"/v1/queues/{queue}")
        self.assertEqual(status, 200, body)
        return body

    def all_tasks(self, queue, state):
        tasks, after = [], None
        for _ in range(100):
            path = f"/v1/queues/{queue}/tasks?state={state}&limit=1000"
            if after is not None:
                path += f"&after={after}"
            status, body = self.call("GET", path)
            self.assertEqual(status, 200, body)
            tasks += body["tasks"]
            after = body.get("next_after")
            if after is None:
                return tasks
        self.fail("listing did not end")

    def wait_for(self, task_id, states, timeout=10.0, log=None):
        """Polls the task until its state is in states; returns it."""
        deadline = time.time() + timeout
        while True:
            t = self.task(task_id)
            if t["state"] in states:
                return t
            if time.time() > deadline:
                self.fail(f"task {task_id} never reached {states}: {t}"
                          + (f"\nworker log:\n{log()}" if log else ""))
            time.sleep(0.05)


class WorkerProc:
    """One `conveyor work` process; output goes to a temp file so pipes never fill."""

    def __init__(self, testcase, queue, command, options=(), env=None, new_session=False):
        self.log_file = tempfile.TemporaryFile()
        args = [conveyor_bin(), "work", queue, "--server", testcase.server.url]
        args += list(options) + ["--"] + list(command)
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=clean_env(env),
                                     start_new_session=new_session)
        testcase.addCleanup(self.log_file.close)
        testcase.addCleanup(stop_process, self.proc)

    def log(self):
        self.log_file.seek(0)
        return self.log_file.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- enqueue
class EnqueueTest(CliTestCase):
    def test_single_payload_prints_answer_with_id(self):
        q = self.qname("enq")
        proc = run_cli(["enqueue", q, '{"to": "a@example.com", "n": 7}', "--server",
                        self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        answer = json.loads(proc.stdout)
        self.assertIsInstance(answer.get("id"), int, proc.stdout)
        self.assertEqual(answer.get("state"), "ready", proc.stdout)
        t = self.task(answer["id"])
        self.assertEqual(t["queue"], q)
        self.assertEqual(t["payload"], {"to": "a@example.com", "n": 7})
        self.assertEqual(t["state"], "ready")
        self.assertEqual(t["priority"], 0)
        self.assertEqual(self.queue_stats(q)["counts"]["ready"], 1)

    def test_scalar_payloads(self):
        q = self.qname("enq")
        for text, value in [('"just a string"', "just a string"), ("42", 42), ("null", None),
                            ("[1, 2, 3]", [1, 2, 3])]:
            proc = run_cli(["enqueue", q, text, "--server", self.server.url])
            self.assertEqual(proc.returncode, 0, describe(proc))
            self.assertEqual(self.task(json.loads(proc.stdout)["id"])["payload"], value, text)
        self.assertEqual(self.queue_stats(q)["counts"]["ready"], 4)

    def test_priority_and_delay_reach_the_task(self):
        q = self.qname("enq")
        proc = run_cli(["enqueue", q, '{"k": 1}', "--priority", "7", "--delay-ms", "60000",
                        "--server", self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        t = self.task(json.loads(proc.stdout)["id"])
        self.assertEqual(t["priority"], 7)
        self.assertEqual(t["state"], "scheduled")
        self.assertGreaterEqual(t["run_at"] - t["created_at"], 59000, t)
        self.assertLessEqual(t["run_at"] - t["created_at"], 61000, t)

        proc = run_cli(["enqueue", q, '{"k": 2}', "--priority", "-3", "--server",
                        self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        t = self.task(json.loads(proc.stdout)["id"])
        self.assertEqual(t["priority"], -3)
        self.assertEqual(t["state"], "ready")
        counts = self.queue_stats(q)["counts"]
        self.assertEqual((counts["scheduled"], counts["ready"]), (1, 1), counts)

    def test_server_from_environment(self):
        q = self.qname("enq")
        proc = run_cli(["enqueue", q, "{}"], env={"CONVEYOR_SERVER": self.server.url})
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(self.queue_stats(q)["counts"]["ready"], 1)

    def test_invalid_json_payload_fails(self):
        q = self.qname("enq")
        for bad in ['{"x": ', "{'single': 1}", "not json", '{"a":1} {"b":2}']:
            proc = run_cli(["enqueue", q, bad, "--server", self.server.url])
            self.assertNotEqual(proc.returncode, 0, f"{bad!r}: {describe(proc)}")
            self.assertTrue(proc.stderr.strip(), f"{bad!r}: no message: {describe(proc)}")
        self.assertEqual(self.queue_stats(q)["totals"]["enqueued"], 0)

    def test_bad_server_url_fails(self):
        for url in ["bogus", "ftp://127.0.0.1:8700", "http://", "http://127.0.0.1:notaport"]:
            proc = run_cli(["enqueue", self.qname(), "{}", "--server", url])
            self.assertNotEqual(proc.returncode, 0, f"{url}: {describe(proc)}")
            self.assertTrue(proc.stderr.strip(), f"{url}: {describe(proc)}")
        # A well-formed URL where nothing listens.
        proc = run_cli(["enqueue", self.qname(), "{}", "--server",
                        f"http://127.0.0.1:{free_port()}"])
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertTrue(proc.stderr.strip(), describe(proc))

    def test_stdin_json_lines_in_several_batches(self):
        q = self.qname("lines")
        lines = []
        for i in range(1200):
            lines.append(json.dumps({"n": i}))
            if i % 100 == 0:
                lines.append("")        # blank lines are skipped
            if i % 250 == 0:
                lines.append("   \t ")  # so are whitespace-only ones
        proc = run_cli(["enqueue", q, "--server", self.server.url],
                       input="\n".join(lines) + "\n")
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertRegex(proc.stdout, r"\b1200\b", describe(proc))
        stats = self.queue_stats(q)
        self.assertEqual(stats["counts"]["ready"], 1200, stats)
        self.assertEqual(stats["totals"]["enqueued"], 1200, stats)
        tasks = self.all_tasks(q, "ready")
        self.assertEqual(sorted(t["payload"]["n"] for t in tasks), list(range(1200)))
        # Lines are enqueued in order: ids follow the input.
        by_id = [t["payload"]["n"] for t in sorted(tasks, key=lambda t: t["id"])]
        self.assertEqual(by_id, list(range(1200)))

    def test_stdin_dash_with_flags_and_last_line_without_newline(self):
        q = self.qname("lines")
        proc = run_cli(["enqueue", q, "-", "--priority", "4", "--batch", "2", "--server",
                        self.server.url], input='{"a":1}\r\n"two"\n\n3')
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertRegex(proc.stdout, r"\b3\b", describe(proc))
        tasks = sorted(self.all_tasks(q, "ready"), key=lambda t: t["id"])
        self.assertEqual([t["payload"] for t in tasks], [{"a": 1}, "two", 3])
        self.assertEqual({t["priority"] for t in tasks}, {4})

    def test_stdin_bad_line_fails_naming_the_region(self):
        q = self.qname("lines")
        lines = [json.dumps({"n": i}) for i in range(1200)]
        lines[749] = '{"n": 749, oops}'  # line 750: in the second batch of 500 (501-1000)
        proc = run_cli(["enqueue", q, "--server", self.server.url],
                       input="\n".join(lines) + "\n")
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        m = re.search(r"line\D{0,20}(\d+)", proc.stderr)
        self.assertIsNotNone(m, f"no line number in the message: {describe(proc)}")
        self.assertTrue(750 <= int(m.group(1)) <= 1000, describe(proc))
        # The first batch landed; the refused batch is all-or-nothing; nothing after it.
        stats = self.queue_stats(q)
        self.assertEqual(stats["counts"]["ready"], 500, stats)


# --------------------------------------------------------------------------- stats
class StatsTest(CliTestCase):
    def test_all_queues_and_one_queue(self):
        qa, qb = self.qname("sa"), self.qname("sb")
        for i in range(3):
            self.enqueue(qa, {"i": i})
        for i in range(5):
            self.enqueue(qb, {"i": i})
        self.enqueue(qb, {"later": True}, delay_ms=600000)

        proc = run_cli(["stats", "--server", self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        header, rows = parse_table(proc.stdout)
        self.assertIn("QUEUE", header, proc.stdout)
        self.assertIn("READY", header, proc.stdout)
        self.assertIn(qa, rows, proc.stdout)
        self.assertIn(qb, rows, proc.stdout)
        self.assertEqual(rows[qa]["READY"], "3", proc.stdout)
        self.assertEqual(rows[qb]["READY"], "5", proc.stdout)
        self.assertEqual(rows[qb]["SCHEDULED"], "1", proc.stdout)

        proc = run_cli(["stats", qa, "--server", self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        header, rows = parse_table(proc.stdout)
        self.assertEqual(list(rows), [qa], proc.stdout)
        self.assertEqual(rows[qa]["READY"], "3", proc.stdout)
        self.assertNotIn(qb, proc.stdout)

    def test_counts_follow_leases_and_acks(self):
        q = self.qname("sc")
        for i in range(4):
            self.enqueue(q, i)
        status, body = self.call("POST", f"/v1/queues/{q}/lease", {"max": 2, "wait_ms": 0})
        self.assertEqual(status, 200, body)
        first = body["tasks"][0]
        status, body = self.call("POST", f"/v1/tasks/{first['id']}/ack",
                                 {"lease": first["lease"]["token"]})
        self.assertEqual(status, 200, body)
        proc = run_cli(["stats", q, "--server", self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        _, rows = parse_table(proc.stdout)
        self.assertEqual(rows[q]["READY"], "2", proc.stdout)
        self.assertEqual(rows[q]["LEASED"], "1", proc.stdout)
        self.assertEqual(rows[q]["SUCCEEDED"], "1", proc.stdout)

    def test_unreachable_server_fails(self):
        proc = run_cli(["stats", "--server", f"http://127.0.0.1:{free_port()}"])
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertTrue(proc.stderr.strip(), describe(proc))


# --------------------------------------------------------------------------- work
# Commands run by the worker (argv lists).
ECHO_SUM = [PY, "-c", "import sys, json; p = json.load(sys.stdin); "
            "print(json.dumps({'sum': p['a'] + p['b'], 'who': 'worker'}))"]
STDIN_REPORT = [PY, "-c", "import sys, os, json, hashlib; d = sys.stdin.buffer.read(); "
                "print(json.dumps({'hex': d.hex() if len(d) < 4096 else None, 'len': len(d), "
                "'sha': hashlib.sha256(d).hexdigest(), "
                "'env': {k: os.environ.get(k) for k in "
                "('CONVEYOR_TASK_ID', 'CONVEYOR_QUEUE', 'CONVEYOR_ATTEMPT')}}))"]


class WorkTest(CliTestCase):
    def worker(self, queue, command, *options, **kw):
        return WorkerProc(self, queue, command, options, **kw)

    def test_exit_0_acks_with_json_stdout_as_result(self):
        q = self.qname("w")
        ids = [self.enqueue(q, {"a": i, "b": 10 * i}) for i in range(6)]
        w = self.worker(q, ECHO_SUM, "--concurrency", "2")
        for i, task_id in enumerate(ids):
            t = self.wait_for(task_id, ("succeeded", "dead"), log=w.log)
            self.assertEqual(t["state"], "succeeded", w.log())
            self.assertEqual(t["result"], {"sum": 11 * i, "who": "worker"}, t)
            self.assertEqual(t["attempts"], 1, t)
            self.assertEqual(t["errors"], [], t)
        self.assertIsNone(w.proc.poll(), "worker exited:\n" + w.log())

    def test_plain_text_stdout_is_a_json_string_and_empty_is_null(self):
        q1, q2 = self.qname("wt"), self.qname("we")
        t1 = self.enqueue(q1, {"x": 1})
        t2 = self.enqueue(q2, {"x": 2})
        w1 = self.worker(q1, ["sh", "-c", "cat >/dev/null; echo 'hello, world: not {json'"])
        w2 = self.worker(q2, ["sh", "-c", "cat >/dev/null; exit 0"])
        t = self.wait_for(t1, ("succeeded", "dead"), log=w1.log)
        self.assertEqual(t["state"], "succeeded", w1.log())
        self.assertIsInstance(t["result"], str, t)
        self.assertEqual(t["result"].strip(), "hello, world: not {json", t)
        t = self.wait_for(t2, ("succeeded", "dead"), log=w2.log)
        self.assertEqual(t["state"], "succeeded", w2.log())
        self.assertIsNone(t["result"], t)

    def test_payload_on_stdin_byte_for_byte_and_environment(self):
        q = self.qname("wb")
        # Through `conveyor enqueue`, with odd spacing, escapes and raw UTF-8.
        odd = '{"b": [1, 2 ,3],  "s":"h\\u00e9llo \\"x\\"\\n\\t", "u":"日本語 ✓", "z":1.50, ' \
              '"e":1E3, "n":null}'
        proc = run_cli(["enqueue", q, odd, "--server", self.server.url])
        self.assertEqual(proc.returncode, 0, describe(proc))
        odd_id = json.loads(proc.stdout)["id"]
        scalars = ['"plain text"', "-12.5e-3", "null", "[ ]", "true"]
        scalar_ids = [self.enqueue_raw(q, '{"payload": ' + s + '}') for s in scalars]
        big = json.dumps({"blob": "xyz" * 100000, "tail": "☃"}, ensure_ascii=False)
        big_id = self.enqueue_raw(q, '{"payload":' + big + '}')

        w = self.worker(q, STDIN_REPORT, "--concurrency", "2")
        for task_id, text in [(odd_id, odd)] + list(zip(scalar_ids, scalars)) + [(big_id, big)]:
            t = self.wait_for(task_id, ("succeeded", "dead"), log=w.log)
            self.assertEqual(t["state"], "succeeded", w.log())
            r = t["result"]
            self.assertIsInstance(r, dict, t)
            data = text.encode("utf-8")
            if r["hex"] is not None:
                self.assertEqual(bytes.fromhex(r["hex"]), data, f"task {task_id}")
            self.assertEqual(r["len"], len(data), f"task {task_id}")
            self.assertEqual(r["sha"], hashlib.sha256(data).hexdigest(), f"task {task_id}")
            self.assertEqual(r["env"], {"CONVEYOR_TASK_ID": str(task_id), "CONVEYOR_QUEUE": q,
                                        "CONVEYOR_ATTEMPT": "1"}, t)

    def test_nonzero_exit_nacks_with_stderr_tail(self):
        q = self.qname("wn")
        # A long backoff keeps the nacked task scheduled while we look at it.
        status, body = self.call("PUT", f"/v1/queues/{q}",
                                 {"backoff": {"base_ms": 600000, "jitter": False}})
        self.assertEqual(status, 200, body)
        task_id = self.enqueue(q, {"job": "fail"})
        script = ("cat >/dev/null; echo 'stdout is ignored'; echo START-MARK >&2; "
                  "i=0; while [ $i -lt 400 ]; do "
                  "echo 'noise noise noise noise noise noise noise noise noise noise' >&2; "
                  "i=$((i+1)); done; echo 'boom: disk full END-MARK' >&2; exit 3")
        w = self.worker(q, ["sh", "-c", script])
        t = self.wait_for(task_id, ("scheduled", "dead", "succeeded"), log=w.log)
        self.assertEqual(t["state"], "scheduled", w.log())
        self.assertEqual(t["attempts"], 1, t)
        self.assertEqual(len(t["errors"]), 1, t)
        err = t["errors"][0]
        self.assertEqual(err.get("attempt"), 1, t)
        self.assertIn("boom: disk full END-MARK", err["message"])
        self.assertNotIn("START-MARK", err["message"], "the whole stderr, not its tail")
        self.assertIn("3", err["message"])  # the exit code
        self.assertGreater(t["run_at"] - int(time.time() * 1000), 60000, t)

    def test_nonzero_exit_with_max_attempts_1_is_dead(self):
        q = self.qname("wd")
        task_id = self.enqueue(q, {"job": "fail"}, max_attempts=1)
        w = self.worker(q, ["sh", "-c", "cat >/dev/null; echo 'no such customer' >&2; exit 1"])
        t = self.wait_for(task_id, ("dead", "succeeded"), log=w.log)
        self.assertEqual(t["state"], "dead", w.log())
        self.assertEqual(t["dead_reason"], "max_attempts", t)
        self.assertEqual(t["attempts"], 1, t)
        self.assertEqual(len(t["errors"]), 1, t)
        self.assertIn("no such customer", t["errors"][0]["message"])

    def test_command_that_cannot_start_nacks(self):
        q = self.qname("wx")
        task_id = self.enqueue(q, {}, max_attempts=1)
        w = self.worker(q, ["/nonexistent/conveyor-test-command", "arg"])
        t = self.wait_for(task_id, ("dead", "succeeded"), log=w.log)
        self.assertEqual(t["state"], "dead", w.log())
        self.assertEqual(len(t["errors"]), 1, t)
        self.assertIn("/nonexistent/conveyor-test-command", t["errors"][0]["message"])
        self.assertIsNone(w.proc.poll(), "worker exited:\n" + w.log())

    def test_lease_is_extended_while_the_command_runs(self):
        q = self.qname("wl")
        task_id = self.enqueue(q, {"slow": True})
        w = self.worker(q, ["sh", "-c", "cat >/dev/null; sleep 2.5; echo '{\"slept\": true}'"],
                        "--concurrency", "2", "--lease-ms", "1000")
        t = self.wait_for(task_id, ("succeeded", "dead"), timeout=15, log=w.log)
        self.assertEqual(t["state"], "succeeded", w.log())
        self.assertEqual(t["result"], {"slept": True}, t)
        self.assertEqual(t["attempts"], 1, f"the lease expired and the task ran again: {t}")
        self.assertEqual(t["errors"], [], t)
        stats = self.queue_stats(q)
        self.assertEqual(stats["totals"]["expired"], 0, stats)
        self.assertEqual(stats["totals"]["acked"], 1, stats)
        self.assertNotIn("refused", w.log())
        self.assertNotIn("could not extend", w.log())

    def _graceful_stop(self, sig, to_group):
        q = self.qname("ws")
        marks = tempfile.mkdtemp(prefix="conveyor-cli-")
        self.addCleanup(shutil.rmtree, marks, True)
        first = self.enqueue(q, {"first": True})
        script = ('cat >/dev/null; touch "$MARK_DIR/$CONVEYOR_TASK_ID"; sleep 1.5; '
                  'echo finished')
        w = self.worker(q, ["sh", "-c", script], "--concurrency", "2",
                        env={"MARK_DIR": marks}, new_session=to_group)
        deadline = time.time() + 10
        while not os.path.exists(os.path.join(marks, str(first))):
            if time.time() > deadline or w.proc.poll() is not None:
                self.fail("the command never started:\n" + w.log())
            time.sleep(0.02)
        if to_group:
            os.killpg(w.proc.pid, sig)  # what a terminal's Ctrl-C does
        else:
            w.proc.send_signal(sig)
        signalled = time.time()
        # A signal is taken when the worker next runs: its "stopping" line says it has
        # been, and from then on nothing may be leased.
        while "conveyor work: stopping on" not in w.log():
            if time.time() > signalled + 5 or w.proc.poll() is not None:
                self.fail("the worker never said it was stopping:\n" + w.log())
            time.sleep(0.01)
        extra = [self.enqueue(q, {"extra": i}) for i in range(3)]
        try:
            rc = w.proc.wait(timeout=6)
        except subprocess.TimeoutExpired:
            self.fail("worker did not exit within 6 s of the signal:\n" + w.log())
        took = time.time() - signalled
        self.assertEqual(rc, 0, w.log())
        self.assertLess(took, 5.0, w.log())
        t = self.task(first)
        self.assertEqual(t["state"], "succeeded", f"{t}\n{w.log()}")
        self.assertEqual(t["result"].strip(), "finished", t)
        self.assertEqual(t["attempts"], 1, t)
        for task_id in extra:
            t = self.task(task_id)
            self.assertEqual((t["state"], t["attempts"]), ("ready", 0),
                             f"leased after the signal: {t}\n{w.log()}")
        self.assertEqual(sorted(os.listdir(marks)), [str(first)], w.log())
        time.sleep(0.3)
        counts = self.queue_stats(q)["counts"]
        self.assertEqual((counts["ready"], counts["leased"]), (3, 0), counts)

    def test_sigterm_lets_the_running_command_finish_then_exits(self):
        self._graceful_stop(signal.SIGTERM, to_group=False)

    def test_sigint_to_the_process_group_spares_the_command(self):
        self._graceful_stop(signal.SIGINT, to_group=True)

    def test_work_without_a_command_fails(self):
        q = self.qname("wc")
        for tail in ([], ["--"]):
            proc = run_cli(["work", q, "--server", self.server.url] + tail, timeout=10)
            self.assertNotEqual(proc.returncode, 0, describe(proc))
            self.assertIn("--", proc.stderr, describe(proc))

    def test_bad_server_url_fails(self):
        proc = run_cli(["work", self.qname(), "--server", "bogus", "--", "true"], timeout=10)
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("--server", proc.stderr, describe(proc))


# --------------------------------------------------------------------------- serve / help
class ServeFlagsTest(unittest.TestCase):
    def start_serve(self, args, env=None):
        log = tempfile.TemporaryFile()
        data_dir = tempfile.mkdtemp(prefix="conveyor-test-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        proc = subprocess.Popen([conveyor_bin(), "serve", "--durability", "none",
                                 "--data-dir", data_dir] + list(args),
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env(env))
        self.addCleanup(log.close)
        self.addCleanup(stop_process, proc)
        return proc, log

    @staticmethod
    def healthz(port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status
        finally:
            conn.close()

    def wait_healthy(self, proc, log, port, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                break
            try:
                if self.healthz(port) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        log.seek(0)
        self.fail(f"no server on port {port}:\n" + log.read().decode("utf-8", "replace"))

    def test_invalid_durability_names_the_flag(self):
        proc = run_cli(["serve", "--durability", "fast", "--listen",
                        f"127.0.0.1:{free_port()}"], timeout=10)
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("--durability", proc.stderr + proc.stdout, describe(proc))

    def test_invalid_durability_from_environment_fails(self):
        proc = run_cli(["serve", "--listen", f"127.0.0.1:{free_port()}"], timeout=10,
                       env={"CONVEYOR_DURABILITY": "fast"})
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("durability", (proc.stderr + proc.stdout).lower(), describe(proc))

    def test_default_durability_is_sync_on_the_data_dir(self):
        data_dir = tempfile.mkdtemp(prefix="conveyor-test-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        port = free_port()
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        proc = subprocess.Popen([conveyor_bin(), "serve", "--listen", f"127.0.0.1:{port}",
                                 "--data-dir", data_dir],
                                stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env(None))
        self.addCleanup(stop_process, proc)
        self.wait_healthy(proc, log, port)
        log.seek(0)
        banner = log.read().decode("utf-8", "replace")
        self.assertIn("durability sync", banner)
        self.assertIn(data_dir, banner)
        self.assertTrue(os.path.exists(os.path.join(data_dir, "CONVEYOR")), banner)

    def test_config_file_sets_serve_settings_and_flags_win(self):
        port, flag_port = free_port(), free_port()
        cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.addCleanup(os.unlink, cfg.name)
        cfg.write(f'[serve]\nlisten = "127.0.0.1:{port}"\nmax_batch = 3\n')
        cfg.close()
        proc, log = self.start_serve(["--config", cfg.name])
        self.wait_healthy(proc, log, port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        body = json.dumps({"tasks": [{"payload": i} for i in range(4)]})
        conn.request("POST", "/v1/queues/cfg/tasks", body=body)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 400, resp.read())
        conn.close()
        proc2, log2 = self.start_serve(["--config", cfg.name, "--listen",
                                        f"127.0.0.1:{flag_port}"])
        self.wait_healthy(proc2, log2, flag_port)

    def test_config_file_takes_the_memory_and_timeout_settings(self):
        port = free_port()
        cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.addCleanup(os.unlink, cfg.name)
        cfg.write(f'[serve]\nlisten = "127.0.0.1:{port}"\nmax_tasks = 2\n'
                  'max_memory_bytes = 0\npayload_cache_bytes = 0\n'
                  'max_response_bytes = 65536\nmax_metrics_queues = 10\n'
                  'commit_timeout_ms = 5000\nshutdown_timeout_ms = 5000\n')
        cfg.close()
        proc, log = self.start_serve(["--config", cfg.name])
        self.wait_healthy(proc, log, port)
        statuses = []
        for i in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/v1/queues/cfgmem/tasks", body=json.dumps({"payload": i}))
            resp = conn.getresponse()
            statuses.append(resp.status)
            resp.read()
            conn.close()
        self.assertEqual(statuses, [201, 201, 503], "max_tasks = 2 from the file")

    def test_config_file_with_an_unknown_setting_fails(self):
        cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        self.addCleanup(os.unlink, cfg.name)
        cfg.write('lisen = "127.0.0.1:1"\n')
        cfg.close()
        proc = run_cli(["serve", "--config", cfg.name], timeout=10)
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("lisen", proc.stderr, describe(proc))

    def test_listen_from_environment(self):
        port = free_port()
        proc, log = self.start_serve([], env={"CONVEYOR_LISTEN": f"127.0.0.1:{port}"})
        self.wait_healthy(proc, log, port)

    def test_listen_flag_wins_over_environment(self):
        env_port, flag_port = free_port(), free_port()
        proc, log = self.start_serve(["--listen", f"127.0.0.1:{flag_port}"],
                                     env={"CONVEYOR_LISTEN": f"127.0.0.1:{env_port}"})
        self.wait_healthy(proc, log, flag_port)
        with self.assertRaises(OSError):
            self.healthz(env_port)

    def test_bad_listen_address_fails(self):
        proc = run_cli(["serve", "--durability", "none", "--listen", "nonsense"], timeout=10)
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("--listen", proc.stderr, describe(proc))

    def test_help_for_every_command(self):
        proc = run_cli(["--help"], timeout=10)
        self.assertEqual(proc.returncode, 0, describe(proc))
        for name in ("serve", "enqueue", "stats", "work"):
            self.assertIn(name, proc.stdout, describe(proc))
            sub = run_cli([name, "--help"], timeout=10)
            self.assertEqual(sub.returncode, 0, f"{name}: {describe(sub)}")
            self.assertIn(f"conveyor {name}", sub.stdout, f"{name}: {describe(sub)}")
            self.assertIn("--help", sub.stdout, f"{name}: {describe(sub)}")


if __name__ == "__main__":
    unittest.main()
