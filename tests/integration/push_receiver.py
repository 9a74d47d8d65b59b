"""A push endpoint for the push delivery tests: an HTTP (or https) server on 127.0.0.1 in
a thread of the test process. `behave(request)` decides each answer: return
(status, headers, body), or one of the misbehaviours ("hang", ("sleep", s, answer),
"close_mid_body", "garbage", "header_flood"). Every request is recorded (path, headers
with lower-case names, body, time). Standard library only; stopped by stop()."""
import base64
import hashlib
import hmac
import http.server
import socket
import ssl
import threading
import time


class Recorded:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers
        self.body = body
        self.at = time.time()


def verify_signature(secret, headers, body, now=None, tolerance=300):
    """docs/PUSH.md's receiver recipe: True when the Standard Webhooks signature matches
    and the timestamp is within `tolerance` seconds of now (replays are refused)."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    if abs((now or time.time()) - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") \
        else secret.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s.removeprefix("v1,"))
               for s in signatures.split() if s.startswith("v1,"))


class Receiver:
    def __init__(self, behave=None, tls_cert=None):
        self.behave = behave or (lambda req: (200, {}, b""))
        self.requests = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.stopping = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                req = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    outer.requests.append(req)
                    outer.active += 1
                    outer.max_active = max(outer.max_active, outer.active)
                try:
                    self.answer(outer.behave(req))
                finally:
                    with outer.lock:
                        outer.active -= 1

            def answer(self, action):
                if action == "hang":
                    outer.stopping.wait(60)
                    self.close_connection = True
                    return
                if isinstance(action, tuple) and action[0] == "sleep":
                    outer.stopping.wait(action[1])
                    action = action[2]
                if action == "close_mid_body":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "early_hints":  # a 103 first, then the real answer
                    self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                                     b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 11\r\n\r\n{\"hint\":1}\n")
                    return
                if action == "garbage":
                    self.wfile.write(b"this is not HTTP at all\r\n\r\n")
                    self.close_connection = True
                    return
                if action == "header_flood":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for i in range(5000):
                        self.wfile.write(b"X-Flood-%d: %s\r\n" % (i, b"y" * 50))
                    self.wfile.write(b"Content-Length: 0\r\n\r\n")
                    self.close_connection = True
                    return
                status, headers, body = action
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # misbehaving on purpose
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert[0], tls_cert[1])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if tls_cert else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def seen(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
