"""Push delivery (`push` in a queue's config) through the real binary, against local
receivers (push_receiver.py) that succeed, fail, are slow, hang, ask to wait with
Retry-After, answer garbage, close mid-body, flood headers and verify signatures; https
with --push-ca-file; a kill -9 while deliveries are in flight. TESTPLAN F.37."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
from harness import Server, conveyor_bin  # noqa: E402
from push_receiver import Receiver, verify_signature  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OK = (200, {"Content-Type": "application/json"}, b'{"done":true}')


def wait_for(check, timeout=10.0, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return check()


class PushTestCase(unittest.TestCase):
    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.server_args, durability="sync")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def receiver(self, behave=None, tls_cert=None):
        r = Receiver(behave, tls_cert)
        self.addCleanup(r.stop)
        return r

    def push_queue(self, push, **config):
        q = f"push-{uuid.uuid4().hex[:10]}"
        body = dict(config)
        body["push"] = push
        status, answer = self.server.call("PUT", f"/v1/queues/{q}", body)
        self.assertEqual(status, 200, answer)
        return q

    def enqueue(self, q, payload, **fields):
        spec = dict(fields)
        spec["payload"] = payload
        status, body = self.server.call("POST", f"/v1/queues/{q}/tasks", spec)
        self.assertEqual(status, 201, body)
        return body["id"]

    def task(self, task_id):
        status, body = self.server.call("GET", f"/v1/tasks/{task_id}")
        self.assertEqual(status, 200, body)
        return body

    def stats(self, q):
        return self.server.call("GET", f"/v1/queues/{q}")[1]

    def wait_state(self, task_id, state, timeout=10.0):
        t = wait_for(lambda: self.task(task_id)["state"] == state, timeout)
        self.assertTrue(t, f"task {task_id} never became {state}: {self.task(task_id)}")
        return self.task(task_id)


class PushDeliveryTest(PushTestCase):
    def test_each_task_is_posted_with_its_headers_and_acked_with_the_result(self):
        r = self.receiver(lambda req: OK)
        q = self.push_queue({"url": r.url("/orders?x=1"), "headers": {"X-Team": "shop"}})
        ids = [self.enqueue(q, {"n": i}) for i in range(20)]
        for task_id in ids:
            t = self.wait_state(task_id, "succeeded")
            self.assertEqual(t["result"], {"done": True})
            self.assertEqual(t["attempts"], 1)
        seen = r.seen()
        self.assertEqual(sorted(int(s.headers["webhook-id"]) for s in seen), sorted(ids))
        first = next(s for s in seen if int(s.headers["conveyor-task-id"]) == ids[0])
        self.assertEqual(first.path, "/orders?x=1")
        self.assertEqual(json.loads(first.body), {"n": 0})
        self.assertEqual(first.headers["conveyor-queue"], q)
        self.assertEqual(first.headers["conveyor-attempt"], "1")
        self.assertEqual(first.headers["x-team"], "shop")
        self.assertEqual(first.headers["content-type"], "application/json")
        self.assertNotIn("webhook-signature", first.headers)  # no secret: unsigned
        push = self.stats(q)["push"]
        self.assertEqual((push["delivered"], push["breaker"], push["in_flight"]),
                         (20, "closed", 0))
        metrics = self.server.request("GET", "/metrics")[2].decode()
        self.assertIn(f'conveyor_push_delivered_total{{queue="{q}"}} 20', metrics)
        out = subprocess.run([conveyor_bin(), "stats", "--server", self.server.url],
                             capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout
        row = next((line.split() for line in out.splitlines() if line.startswith(q + " ")
                    and "closed" in line), None)
        self.assertIsNotNone(row, out)
        self.assertEqual(row[1:4], ["closed", "0", "20"], out)

    def test_signatures_verify_and_a_replayed_delivery_is_refused(self):
        verdicts = []

        def behave(req):
            ok = verify_signature(SECRET, req.headers, req.body)
            verdicts.append(ok)
            return OK if ok else (401, {}, b"bad signature")

        r = self.receiver(behave)
        q = self.push_queue({"url": r.url(), "secret": SECRET})
        self.assertEqual(self.stats(q)["config"]["push"]["secret"], "********")
        task_id = self.enqueue(q, {"amount": 12.5, "note": "caf\u00e9"})
        self.wait_state(task_id, "succeeded")
        self.assertEqual(verdicts, [True])
        req = r.seen()[0]
        # The same delivery five minutes and more later is a replay; a changed body fails.
        later = int(req.headers["webhook-timestamp"]) + 301
        self.assertFalse(verify_signature(SECRET, req.headers, req.body, now=later))
        self.assertFalse(verify_signature(SECRET, req.headers, req.body + b" "))
        self.assertTrue(verify_signature(SECRET, req.headers, req.body))

    def test_failures_are_retried_with_the_backoff_and_recorded(self):
        calls = {}

        def behave(req):
            n = calls[req.headers["webhook-id"]] = calls.get(req.headers["webhook-id"], 0) + 1
            return (500, {}, b"try again") if n <= 2 else OK

        r = self.receiver(behave)
        q = self.push_queue({"url": r.url()}, backoff={"base_ms": 50, "jitter": False})
        task_id = self.enqueue(q, "x")
        t = self.wait_state(task_id, "succeeded")
        self.assertEqual(t["attempts"], 3)
        self.assertEqual(len(t["errors"]), 2)
        self.assertIn("answered 500: try again", t["errors"][0]["message"])
        attempts = [s.headers["conveyor-attempt"] for s in r.seen()]
        self.assertEqual(attempts, ["1", "2", "3"])

    def test_a_4xx_kills_at_once_when_the_queue_says_so(self):
        r = self.receiver(lambda req: (422, {}, b"unprocessable"))
        q = self.push_queue({"url": r.url(), "dead_on_4xx": True})
        task_id = self.enqueue(q, 1)
        t = self.wait_state(task_id, "dead")
        self.assertEqual(t["attempts"], 1)
        r2 = self.receiver(lambda req: (404, {}, b""))
        q2 = self.push_queue({"url": r2.url()}, backoff={"base_ms": 30, "jitter": False},
                             max_attempts=2)
        t2 = self.wait_state(self.enqueue(q2, 1), "dead")
        self.assertEqual(t2["attempts"], 2)  # retried like any failure without dead_on_4xx

    def test_retry_after_pauses_the_endpoint_and_costs_no_attempt(self):
        answers = [(429, {"Retry-After": "1"}, b"slow down"), OK]

        def behave(req):
            return answers.pop(0) if answers else OK

        r = self.receiver(behave)
        q = self.push_queue({"url": r.url()})
        task_id = self.enqueue(q, "x")
        t = self.wait_state(task_id, "succeeded", timeout=15)
        self.assertEqual((t["attempts"], t["errors"]), (1, []))
        seen = r.seen()
        self.assertEqual(len(seen), 2)
        self.assertGreaterEqual(seen[1].at - seen[0].at, 0.9)
        self.assertEqual(self.stats(q)["push"]["deferred"], 1)

    def test_at_most_concurrency_deliveries_at_once(self):
        r = self.receiver(lambda req: ("sleep", 0.3, OK))
        q = self.push_queue({"url": r.url(), "concurrency": 4})
        ids = [self.enqueue(q, i) for i in range(12)]
        for task_id in ids:
            self.wait_state(task_id, "succeeded", timeout=20)
        self.assertEqual(r.max_active, 4)

    def test_a_hanging_endpoint_times_out_and_other_queues_go_on(self):
        hang = self.receiver(lambda req: "hang")
        slow_q = self.push_queue({"url": hang.url(), "timeout_ms": 300},
                                 backoff={"base_ms": 100, "jitter": False}, max_attempts=2)
        ok = self.receiver(lambda req: OK)
        fast_q = self.push_queue({"url": ok.url()})
        stuck = self.enqueue(slow_q, "never answered")
        started = time.time()
        fine = [self.enqueue(fast_q, i) for i in range(10)]
        for task_id in fine:
            self.wait_state(task_id, "succeeded")
        self.assertLess(time.time() - started, 5)
        t = self.wait_state(stuck, "dead", timeout=15)
        self.assertIn("timeout", t["errors"][0]["message"])

    def test_misbehaving_endpoints_cost_a_retry_and_nothing_else(self):
        for action in ("garbage", "close_mid_body", "header_flood"):
            with self.subTest(action=action):
                r = self.receiver(lambda req, a=action: a)
                q = self.push_queue({"url": r.url()}, max_attempts=1)
                t = self.wait_state(self.enqueue(q, action), "dead")
                self.assertEqual(len(t["errors"]), 1, t)
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)

    def test_a_host_name_is_looked_up(self):
        r = self.receiver(lambda req: OK)
        q = self.push_queue({"url": f"http://localhost:{r.port}/by-name"})
        self.wait_state(self.enqueue(q, "named"), "succeeded")
        self.assertEqual(r.seen()[0].path, "/by-name")
        q2 = self.push_queue({"url": "http://no-such-host.invalid/x"}, max_attempts=1)
        t = self.wait_state(self.enqueue(q2, "nowhere"), "dead", timeout=20)
        self.assertIn("resolve", t["errors"][0]["message"])

    def test_an_interim_1xx_answer_is_skipped_for_the_final_one(self):
        answers = ["early_hints", (500, {}, b"no"), OK]
        r = self.receiver(lambda req: answers.pop(0) if answers else OK)
        q = self.push_queue({"url": r.url(), "concurrency": 1},
                            backoff={"base_ms": 20, "jitter": False})
        first = self.wait_state(self.enqueue(q, 1), "succeeded")
        self.assertEqual((first["attempts"], first["result"]), (1, {"hint": 1}))
        # The next delivery on the same connection reads its own answer (500, then 200).
        second = self.wait_state(self.enqueue(q, 2), "succeeded")
        self.assertEqual(second["attempts"], 2)
        self.assertIn("answered 500", second["errors"][0]["message"])

    def test_the_breaker_opens_then_probes_and_closes(self):
        state = {"fail": True}
        r = self.receiver(lambda req: (503, {}, b"down") if state["fail"] else OK)
        q = self.push_queue({"url": r.url(), "breaker": {"failures": 3, "cooldown_ms": 2000}},
                            backoff={"base_ms": 10, "max_ms": 10, "jitter": False},
                            max_attempts=1000)
        ids = [self.enqueue(q, i) for i in range(5)]
        self.assertTrue(wait_for(lambda: self.stats(q)["push"]["breaker"] == "open"))
        time.sleep(0.3)  # deliveries that had started before it opened land first
        opened = len(r.seen())
        self.assertGreaterEqual(opened, 3)
        time.sleep(0.6)  # within the cool-down: nothing is delivered
        self.assertEqual(len(r.seen()), opened)
        self.assertEqual(self.stats(q)["counts"]["leased"], 0)
        state["fail"] = False
        for task_id in ids:
            self.wait_state(task_id, "succeeded", timeout=15)
        push = self.stats(q)["push"]
        self.assertEqual(push["breaker"], "closed")
        self.assertGreaterEqual(push["breaker_opened"], 1)

    def test_push_config_is_checked_and_can_be_removed(self):
        q = f"push-{uuid.uuid4().hex[:10]}"
        for bad, field in (({"url": "ftp://x/"}, "push.url"),
                           ({"concurrency": 2}, "push.url"),
                           ({"url": "http://x/", "concurrency": 0}, "push.concurrency"),
                           ({"url": "http://x/", "headers": {"Host": "x"}}, "push.headers"),
                           ({"url": "http://x/", "headers": {"X": "a\r\nb"}}, "push.headers"),
                           ({"url": "http://x/", "secret": "short"}, "push.secret"),
                           ({"url": "http://x/", "nope": 1}, "push.nope")):
            status, body = self.server.call("PUT", f"/v1/queues/{q}", {"push": bad})
            self.assertEqual(status, 400, body)
            self.assertIn(field, body["error"]["message"])
        r = self.receiver(lambda req: OK)
        q = self.push_queue({"url": r.url()})
        status, body = self.server.call("PUT", f"/v1/queues/{q}", {"push": None})
        self.assertEqual((status, body["push"]), (200, None))
        self.assertNotIn("push", self.stats(q))
        task_id = self.enqueue(q, "pull me")
        time.sleep(0.3)
        self.assertEqual(self.task(task_id)["state"], "ready")
        self.assertEqual(r.seen(), [])


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class PushTlsTest(unittest.TestCase):
    def test_https_endpoints_are_verified_against_the_ca_file(self):
        directory = tempfile.mkdtemp(prefix="conveyor-tls-")
        self.addCleanup(shutil.rmtree, directory, True)
        cert, key = make_cert(directory)
        r = Receiver(lambda req: OK, tls_cert=(cert, key))
        self.addCleanup(r.stop)
        for ca_file, expected in ((None, "dead"), (cert, "succeeded")):
            args = ["--push-ca-file", ca_file] if ca_file else []
            server = Server(args, durability="sync")
            self.addCleanup(server.stop)
            q = f"tls-{uuid.uuid4().hex[:8]}"
            status, body = server.call("PUT", f"/v1/queues/{q}",
                                       {"push": {"url": r.url()}, "max_attempts": 1})
            self.assertEqual(status, 200, body)
            status, body = server.call("POST", f"/v1/queues/{q}/tasks", {"payload": 1})
            task_id = body["id"]
            done = wait_for(lambda: server.call("GET", f"/v1/tasks/{task_id}")[1]["state"]
                            in ("dead", "succeeded"))
            t = server.call("GET", f"/v1/tasks/{task_id}")[1]
            self.assertTrue(done, t)
            self.assertEqual(t["state"], expected, t)
            if expected == "dead":
                self.assertIn("tls", t["errors"][0]["message"])
            server.stop()


class PushCrashTest(DurableTestCase):
    def test_kill_9_during_deliveries_loses_no_ack_and_redelivers_the_rest(self):
        data_dir = self.make_dir()
        server = self.start(data_dir)
        r = Receiver(lambda req: ("sleep", 0.2, OK))
        self.addCleanup(r.stop)
        status, body = server.call("PUT", "/v1/queues/crash-push",
                                   {"push": {"url": r.url(), "concurrency": 5}})
        self.assertEqual(status, 200, body)
        ids = [self.enqueue(server, "crash-push", {"n": i})["id"] for i in range(40)]
        wait_for(lambda: len(r.seen()) >= 12, timeout=10)
        acked = {t for t in ids if server.call("GET", f"/v1/tasks/{t}")[1]["state"] == "succeeded"}
        server.kill9()
        server = self.start(data_dir)  # the push config is stored: delivery resumes
        for task_id in ids:
            done = wait_for(lambda: server.call("GET", f"/v1/tasks/{task_id}")[1]["state"]
                            == "succeeded", timeout=20)
            self.assertTrue(done, server.call("GET", f"/v1/tasks/{task_id}")[1])
        delivered = {int(s.headers["webhook-id"]) for s in r.seen()}
        self.assertEqual(delivered, set(ids))
        redelivered = [s for s in r.seen() if int(s.headers["webhook-id"]) in acked]
        self.assertEqual(len(redelivered), len(acked), "an acknowledged delivery came again")


if __name__ == "__main__":
    unittest.main()
