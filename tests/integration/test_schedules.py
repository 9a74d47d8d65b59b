"""Schedules through the real binary (issue 13): every_ms and cron schedules enqueue on time,
once per tick (each tick's task carries idempotency key schedule:<name>:<tick>); list,
pause, resume, delete; a kill -9 while ticking loses no tick and doubles none, and missed
ticks follow catch_up (none, one, all); `conveyor schedule` on the CLI; bad input."""
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
from harness import ServerTestCase, conveyor_bin  # noqa: E402


def ticks_of(server, queue):
    """The tick times (epoch ms) of the queue's tasks, in id order."""
    ticks, after = [], 0
    while True:
        status, page = server.call("GET", f"/v1/queues/{queue}/tasks?limit=1000&after={after}")
        assert status == 200, page
        for t in page["tasks"]:
            ticks.append(int(t["idempotency_key"].rsplit(":", 1)[1]))
        if page["next_after"] is None:
            return ticks
        after = page["next_after"]


class ScheduleTest(ServerTestCase):
    durability = "sync"

    def put(self, name, body):
        return self.call("PUT", f"/v1/schedules/{name}", body)

    def test_every_ms_enqueues_once_per_tick(self):
        q, name = self.qname(), self.qname("s")
        status, s = self.put(name, {"queue": q, "every_ms": 200, "task": {"payload": {"x": 1},
                                                                            "priority": 3}})
        self.assertEqual(status, 200, s)
        self.assertEqual((s["every_ms"], s["cron"], s["catch_up"], s["runs"]), (200, None, "one", 0))
        self.assertEqual(s["next_run_at"], s["created_at"] + 200)
        time.sleep(1.55)
        ticks = ticks_of(self.server, q)
        self.assertGreaterEqual(len(ticks), 5)
        self.assertLessEqual(len(ticks), 8)
        self.assertEqual(ticks, sorted(set(ticks)))
        self.assertEqual({b - a for a, b in zip(ticks, ticks[1:])}, {200})
        task = self.call("GET", f"/v1/queues/{q}/tasks?limit=1")[1]["tasks"][0]
        self.assertEqual((task["payload"], task["priority"]), ({"x": 1}, 3))
        status, got = self.call("GET", f"/v1/schedules/{name}")
        self.assertGreaterEqual(got["runs"], len(ticks))
        names = [x["name"] for x in self.call("GET", "/v1/schedules")[1]["schedules"]]
        self.assertIn(name, names)
        text = self.server.request("GET", "/metrics")[2].decode()
        self.assertIn(f'conveyor_schedule_runs_total{{schedule="{name}",queue="{q}"}}', text)
        self.assertIn(f'conveyor_schedule_next_run_timestamp_seconds{{schedule="{name}"', text)
        self.call("DELETE", f"/v1/schedules/{name}")

    def test_pause_resume_delete(self):
        q, name = self.qname(), self.qname("s")
        self.put(name, {"queue": q, "every_ms": 100, "task": {"payload": 1}})
        status, paused = self.call("POST", f"/v1/schedules/{name}/pause")
        self.assertEqual((status, paused["paused"], paused["next_run_at"]), (200, True, None))
        before = len(ticks_of(self.server, q))
        time.sleep(0.5)
        self.assertEqual(len(ticks_of(self.server, q)), before)
        status, resumed = self.call("POST", f"/v1/schedules/{name}/resume")
        self.assertEqual((status, resumed["paused"]), (200, False))
        time.sleep(0.5)
        self.assertGreater(len(ticks_of(self.server, q)), before)
        status, body = self.call("DELETE", f"/v1/schedules/{name}")
        self.assertEqual((status, body), (200, {"name": name, "deleted": True}))
        self.assertEqual(self.call("GET", f"/v1/schedules/{name}")[0], 404)
        self.assertEqual(self.call("DELETE", f"/v1/schedules/{name}")[0], 404)
        after = len(ticks_of(self.server, q))
        time.sleep(0.4)
        self.assertEqual(len(ticks_of(self.server, q)), after)

    def test_cron_with_a_time_zone(self):
        name = self.qname("s")
        status, s = self.put(name, {"queue": "reports", "cron": "30 2 * * MON-FRI",
                                    "timezone": "America/New_York", "task": {"payload": None}})
        self.assertEqual(status, 200, s)
        self.assertEqual((s["cron"], s["timezone"], s["every_ms"]),
                         ("30 2 * * MON-FRI", "America/New_York", None))
        next_at = s["next_run_at"]
        self.assertGreater(next_at, time.time() * 1000)
        self.assertLess(next_at, time.time() * 1000 + 4 * 86400000)
        status, alias = self.put(self.qname("s"), {"queue": "reports", "cron": "0 1 * * *",
                                                   "tz": "Asia/Tokyo", "task": {"payload": 1}})
        self.assertEqual((status, alias["timezone"]), (200, "Asia/Tokyo"), alias)
        # 02:30 in New York is 06:30 or 07:30 UTC.
        self.assertIn(time.gmtime(next_at / 1000).tm_hour, (6, 7))
        self.assertEqual(time.gmtime(next_at / 1000).tm_min, 30)

    def test_every_minute_cron_fires_at_the_minute(self):
        q, name = self.qname(), self.qname("s")
        now = time.time()
        if 60 - now % 60 > 20:
            self.skipTest("the next minute is more than 20 s away")  # keep the suite quick
        self.put(name, {"queue": q, "cron": "* * * * *", "task": {"payload": 1}})
        time.sleep(60 - now % 60 + 1.0)
        ticks = ticks_of(self.server, q)
        self.assertEqual(len(ticks), 1)
        self.assertEqual(ticks[0] % 60000, 0)

    def test_cli(self):
        q, name = self.qname(), self.qname("s")
        run = lambda *args: subprocess.run(  # noqa: E731
            [conveyor_bin(), "schedule", *args, "--server", self.server.url],
            capture_output=True, text=True, timeout=30)
        out = run("set", name, "--queue", q, "--every-ms", "60000", "--payload", '{"a":1}')
        self.assertEqual(out.returncode, 0, out.stderr)
        out = run("list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(name, out.stdout)
        self.assertIn("every 60000 ms", out.stdout)
        out = run("show", name, "--json")
        self.assertEqual(json.loads(out.stdout)["task"]["payload"], {"a": 1})
        stats = subprocess.run([conveyor_bin(), "stats", "--server", self.server.url],
                               capture_output=True, text=True, timeout=30)
        self.assertIn("SCHEDULE", stats.stdout)
        self.assertIn(name, stats.stdout.split("SCHEDULE", 1)[1])
        self.assertEqual(run("pause", name).returncode, 0)
        self.assertTrue(self.call("GET", f"/v1/schedules/{name}")[1]["paused"])
        self.assertEqual(run("resume", name).returncode, 0)
        self.assertEqual(run("delete", name).returncode, 0)
        out = run("show", name)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("no such schedule", out.stderr)
        out = run("set", name, "--queue", q, "--cron", "61 * * * *", "--payload", "1")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("minute", out.stderr)

    def test_bad_input(self):
        name = self.qname("s")
        good = {"queue": "q", "every_ms": 1000, "task": {"payload": 1}}
        for change, field in [({"queue": None}, "queue"), ({"queue": "bad name"}, "queue"),
                              ({"every_ms": None}, "cron"), ({"every_ms": 5}, "every_ms"),
                              ({"cron": "* * * * *"}, "cron"),
                              ({"every_ms": None, "cron": "* * *"}, "cron"),
                              ({"every_ms": None, "cron": "0 0 * * *", "timezone": "Mars/Base"},
                               "timezone"),
                              ({"catch_up": "some"}, "catch_up"), ({"task": None}, "task"),
                              ({"task": {"priority": 1}}, "task.payload"),
                              ({"task": {"payload": 1, "run_at": 5}}, "task.run_at"),
                              ({"task": {"payload": 1, "key": "k" * 200}}, "task.key"),
                              ({"extra": 1}, "extra"), ({"paused": "yes"}, "paused")]:
            body = dict(good)
            for k, v in change.items():
                if v is None:
                    body.pop(k, None)
                else:
                    body[k] = v
            with self.subTest(change=change):
                status, answer = self.put(name, body)
                self.assertError(status, answer, 400)
                self.assertIn(field, answer["error"]["message"])
        status, answer = self.call("PUT", "/v1/schedules/bad%20name", good)
        self.assertError(status, answer, 400)
        self.assertEqual(self.call("POST", f"/v1/schedules/{name}")[0], 405)
        self.assertEqual(self.call("POST", f"/v1/schedules/{name}/pause")[0], 404)


class ScheduleCrashTest(DurableTestCase):
    def run_with_gap(self, catch_up):
        data_dir = self.make_dir()
        server = self.start(data_dir, extra_args=["--threads", "2"])
        q = f"q-{uuid.uuid4().hex[:8]}"
        status, s = server.call("PUT", "/v1/schedules/crash-tick",
                                {"queue": q, "every_ms": 100, "catch_up": catch_up,
                                 "task": {"payload": 1}})
        self.assertEqual(status, 200, s)
        time.sleep(1.0)
        server.kill9()
        time.sleep(0.8)  # ~8 ticks missed while down
        server = self.start(data_dir, extra_args=["--threads", "2"])
        time.sleep(0.6)
        ticks = ticks_of(server, q)
        self.assertEqual(len(ticks), len(set(ticks)), "a tick enqueued twice")
        self.assertEqual(ticks, sorted(ticks))
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        return ticks, gaps, server

    def test_catch_up_all_runs_every_missed_tick_once(self):
        ticks, gaps, _ = self.run_with_gap("all")
        self.assertEqual(set(gaps), {100}, "every tick once, none missing")
        self.assertGreater(len(ticks), 18)

    def test_catch_up_one_runs_the_latest_missed_tick(self):
        ticks, gaps, server = self.run_with_gap("one")
        self.assertEqual(len([g for g in gaps if g > 100]), 1, gaps)  # one jump over the gap
        status, s = server.call("GET", "/v1/schedules/crash-tick")
        self.assertGreater(s["skipped"], 3)

    def test_catch_up_none_runs_no_missed_tick(self):
        ticks, gaps, server = self.run_with_gap("none")
        big = [g for g in gaps if g > 100]
        self.assertEqual(len(big), 1, gaps)
        self.assertGreaterEqual(big[0], 700)  # the ticks while down are absent


if __name__ == "__main__":
    unittest.main()
