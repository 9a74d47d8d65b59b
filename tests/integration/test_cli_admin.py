"""The operators' CLI commands through the real binary (issue 14, part 3): tasks, show,
retry (one, --all-dead), cancel, pause/resume, purge, config key=value; --json on each;
arguments checked before any request."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, conveyor_bin  # noqa: E402


class CliAdminTest(ServerTestCase):
    durability = "sync"

    def cli(self, *args):
        return subprocess.run([conveyor_bin(), *args, "--server", self.server.url],
                              capture_output=True, text=True, timeout=30)

    def dead(self, q, n):
        for i in range(n):
            self.enqueue(q, {"i": i}, max_attempts=1)
        status, got = self.call("POST", f"/v1/queues/{q}/lease", {"max": n})
        for t in got["tasks"]:
            self.call("POST", f"/v1/tasks/{t['id']}/nack", {"lease": t["lease"]["token"],
                                                          "error": "it broke"})
        return [t["id"] for t in got["tasks"]]

    def test_tasks_show_retry_purge(self):
        q = self.qname()
        ids = self.dead(q, 3)
        out = self.cli("tasks", q, "--state", "dead")
        self.assertEqual(out.returncode, 0, out.stderr)
        for i in ids:
            self.assertIn(str(i), out.stdout)
        page = json.loads(self.cli("tasks", q, "--json", "--limit", "2").stdout)
        self.assertEqual(len(page["tasks"]), 2)
        out = self.cli("show", str(ids[0]))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("it broke", out.stdout)
        self.assertIn("dead", out.stdout)
        self.assertEqual(json.loads(self.cli("show", str(ids[0]), "--json").stdout)["id"], ids[0])
        out = self.cli("retry", str(ids[0]))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ready", out.stdout)
        out = self.cli("retry", "--all-dead", q)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("retried 2", out.stdout)
        out = self.cli("cancel", str(ids[1]))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("canceled", out.stdout)
        out = self.cli("purge", q, "--state", "canceled", "--json")
        self.assertEqual(json.loads(out.stdout), {"purged": 1, "remaining": 0})

    def test_pause_resume_config(self):
        q = self.qname()
        self.assertEqual(self.cli("pause", q).returncode, 0)
        self.assertTrue(self.call("GET", f"/v1/queues/{q}")[1]["config"]["paused"])
        self.assertEqual(self.cli("resume", q).returncode, 0)
        self.assertFalse(self.call("GET", f"/v1/queues/{q}")[1]["config"]["paused"])
        out = self.cli("config", q, "max_attempts=5", "backoff.base_ms=250",
                       "rate_limit.per_second=20", "fairness=key")
        self.assertEqual(out.returncode, 0, out.stderr)
        config = self.call("GET", f"/v1/queues/{q}")[1]["config"]
        self.assertEqual((config["max_attempts"], config["backoff"]["base_ms"],
                          config["rate_limit"]["per_second"], config["fairness"]),
                         (5, 250, 20, "key"))
        out = self.cli("config", q)
        self.assertIn("max_attempts", out.stdout)
        self.assertIn("5", out.stdout)
        out = self.cli("config", q, "max_attempts=0")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("max_attempts", out.stderr)

    def test_version_unknown_command_and_no_unbuilt_options(self):
        for args in (["version"], ["--version"]):
            out = subprocess.run([conveyor_bin(), *args], capture_output=True, text=True,
                                 timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stdout.strip(), r"^conveyor \d+\.\d+\.\d+$")
        out = subprocess.run([conveyor_bin(), "frobnicate"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown command 'frobnicate'; see conveyor --help", out.stderr)
        out = subprocess.run([conveyor_bin(), "serve", "--help"], capture_output=True, text=True,
                             timeout=30)
        self.assertNotIn("--broker", out.stdout)

    def test_enqueue_flags(self):
        q = self.qname()
        out = self.cli("enqueue", q, '{"a":1}', "--max-attempts", "3", "--idempotency-key",
                       'order "7"', "--deadline", "4102444800000", "--run-at", "4102444000000",
                       "--key", "tenant-1")
        self.assertEqual(out.returncode, 0, out.stderr)
        task_id = json.loads(out.stdout)["id"]
        task = self.call("GET", f"/v1/tasks/{task_id}")[1]
        self.assertEqual((task["max_attempts"], task["idempotency_key"], task["deadline"],
                          task["run_at"], task["key"], task["state"]),
                         (3, 'order "7"', 4102444800000, 4102444000000, "tenant-1", "scheduled"))
        again = self.cli("enqueue", q, '{"a":2}', "--idempotency-key", 'order "7"')
        self.assertEqual(json.loads(again.stdout)["id"], task_id)
        out = self.cli("enqueue", q, "1", "--run-at", "5", "--delay-ms", "5")
        self.assertNotEqual(out.returncode, 0)
        out = subprocess.run([conveyor_bin(), "enqueue", q, "--idempotency-key", "k", "--server",
                              self.server.url], input="1\n2\n", capture_output=True, text=True,
                             timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("one payload", out.stderr)

    def test_arguments_are_checked_first(self):
        for args, words in [(("tasks", "bad name"), "not a queue name"),
                            (("show", "12x"), "not a task id"),
                            (("retry",), "task id"),
                            (("config", "q", "novalue"), "key=value"),
                            (("purge", "q", "--state", "ready"), "state")]:
            with self.subTest(args=args):
                out = self.cli(*args)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(words, out.stderr)
        out = self.cli("show", "999999999")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("no task", out.stderr)


if __name__ == "__main__":
    unittest.main()
