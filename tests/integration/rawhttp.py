"""A raw-socket HTTP/1.1 client for tests that send what http.client refuses to send.

Used by test_bad_input.py and test_slow_clients.py: malformed framing, pipelining, slow or
silent clients. Standard library only. Every socket has a timeout, so nothing here can hang
a test; a peer that closes or resets the connection is reported, not raised, where a test
expects it (see RawClient.read_response and RawClient.wait_closed).
"""
import json
import select
import socket
import time


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (repeated names joined by ", ")
        self.body = body

    def json(self):
        """The body parsed as JSON (strict UTF-8), or None if it is not valid JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:300]!r}>"


class IncompleteResponse(Exception):
    pass


class RawClient:
    """One TCP connection to 127.0.0.1:port with a read buffer."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.peer_closed = False  # EOF or reset seen

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        """Sends all of data; False if the peer has closed or reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False

    def send_watching(self, data, piece=16384):
        """Sends data in pieces and stops early once the server has answered or closed.

        Returns True if everything was sent. A well-behaved client reads an early error
        response (413, 431) instead of pushing the rest of a huge request into a socket
        the server no longer reads."""
        for i in range(0, len(data), piece):
            readable, _, _ = select.select([self.sock], [], [], 0)
            if readable:
                return False
            try:
                self.sock.sendall(data[i:i + piece])
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                return False
            except socket.timeout:
                # The server stopped reading (its buffers are full): it should be
                # answering or closing; let the caller read.
                return False
        return True

    def _fill(self):
        """Reads more bytes into buf; False on EOF/reset. Raises socket.timeout."""
        if self.peer_closed:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            self.peer_closed = True
            return False
        if not chunk:
            self.peer_closed = True
            return False
        self.buf += chunk
        return True

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise IncompleteResponse(self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse(f"wanted {n} bytes, have {len(self.buf)}")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout=None, head_request=False):
        """Reads one response. None if the connection was closed before any byte of it.

        Raises socket.timeout if the server neither answers nor closes in time, and
        IncompleteResponse if it closes in the middle of a response."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while not self.buf:
            if not self._fill():
                return None
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise IncompleteResponse(self.buf[:200])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise IncompleteResponse(f"bad status line {lines[0][:200]!r}")
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = {}
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if head_request or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self._read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_line():  # trailers
                        pass
                    break
                body += self._read_exact(size)
                self._read_line()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return Response(version, status, reason, headers, body)

    def wait_closed(self, timeout):
        """True if the peer closes (EOF or reset) within timeout; data read meanwhile is
        kept in buf. False if the connection is still open at the deadline."""
        deadline = time.monotonic() + timeout
        while not self.peer_closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                self._fill()
            except socket.timeout:
                return False
        return True


def request_bytes(method, path, body=None, headers=None, version="HTTP/1.1"):
    """Serializes a well-formed request (Host and Content-Length added)."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
