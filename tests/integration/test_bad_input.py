"""HTTP/JSON bad input against a real `conveyor serve` (TESTPLAN D.19-D.27).

Every case expects the right status and a JSON error body {"error":{"code","message"}},
and the server must still answer /healthz afterwards (checked in tearDown). Requests that
http.client refuses to send go through rawhttp.RawClient.

Run: CONVEYOR_BIN=build/conveyor python3 tests/integration/test_bad_input.py
"""
import json
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerTestCase  # noqa: E402
from rawhttp import RawClient, IncompleteResponse, request_bytes  # noqa: E402

MIB = 1024 * 1024
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
RSS_LIMIT_KB = 512 * 1024  # bad input must not make the server balloon
# An unknown (or purged) task id answers 404 not_found (docs/API.md).
TASK_NOT_FOUND = ("not_found",)


class BadInputCase(ServerTestCase):
    """Helpers shared by the classes below; tearDown proves the server still serves."""

    def tearDown(self):
        self.assertServing()

    def assertServing(self):
        self.assertIsNone(self.server.proc.poll(),
                          "server exited:\n" + self.server.output()[-4000:])
        status, _, body = self.server.request("GET", "/healthz", timeout=5)
        self.assertEqual(status, 200, body)
        try:
            with open(f"/proc/{self.server.proc.pid}/status") as f:
                rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            return
        self.assertLess(rss_kb, RSS_LIMIT_KB, f"server RSS {rss_kb} kB")

    def raw(self, timeout=5.0, **kw):
        return RawClient(self.server.port, timeout=timeout, **kw)

    def post(self, path, text, content_type="application/json", headers=None):
        """POSTs text/bytes exactly as given; returns (status, headers, parsed)."""
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        body = text.encode() if isinstance(text, str) else text
        return self.server.request("POST", path, body, headers=hdrs)

    def enqueue(self, queue, spec):
        status, body = self.server.call("POST", f"/v1/queues/{queue}/tasks", spec)
        self.assertEqual(status, 201, body)
        return body["id"]

    lease_max = 100  # `max` of a lease is bounded by the batch limit

    def lease_all(self, queue, max_tasks=None):
        status, body = self.server.call("POST", f"/v1/queues/{queue}/lease",
                                        {"max": max_tasks or self.lease_max, "wait_ms": 0})
        self.assertEqual(status, 200, body)
        return body["tasks"]

    def assertErrorBody(self, body):
        self.assertIsInstance(body, dict, body)
        self.assertIn("error", body, body)
        self.assertIsInstance(body["error"].get("code"), str, body)
        self.assertRegex(body["error"]["code"], CODE_RE)
        self.assertIsInstance(body["error"].get("message"), str, body)

    def assertFieldError(self, status, body, field):
        self.assertError(status, body, 400, "invalid_field")
        self.assertIn(field, body["error"]["message"], body)

    def assertRawError(self, resp, statuses, code=None):
        self.assertIsNotNone(resp, "connection closed without a response")
        self.assertIn(resp.status, statuses, resp)
        body = resp.json()
        self.assertErrorBody(body)
        if code is not None:
            self.assertEqual(body["error"]["code"], code, body)
        return body

    def assertClosedSoon(self, client, timeout=5.0):
        self.assertTrue(client.wait_closed(timeout),
                        f"server kept the connection open for {timeout} s")

    def read_all_responses(self, client, timeout=5.0):
        """Reads responses until the server closes (or stays silent for timeout)."""
        out = []
        while True:
            try:
                resp = client.read_response(timeout=timeout)
            except socket.timeout:
                return out, False
            except IncompleteResponse:
                return out, True
            if resp is None:
                return out, True
            out.append(resp)


class BodyLimitTest(BadInputCase):
    """D.19: bodies over the 1 MiB default limit."""

    def test_content_length_over_limit_answered_before_body(self):
        head = (b"POST /v1/queues/big/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: 2000000\r\n\r\n")
        with self.raw() as c:
            # Only headers and 1000 body bytes: a server that waits for the body hangs here.
            self.assertTrue(c.send(head + b'{"payload":"' + b"a" * 988))
            resp = c.read_response(timeout=5)
            self.assertRawError(resp, (413,), "body_too_large")
            self.assertClosedSoon(c)
        self.assertEqual(self.lease_all("big"), [])

    def test_content_length_one_byte_over_limit(self):
        prefix, suffix = b'{"payload":"', b'"}'
        body = prefix + b"a" * (MIB + 1 - len(prefix) - len(suffix)) + suffix
        self.assertEqual(len(body), MIB + 1)
        with self.raw() as c:
            c.send_watching(request_bytes("POST", "/v1/queues/big1/tasks", body,
                                          {"Content-Type": "application/json"}))
            self.assertRawError(c.read_response(timeout=5), (413,), "body_too_large")
            self.assertClosedSoon(c)
        self.assertEqual(self.lease_all("big1"), [])

    def test_body_just_under_limit_accepted(self):
        payload = "b" * 1_000_000
        tid = self.enqueue("nearlimit", {"payload": payload})
        status, task = self.server.call("GET", f"/v1/tasks/{tid}")
        self.assertEqual(status, 200)
        self.assertEqual(task["payload"], payload)

    def test_chunked_over_limit(self):
        head = (b"POST /v1/queues/bigchunked/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        piece = 64 * 1024
        with self.raw() as c:
            self.assertTrue(c.send(head))
            first = b'{"payload":"' + b"c" * (piece - 12)
            sent = 0
            for i in range(24):  # up to 1.5 MiB
                data = first if i == 0 else b"c" * piece
                if not c.send_watching(b"%x\r\n" % len(data) + data + b"\r\n"):
                    break
                sent += len(data)
            resp = c.read_response(timeout=5)
            self.assertRawError(resp, (413,), "body_too_large")
            self.assertClosedSoon(c)
        self.assertEqual(self.lease_all("bigchunked"), [])

    def test_chunked_within_limit_accepted(self):
        body = b'{"payload":{"chunked":true}}'
        req = (b"POST /v1/queues/okchunked/tasks HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % 5 + body[:5] + b"\r\n"
               + b"%x\r\n" % (len(body) - 5) + body[5:] + b"\r\n0\r\n\r\n")
        with self.raw() as c:
            self.assertTrue(c.send(req))
            resp = c.read_response(timeout=5)
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 201, resp)
            tid = resp.json()["id"]
        status, task = self.server.call("GET", f"/v1/tasks/{tid}")
        self.assertEqual(task["payload"], {"chunked": True})


class HeaderLimitTest(BadInputCase):
    """D.20: header floods and huge request lines."""

    def expect_rejected(self, data, statuses=(431, 400)):
        with self.raw() as c:
            c.send_watching(data)
            resp = c.read_response(timeout=5)
            body = self.assertRawError(resp, statuses)
            if resp.status == 431:
                self.assertEqual(body["error"]["code"], "headers_too_large", body)
            self.assertClosedSoon(c)

    def test_header_block_over_16k(self):
        headers = "".join(f"X-Fill-{i}: {'v' * 1000}\r\n" for i in range(20))
        self.expect_rejected(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())

    def test_ten_thousand_headers(self):
        headers = "".join(f"X-H{i}: v\r\n" for i in range(10000))
        self.expect_rejected(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())

    def test_one_megabyte_header(self):
        self.expect_rejected(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                             + b"a" * MIB + b"\r\n\r\n")

    def test_huge_request_line(self):
        self.expect_rejected(b"GET /healthz?q=" + b"a" * 100_000 + b" HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n", statuses=(414, 400, 431))

    def test_huge_path(self):
        self.expect_rejected(b"POST /v1/queues/" + b"q" * 50_000 + b"/tasks HTTP/1.1\r\n"
                             b"Host: x\r\nContent-Length: 13\r\n\r\n{\"payload\":1}",
                             statuses=(414, 400, 431))

    def test_headers_under_limit_accepted(self):
        headers = {f"X-Small-{i}": "v" for i in range(100)}
        headers["Cookie"] = "c" * 8000
        status, _, body = self.server.request("GET", "/healthz", headers=headers)
        self.assertEqual(status, 200, body)


class MalformedJsonTest(BadInputCase):
    """D.21 (syntax) and D.22 (UTF-8)."""

    BAD = [
        ("truncated", '{"payload": 1'),
        ("truncated string", '{"payload": "abc'),
        ("trailing garbage", '{"payload": 1} x'),
        ("two documents", '{"payload": 1}{"payload": 2}'),
        ("block comment", '{"payload": 1 /* comment */}'),
        ("line comment", '// comment\n{"payload": 1}'),
        ("trailing comma in object", '{"payload": 1,}'),
        ("trailing comma in array", '{"payload": [1, 2,]}'),
        ("NaN", '{"payload": NaN}'),
        ("Infinity", '{"payload": Infinity}'),
        ("-Infinity", '{"payload": -Infinity}'),
        ("single quotes", "{'payload': 1}"),
        ("unquoted key", '{payload: 1}'),
        ("leading zero", '{"payload": 01}'),
        ("bare word", 'payload'),
        ("duplicate keys", '{"payload": 1, "payload": 2}'),
        ("duplicate priority", '{"payload": 1, "priority": 1, "priority": 2}'),
        ("control char in string", '{"payload": "a\x01b"}'),
        ("invalid escape", '{"payload": "\\x41"}'),
    ]

    def test_malformed_task_spec(self):
        for name, text in self.BAD:
            with self.subTest(name):
                status, _, body = self.post("/v1/queues/badjson/tasks", text)
                self.assertError(status, body, 400, "invalid_json")
        self.assertEqual(self.lease_all("badjson"), [])

    def test_malformed_on_other_endpoints(self):
        for path in ("/v1/queues/badjson2/lease", "/add_task", "/v1/ack"):
            for name, text in self.BAD[:6]:
                with self.subTest(path=path, case=name):
                    status, _, body = self.post(path, text)
                    self.assertError(status, body, 400, "invalid_json")

    def test_empty_and_non_object_bodies(self):
        for text in ("", "[]", "42", "null", '"payload"'):
            with self.subTest(text=text):
                status, _, body = self.post("/v1/queues/badjson3/tasks", text)
                self.assertError(status, body, 400)
                self.assertIn(body["error"]["code"], ("invalid_json", "invalid_field"), body)
        self.assertEqual(self.lease_all("badjson3"), [])

    def test_missing_payload(self):
        status, _, body = self.post("/v1/queues/badjson4/tasks", '{"priority": 1}')
        self.assertError(status, body, 400)
        self.assertIn("payload", body["error"]["message"], body)

    def test_invalid_utf8_in_body_string(self):
        cases = [
            b'{"payload": "\xff\xfe"}',
            b'{"payload": {"k\xc3": 1}}',
            b'{"payload": "\xed\xa0\x80"}',  # encoded surrogate
            b'{"payload": "ok", "idempotency_key": "\xc0\xaf"}',  # overlong '/'
        ]
        for raw in cases:
            with self.subTest(raw=raw):
                status, _, body = self.post("/v1/queues/badutf8/tasks", raw)
                # harness parses the body as strict UTF-8 JSON: raw echo fails here
                self.assertError(status, body, 400)
        self.assertEqual(self.lease_all("badutf8"), [])

    def test_invalid_utf8_in_queue_name_and_header(self):
        with self.raw() as c:
            c.send(request_bytes("POST", "/v1/queues/%FF%FE/tasks", b'{"payload":1}'))
            self.assertRawError(c.read_response(), (400,), "invalid_queue_name")
        with self.raw() as c:
            c.send(b"POST /v1/queues/\xff\xfe/tasks HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 13\r\n\r\n{\"payload\":1}")
            self.assertRawError(c.read_response(), (400,))
        with self.raw() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Worker: \xff\xfe\x80\r\n\r\n")
            resp = c.read_response()
            self.assertIsNotNone(resp)
            self.assertIn(resp.status, (200, 400), resp)

    def test_zz_log_has_no_raw_invalid_utf8(self):
        # Runs after the cases above in this class (alphabetical order).
        self.post("/v1/queues/badutf8log/tasks", b'{"payload": "\xff\xfe"}')
        time.sleep(0.2)
        fd = self.server.log.fileno()
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail(f"server log contains raw invalid UTF-8 near "
                      f"{data[max(0, e.start - 80):e.end + 20]!r}")


class WrongFieldTest(BadInputCase):
    """D.21 (types) and D.23 (edge numbers): 400 invalid_field naming the field."""

    SPEC_CASES = [
        ('{"payload":1,"priority":"high"}', "priority"),
        ('{"payload":1,"priority":true}', "priority"),
        ('{"payload":1,"priority":2147483648}', "priority"),
        ('{"payload":1,"priority":-2147483649}', "priority"),
        ('{"payload":1,"priority":1.5}', "priority"),
        ('{"payload":1,"delay_ms":{}}', "delay_ms"),
        ('{"payload":1,"delay_ms":"10"}', "delay_ms"),
        ('{"payload":1,"delay_ms":1e18}', "delay_ms"),
        ('{"payload":1,"delay_ms":9223372036854775808}', "delay_ms"),
        ('{"payload":1,"delay_ms":18446744073709551616}', "delay_ms"),
        ('{"payload":1,"delay_ms":1.5}', "delay_ms"),
        ('{"payload":1,"run_at":"tomorrow"}', "run_at"),
        ('{"payload":1,"run_at":1e30}', "run_at"),
        ('{"payload":1,"deadline":[]}', "deadline"),
        ('{"payload":1,"deadline":1e30}', "deadline"),
        ('{"payload":1,"max_attempts":1.5}', "max_attempts"),
        ('{"payload":1,"max_attempts":-1}', "max_attempts"),
        ('{"payload":1,"max_attempts":"3"}', "max_attempts"),
        ('{"payload":1,"lease_ms":0}', "lease_ms"),
        ('{"payload":1,"lease_ms":"1000"}', "lease_ms"),
        ('{"payload":1,"lease_ms":1e18}', "lease_ms"),
        ('{"payload":1,"idempotency_key":5}', "idempotency_key"),
        ('{"tasks":[]}', "tasks"),
        ('{"tasks":{}}', "tasks"),
        ('{"tasks":[{"payload":1},{"payload":2,"priority":"x"}]}', "priority"),
    ]

    LEASE_CASES = [
        ('{"max":-1}', "max"),
        ('{"max":1.5}', "max"),
        ('{"max":"2"}', "max"),
        ('{"wait_ms":60001}', "wait_ms"),
        ('{"wait_ms":-1}', "wait_ms"),
        ('{"wait_ms":"100"}', "wait_ms"),
        ('{"wait_ms":1.5}', "wait_ms"),
        ('{"lease_ms":0}', "lease_ms"),
        ('{"lease_ms":1e18}', "lease_ms"),
        ('{"worker":5}', "worker"),
    ]

    def test_task_spec_fields(self):
        for text, field in self.SPEC_CASES:
            with self.subTest(body=text):
                status, _, body = self.post("/v1/queues/types/tasks", text)
                self.assertFieldError(status, body, field)
        # every case, including the batch with one bad spec, stored nothing
        self.assertEqual(self.lease_all("types"), [])

    def test_overflowing_double(self):
        # 1e400 does not fit a double: a parse error or a field error, both 400.
        for field in ("priority", "delay_ms", "max_attempts"):
            with self.subTest(field=field):
                status, _, body = self.post("/v1/queues/types/tasks",
                                            '{"payload":1,"%s":1e400}' % field)
                self.assertError(status, body, 400)
                self.assertIn(body["error"]["code"], ("invalid_json", "invalid_field"))
        self.assertEqual(self.lease_all("types"), [])

    def test_int32_priority_bounds_accepted(self):
        for p in (2147483647, -2147483648):
            with self.subTest(priority=p):
                tid = self.enqueue("bounds", {"payload": p, "priority": p})
                status, task = self.server.call("GET", f"/v1/tasks/{tid}")
                self.assertEqual(task["priority"], p)

    def test_lease_fields(self):
        self.enqueue("leasetypes", {"payload": 1})
        for text, field in self.LEASE_CASES:
            with self.subTest(body=text):
                status, _, body = self.post("/v1/queues/leasetypes/lease", text)
                self.assertFieldError(status, body, field)
        # nothing was leased by the refused calls
        self.assertEqual(len(self.lease_all("leasetypes")), 1)

    def test_ack_and_extend_fields(self):
        tid = self.enqueue("acktypes", {"payload": 1})
        (task,) = self.lease_all("acktypes", 1)
        token = task["lease"]["token"]
        status, _, body = self.post(f"/v1/tasks/{tid}/ack", '{"lease":5}')
        self.assertFieldError(status, body, "lease")
        status, _, body = self.post(f"/v1/tasks/{tid}/extend",
                                    json.dumps({"lease": token, "lease_ms": "x"}))
        self.assertFieldError(status, body, "lease_ms")
        status, _, body = self.post(f"/v1/tasks/{tid}/nack",
                                    json.dumps({"lease": token, "retry_in_ms": "soon"}))
        self.assertFieldError(status, body, "retry_in_ms")
        status, _, body = self.post("/v1/ack", '{"acks":5}')
        self.assertFieldError(status, body, "acks")
        # the lease is intact after the refused calls
        status, body = self.server.call("POST", f"/v1/tasks/{tid}/ack", {"lease": token})
        self.assertEqual(status, 200, body)

    def test_query_parameters(self):
        tid = self.enqueue("querytypes", {"payload": 1})
        for path, name in ((f"/v1/tasks/{tid}?wait_ms=60001", "wait_ms"),
                           (f"/v1/tasks/{tid}?wait_ms=abc", "wait_ms"),
                           ("/v1/queues/querytypes/tasks?limit=1001", "limit"),
                           ("/v1/queues/querytypes/tasks?limit=abc", "limit"),
                           ("/v1/queues/querytypes/tasks?state=bogus", "state"),
                           ("/v1/queues/querytypes/tasks?after=abc", "after")):
            with self.subTest(path=path):
                status, _, body = self.server.request("GET", path)
                self.assertError(status, body, 400)
                self.assertIn(name, body["error"]["message"], body)

    def test_ids_in_path(self):
        bad_ids = ["18446744073709551616", "99999999999999999999999", "-1", "abc",
                   "1.5", "1e3", "0x10", "-0", "1a"]
        for tid in bad_ids:
            for method, suffix, body in (("GET", "", None), ("DELETE", "", None),
                                         ("POST", "/ack", {"lease": "t"}),
                                         ("POST", "/retry", None)):
                with self.subTest(id=tid, method=method, suffix=suffix):
                    status, _, resp = self.server.request(
                        method, f"/v1/tasks/{tid}{suffix}", body)
                    self.assertIn(status, (400, 404), resp)
                    self.assertErrorBody(resp)
        status, _, resp = self.server.request("GET", "/v1/tasks/18446744073709551615")
        self.assertError(status, resp, 404)
        self.assertIn(resp["error"]["code"], TASK_NOT_FOUND, resp)

    def test_huge_numbers_in_payload_round_trip(self):
        for text in ("18446744073709551616", "-0", "1e300", "-9223372036854775809",
                     "1e400"):
            with self.subTest(number=text):
                status, _, body = self.post("/v1/queues/numbers/tasks",
                                            '{"payload": %s}' % text)
                if status == 400:
                    self.assertErrorBody(body)
                    continue
                self.assertEqual(status, 201, body)
                status, _, task = self.server.request("GET", f"/v1/tasks/{body['id']}")
                self.assertEqual(status, 200)
                self.assertIsInstance(task, dict, "GET returned invalid JSON")
                self.assertIsInstance(task["payload"], (int, float))


class NestingTest(BadInputCase):
    """D.24: deep nesting is refused without a stack overflow; moderate depth works."""

    def test_deep_arrays(self):
        text = '{"payload":' + "[" * 10000 + "]" * 10000 + "}"
        status, _, body = self.post("/v1/queues/deep/tasks", text)
        self.assertError(status, body, 400)

    def test_deep_objects(self):
        text = '{"payload":' + '{"a":' * 10000 + "1" + "}" * 10000 + "}"
        status, _, body = self.post("/v1/queues/deep/tasks", text)
        self.assertError(status, body, 400)

    def test_deep_unbalanced(self):
        status, _, body = self.post("/v1/queues/deep/tasks", '{"payload":' + "[" * 100000)
        self.assertError(status, body, 400)

    def test_deep_in_ack_result(self):
        tid = self.enqueue("deepack", {"payload": 1})
        (task,) = self.lease_all("deepack", 1)
        text = ('{"lease":%s,"result":' % json.dumps(task["lease"]["token"])
                + "[" * 10000 + "]" * 10000 + "}")
        status, _, body = self.post(f"/v1/tasks/{tid}/ack", text)
        self.assertError(status, body, 400)

    def test_moderate_depth_accepted(self):
        payload = 0
        for i in range(20):
            payload = {"level": i, "next": [payload]}
        tid = self.enqueue("moderate", {"payload": payload})
        status, task = self.server.call("GET", f"/v1/tasks/{tid}")
        self.assertEqual(task["payload"], payload)

    def test_zz_after_nesting(self):
        self.assertEqual(self.lease_all("deep"), [])


class RoutingTest(BadInputCase):
    """D.25: wrong method, unknown path, content types, queue names."""

    def test_wrong_method_405_with_allow(self):
        cases = [
            ("DELETE", "/healthz", {"GET"}),
            ("POST", "/healthz", {"GET"}),
            ("PUT", "/v1/queues/q/tasks", {"GET", "POST"}),
            ("GET", "/v1/queues/q/lease", {"POST"}),
            ("PATCH", "/v1/tasks/1", {"GET", "DELETE"}),
            ("GET", "/v1/tasks/1/ack", {"POST"}),
            ("POST", "/v1/queues", {"GET"}),
            ("GET", "/add_task", {"POST"}),
            ("DELETE", "/metrics", {"GET"}),
        ]
        for method, path, needed in cases:
            with self.subTest(method=method, path=path):
                status, headers, body = self.server.request(method, path)
                self.assertError(status, body, 405, "method_not_allowed")
                self.assertIn("allow", headers)
                allowed = {m.strip().upper() for m in headers["allow"].split(",")}
                self.assertTrue(needed <= allowed, headers["allow"])
                self.assertNotIn(method, allowed)

    def test_unknown_path_404(self):
        for method, path in (("GET", "/nope"), ("GET", "/v1"), ("GET", "/v1/nope"),
                             ("POST", "/v1/queues/q/nope"), ("GET", "/v1/tasks/1/nope"),
                             ("GET", "/v2/queues"), ("GET", "/v1/queues/q/tasks/extra")):
            with self.subTest(method=method, path=path):
                status, _, body = self.server.request(method, path)
                self.assertError(status, body, 404, "not_found")

    def test_content_types(self):
        spec = '{"payload": {"ct": 1}}'
        for ct in ("text/plain", "multipart/form-data; boundary=x", "application/xml",
                   "application/octet-stream"):
            with self.subTest(content_type=ct):
                status, _, body = self.post("/v1/queues/ctype/tasks", spec, ct)
                self.assertError(status, body, 415, "unsupported_media_type")
        self.assertEqual(self.lease_all("ctype"), [])
        for ct in ("application/x-www-form-urlencoded", "application/json",
                   "application/json; charset=utf-8", "Application/JSON", None):
            with self.subTest(content_type=ct):
                status, _, body = self.post("/v1/queues/ctype/tasks", spec, ct)
                self.assertEqual(status, 201, body)
                status, task = self.server.call("GET", f"/v1/tasks/{body['id']}")
                self.assertEqual(task["payload"], {"ct": 1})

    def test_bad_queue_names(self):
        bad = ["a" * 129, "..", ".", "...", "a%2Fb", "%C3%A9", "a%20b", "%2E%2E",
               "a%00b", "%FF", "a:b", "a*b", "a%2Bb"]
        for name in bad:
            for method, suffix, body in (("POST", "/tasks", {"payload": 1}),
                                         ("POST", "/lease", {"max": 1}),
                                         ("GET", "", None),
                                         ("PUT", "", {"paused": False})):
                with self.subTest(name=name[:20], method=method, suffix=suffix):
                    status, _, resp = self.server.request(
                        method, f"/v1/queues/{name}{suffix}", body)
                    self.assertError(status, resp, 400, "invalid_queue_name")

    def test_raw_bad_queue_names(self):
        # Not valid in an HTTP request target at all: any 400 (or a close) will do.
        for target in (b"/v1/queues/\xc3\xa9/tasks", b"/v1/queues/a b/tasks"):
            with self.subTest(target=target):
                with self.raw() as c:
                    c.send(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 13\r\n\r\n{\"payload\":1}")
                    self.assertRawError(c.read_response(timeout=5), (400,))

    def test_good_queue_names(self):
        for name in ("a" * 128, "A.b-c_9", "a..b", "..a", "-", "_"):
            with self.subTest(name=name[:20]):
                tid = self.enqueue(name, {"payload": name})
                status, task = self.server.call("GET", f"/v1/tasks/{tid}")
                self.assertEqual(task["queue"], name)


class FramingTest(BadInputCase):
    """D.26 smuggling/ambiguity, D.27 pipelining, HTTP/1.0."""

    def assertNoSmuggling(self, data, allow_chunked_processing=False):
        with self.raw() as c:
            c.send(data)
            responses, closed = self.read_all_responses(c, timeout=5)
        self.assertTrue(closed, f"connection left open after an ambiguous request: "
                                f"{responses}")
        self.assertLessEqual(len(responses), 1, f"two requests were parsed: {responses}")
        for resp in responses:
            if allow_chunked_processing and resp.status == 201:
                continue  # RFC 9112 6.1: Transfer-Encoding wins, then the connection closes
            self.assertRawError(resp, (400,))
        self.assertEqual(self.lease_all("smuggled"), [], "a smuggled request was executed")
        return responses

    def smuggled(self):
        return request_bytes("POST", "/v1/queues/smuggled/tasks", b'{"payload":"evil"}',
                             {"Content-Type": "application/json"})

    def test_content_length_and_transfer_encoding(self):
        body = b'{"payload":1}'
        chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        data = (b"POST /v1/queues/smug1/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
                + chunked + self.smuggled())
        self.assertNoSmuggling(data, allow_chunked_processing=True)

    def test_transfer_encoding_then_content_length(self):
        body = b'{"payload":1}'
        data = (b"POST /v1/queues/smug2/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" + self.smuggled())
        self.assertNoSmuggling(data, allow_chunked_processing=True)

    def test_two_different_content_lengths(self):
        body = b'{"payload":1}'
        smuggled = self.smuggled()
        for a, b in ((len(body), len(body) + len(smuggled)),
                     (len(body) + len(smuggled), len(body))):
            with self.subTest(order=(a, b)):
                data = (b"POST /v1/queues/smug3/tasks HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (a, b)
                        + body + smuggled)
                self.assertNoSmuggling(data)
        data = (b"POST /v1/queues/smug3/tasks HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: %d, %d\r\n\r\n" % (len(body), len(body) + len(smuggled))
                + body + smuggled)
        self.assertNoSmuggling(data)
        self.assertEqual(self.lease_all("smug3"), [])

    def test_bad_content_length_values(self):
        for value in (b"-1", b"abc", b"+13", b"0x0d", b"13 13", b"99999999999999999999999"):
            with self.subTest(value=value):
                data = (b"POST /v1/queues/smug4/tasks HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: " + value + b"\r\n\r\n{\"payload\":1}")
                with self.raw() as c:
                    c.send(data)
                    responses, closed = self.read_all_responses(c, timeout=5)
                self.assertTrue(closed)
                self.assertLessEqual(len(responses), 1, responses)
                for resp in responses:
                    self.assertRawError(resp, (400, 413))
        self.assertEqual(self.lease_all("smug4"), [])

    def test_transfer_encoding_not_chunked_last(self):
        for te in (b"chunked, identity", b"gzip", b"xchunked", b"chunked\x0b"):
            with self.subTest(te=te):
                data = (b"POST /v1/queues/smug5/tasks HTTP/1.1\r\nHost: x\r\n"
                        b"Transfer-Encoding: " + te + b"\r\n\r\n"
                        b"d\r\n{\"payload\":1}\r\n0\r\n\r\n" + self.smuggled())
                with self.raw() as c:
                    c.send(data)
                    responses, closed = self.read_all_responses(c, timeout=5)
                self.assertTrue(closed)
                self.assertLessEqual(len(responses), 1, responses)
                for resp in responses:
                    self.assertRawError(resp, (400, 501))
        self.assertEqual(self.lease_all("smuggled"), [])
        self.assertEqual(self.lease_all("smug5"), [])

    def test_obs_fold_and_bare_lf(self):
        # (request, may the server wait for more bytes?) A strict parser that does not
        # take a bare LF as a line end still waits for CRLF CRLF: that is not a hang.
        for data, may_wait in (
                (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n", False),
                (b"GET /healthz HTTP/1.1\nHost: x\n\n", True),
                (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n", False),
                (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", False)):
            with self.subTest(data=data):
                with self.raw() as c:
                    c.send(data)
                    try:
                        resp = c.read_response(timeout=2 if may_wait else 5)
                    except IncompleteResponse:
                        resp = None
                    except socket.timeout:
                        if not may_wait:
                            raise
                        resp = None
                    if resp is not None:
                        self.assertIn(resp.status, (200, 400), resp)
                        if resp.status == 400:
                            self.assertErrorBody(resp.json())

    def test_pipelined_healthz(self):
        with self.raw(timeout=10) as c:
            self.assertTrue(c.send(request_bytes("GET", "/healthz") * 100))
            for i in range(100):
                resp = c.read_response(timeout=10)
                self.assertIsNotNone(resp, f"closed after {i} responses")
                self.assertEqual(resp.status, 200, resp)

    def test_pipelined_enqueues_in_order(self):
        data = b"".join(request_bytes("POST", "/v1/queues/pipe/tasks",
                                      json.dumps({"payload": {"i": i}}),
                                      {"Content-Type": "application/json"})
                        for i in range(100))
        ids = []
        with self.raw(timeout=10) as c:
            self.assertTrue(c.send(data))
            for i in range(100):
                resp = c.read_response(timeout=10)
                self.assertIsNotNone(resp, f"closed after {i} responses")
                self.assertEqual(resp.status, 201, resp)
                ids.append(resp.json()["id"])
        self.assertEqual(ids, sorted(set(ids)), "responses out of order or duplicated")
        for i, tid in enumerate(ids):
            status, task = self.server.call("GET", f"/v1/tasks/{tid}")
            self.assertEqual(task["payload"], {"i": i}, f"response {i} is not request {i}")

    def test_pipelined_mix_with_errors(self):
        reqs = [
            (request_bytes("GET", "/healthz"), 200),
            (request_bytes("GET", "/nope"), 404),
            (request_bytes("DELETE", "/healthz"), 405),
            (request_bytes("POST", "/v1/queues/pipemix/tasks", '{"payload":1}'), 201),
            (request_bytes("POST", "/v1/queues/pipemix/tasks", '{"payload":'), 400),
            (request_bytes("POST", "/v1/queues/pipemix/tasks", '{"payload":1}',
                           {"Content-Type": "text/plain"}), 415),
            (request_bytes("GET", "/healthz"), 200),
        ]
        with self.raw() as c:
            self.assertTrue(c.send(b"".join(r for r, _ in reqs)))
            got = []
            for _ in reqs:
                resp = c.read_response(timeout=5)
                self.assertIsNotNone(resp, f"closed after {got}")
                got.append(resp.status)
        self.assertEqual(got, [s for _, s in reqs])

    def test_http10(self):
        with self.raw() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            resp = c.read_response(timeout=5)
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200, resp)
            self.assertClosedSoon(c, 3)  # HTTP/1.0 without keep-alive: not persistent
        with self.raw() as c:
            c.send(request_bytes("POST", "/v1/queues/http10/tasks", '{"payload":"v10"}',
                                 {"Content-Type": "application/json"}, "HTTP/1.0"))
            resp = c.read_response(timeout=5)
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 201, resp)
        with self.raw() as c:
            c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = c.read_response(timeout=5)
            self.assertIsNotNone(resp)
            self.assertEqual(resp.status, 200, resp)
            if "keep-alive" in resp.headers.get("connection", "").lower():
                c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                self.assertEqual(c.read_response(timeout=5).status, 200)
            else:
                self.assertClosedSoon(c, 3)
        self.assertEqual(len(self.lease_all("http10")), 1)


class BatchLimitTest(BadInputCase):
    """Batch size default 1000."""

    def test_batch_1001_refused(self):
        status, body = self.server.call(
            "POST", "/v1/queues/batch1001/tasks",
            {"tasks": [{"payload": i} for i in range(1001)]})
        self.assertError(status, body, 400)
        self.assertEqual(self.lease_all("batch1001"), [])

    def test_batch_1000_accepted(self):
        status, body = self.server.call(
            "POST", "/v1/queues/batch1000/tasks",
            {"tasks": [{"payload": i} for i in range(1000)]})
        self.assertEqual(status, 201, body)
        self.assertEqual(len(body["ids"]), 1000)
        self.assertEqual(body["ids"], sorted(set(body["ids"])))


class ConfiguredLimitsTest(BadInputCase):
    """--max-body-bytes and --max-batch change the limits."""

    server_args = ("--max-body-bytes", "4096", "--max-batch", "5")
    lease_max = 5

    def body_of_size(self, n):
        prefix, suffix = b'{"payload":"', b'"}'
        return prefix + b"z" * (n - len(prefix) - len(suffix)) + suffix

    def test_body_at_limit_accepted(self):
        status, _, body = self.post("/v1/queues/small/tasks", self.body_of_size(4096))
        self.assertEqual(status, 201, body)

    def test_body_over_limit(self):
        status, _, body = self.post("/v1/queues/small2/tasks", self.body_of_size(4097))
        self.assertError(status, body, 413, "body_too_large")
        with self.raw() as c:
            c.send(b"POST /v1/queues/small2/tasks HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 5000\r\n\r\n")
            self.assertRawError(c.read_response(timeout=5), (413,), "body_too_large")
        self.assertEqual(self.lease_all("small2"), [])

    def test_batch_limit(self):
        status, body = self.server.call("POST", "/v1/queues/smallbatch/tasks",
                                        {"tasks": [{"payload": i} for i in range(6)]})
        self.assertError(status, body, 400)
        self.assertEqual(self.lease_all("smallbatch"), [])
        status, body = self.server.call("POST", "/v1/queues/smallbatch/tasks",
                                        {"tasks": [{"payload": i} for i in range(5)]})
        self.assertEqual(status, 201, body)
        self.assertEqual(len(body["ids"]), 5)


if __name__ == "__main__":
    unittest.main()
