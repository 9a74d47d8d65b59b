"""Topics (fan-out) through the real binary: subscriptions, one event into every
subscribed queue (pull and push), batches, idempotency per event, bad input, and a kill -9
while events are published: after the restart every event is in all of its subscribers
or in none. TESTPLAN F.37."""
import json
import os
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from durable_server import DurableTestCase  # noqa: E402
from harness import ServerTestCase  # noqa: E402
from push_receiver import Receiver  # noqa: E402


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class TopicTest(ServerTestCase):
    durability = "sync"

    def call(self, method, path, body=None):
        return self.server.call(method, path, body)

    def test_an_event_lands_in_every_subscriber_pull_and_push(self):
        seen = []
        r = Receiver(lambda req: (seen.append(req.body), (200, {}, b""))[1])
        self.addCleanup(r.stop)
        topic, pull_a, pull_b, pushed = name("t"), name("qa"), name("qb"), name("qp")
        status, body = self.call("PUT", f"/v1/queues/{pushed}", {"push": {"url": r.url()}})
        self.assertEqual(status, 200, body)
        status, body = self.call("PUT", f"/v1/topics/{topic}",
                                 {"queues": [pull_b, pull_a, pushed, pull_a]})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"name": topic, "queues": sorted([pull_a, pull_b, pushed])})
        self.assertEqual(self.call("GET", f"/v1/topics/{topic}")[1], body)
        self.assertIn(body, self.call("GET", "/v1/topics")[1]["topics"])

        status, body = self.call("POST", f"/v1/topics/{topic}/events",
                                 {"payload": {"order": 7}, "priority": 3})
        self.assertEqual(status, 201, body)
        ids = body["ids"]
        self.assertEqual(sorted(ids), sorted([pull_a, pull_b, pushed]))
        for q in (pull_a, pull_b):
            task = self.call("GET", f"/v1/tasks/{ids[q]}")[1]
            self.assertEqual((task["queue"], task["payload"], task["priority"], task["state"]),
                             (q, {"order": 7}, 3, "ready"))
        deadline = time.time() + 10
        while self.call("GET", f"/v1/tasks/{ids[pushed]}")[1]["state"] != "succeeded":
            self.assertLess(time.time(), deadline, "the push subscriber never got it")
            time.sleep(0.02)
        self.assertEqual([json.loads(b) for b in seen], [{"order": 7}])

    def test_batches_and_idempotency_per_event(self):
        topic, a, b = name("t"), name("qa"), name("qb")
        self.assertEqual(self.call("PUT", f"/v1/topics/{topic}", {"queues": [a, b]})[0], 200)
        status, body = self.call("POST", f"/v1/topics/{topic}/events",
                                 {"tasks": [{"payload": i} for i in range(3)]})
        self.assertEqual(status, 201, body)
        self.assertEqual(len(body["ids"]), 3)
        for q in (a, b):
            self.assertEqual(self.call("GET", f"/v1/queues/{q}")[1]["counts"]["ready"], 3)
        event = {"payload": "once", "idempotency_key": "evt-1"}
        status, first = self.call("POST", f"/v1/topics/{topic}/events", event)
        self.assertEqual(status, 201, first)
        status, again = self.call("POST", f"/v1/topics/{topic}/events", event)
        self.assertEqual(status, 200, again)
        self.assertEqual((again["ids"], again["duplicate"]), (first["ids"], True))
        for q in (a, b):
            self.assertEqual(self.call("GET", f"/v1/queues/{q}")[1]["counts"]["ready"], 4)

    def test_an_event_too_big_for_all_its_subscribers_is_refused_whole(self):
        topic = name("t")
        queues = [name("q") for _ in range(100)]
        self.assertEqual(self.call("PUT", f"/v1/topics/{topic}", {"queues": queues})[0], 200)
        status, body = self.call("POST", f"/v1/topics/{topic}/events",
                                 {"payload": "x" * 700_000})
        self.assertEqual(status, 413, body)
        self.assertIn("subscribers", body["error"]["message"])
        self.assertEqual(self.call("GET", f"/v1/queues/{queues[0]}")[1]["counts"]["ready"], 0)
        status, body = self.call("POST", f"/v1/topics/{topic}/events", {"payload": "small"})
        self.assertEqual(status, 201, body)

    def test_bad_input_and_unknown_topics(self):
        topic = name("t")
        for body, fragment in (({"queues": []}, "1 to 100"),
                               ({"queues": ["ok", "not ok"]}, "not a queue name"),
                               ({"queues": "q"}, "array"),
                               ({"queues": [1]}, "array"),
                               ({"queues": [f"q{i}" for i in range(101)]}, "1 to 100"),
                               ({"subscribers": ["q"]}, "not a topic setting")):
            status, answer = self.call("PUT", f"/v1/topics/{topic}", body)
            self.assertEqual(status, 400, (body, answer))
            self.assertIn(fragment, answer["error"]["message"])
        self.assertEqual(self.call("PUT", "/v1/topics/bad%20name", {"queues": ["q"]})[0], 400)
        self.assertEqual(self.call("GET", f"/v1/topics/{topic}")[0], 404)
        self.assertEqual(self.call("POST", f"/v1/topics/{topic}/events", {"payload": 1})[0], 404)
        self.assertEqual(self.call("DELETE", f"/v1/topics/{topic}")[0], 404)
        self.assertEqual(self.call("PUT", f"/v1/topics/{topic}", {"queues": ["q1"]})[0], 200)
        status, body = self.call("POST", f"/v1/topics/{topic}/events", {"payload": 1, "priority": "x"})
        self.assertEqual(status, 400, body)
        self.assertEqual(self.call("PATCH", f"/v1/topics/{topic}")[0], 405)
        self.assertEqual(self.call("DELETE", f"/v1/topics/{topic}"), (200, {"name": topic,
                                                                          "deleted": True}))
        self.assertEqual(self.call("GET", f"/v1/topics/{topic}")[0], 404)


class TopicCrashTest(DurableTestCase):
    def test_kill_9_leaves_each_event_in_all_subscribers_or_none(self):
        data_dir = self.make_dir()
        server = self.start(data_dir, extra_args=["--threads", "2"])
        queues = [f"crash-sub-{i}" for i in range(4)]  # spread over both shards
        status, body = server.call("PUT", "/v1/topics/crash-topic", {"queues": queues})
        self.assertEqual(status, 200, body)
        answered = []
        stop = threading.Event()

        def publish(worker):
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    status, body = server.call("POST", "/v1/topics/crash-topic/events",
                                               {"payload": {"w": worker, "n": n}}, timeout=5)
                except OSError:
                    return
                if status == 201:
                    answered.append((worker, n))

        threads = [threading.Thread(target=publish, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        server.kill9()
        stop.set()
        for t in threads:
            t.join(10)
        server = self.start(data_dir, extra_args=["--threads", "2"])
        events = {}
        for q in queues:
            after = 0
            while True:
                status, page = server.call("GET", f"/v1/queues/{q}/tasks?limit=1000&after={after}")
                self.assertEqual(status, 200, page)
                for task in page["tasks"]:
                    key = (task["payload"]["w"], task["payload"]["n"])
                    events.setdefault(key, []).append(q)
                if page["next_after"] is None:
                    break
                after = page["next_after"]
        self.assertGreater(len(answered), 10)
        partial = {k: v for k, v in events.items() if sorted(v) != queues}
        self.assertEqual(partial, {}, "events in only some subscribers")
        lost = [k for k in answered if k not in events]
        self.assertEqual(lost, [], "events answered 201 but gone after the crash")


if __name__ == "__main__":
    unittest.main()
