"""A raw beanstalkd-protocol client for the integration tests: sends command lines and
reads replies (with their data blocks for RESERVED, FOUND and OK). Standard library only.
Used by test_beanstalk.py, against Conveyor's listener and against Debian's beanstalkd."""
import os
import shutil
import socket
import subprocess
import time

DATA_REPLIES = (b"RESERVED", b"FOUND", b"OK")


class Beanstalk:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        self.buf += chunk

    def read_reply(self):
        """One reply: (first line as bytes, data bytes or None)."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line.split(b" ")[0] not in DATA_REPLIES:
            return line, None
        size = int(line.split(b" ")[-1])
        while len(self.buf) < size + 2:
            self._fill()
        data, tail, self.buf = self.buf[:size], self.buf[size:size + 2], self.buf[size + 2:]
        assert tail == b"\r\n", (line, tail)
        return line, data

    def cmd(self, line, body=None):
        """Sends one command (and a put's body) and returns its reply."""
        data = line.encode() + b"\r\n" if isinstance(line, str) else line
        if body is not None:
            data += body + b"\r\n"
        self.send(data)
        return self.read_reply()

    def put(self, body, pri=0, delay=0, ttr=60):
        line, _ = self.cmd(f"put {pri} {delay} {ttr} {len(body)}", body)
        assert line.startswith(b"INSERTED "), line
        return int(line.split()[1])

    def closed_within(self, seconds):
        """True once the server has closed the connection (reading what it sends)."""
        deadline = time.time() + seconds
        self.sock.settimeout(0.1)
        try:
            while time.time() < deadline:
                try:
                    if not self.sock.recv(65536):
                        return True
                except socket.timeout:
                    pass
            return False
        finally:
            self.sock.settimeout(10)


def yaml_dict(data):
    """The flat `key: value` YAML of the stats commands."""
    out = {}
    for line in data.decode().splitlines()[1:]:
        key, _, value = line.partition(": ")
        out[key] = value
    return out


def beanstalkd_binary():
    """Debian's beanstalkd (scripts/install-deps.sh installs it)."""
    path = shutil.which("beanstalkd") or "/usr/bin/beanstalkd"
    if not os.path.exists(path):
        raise RuntimeError("beanstalkd is missing: run scripts/install-deps.sh")
    return path


def start_beanstalkd(port, *args):
    """Debian's beanstalkd on 127.0.0.1:port, in memory; returns its process once it
    accepts connections. The caller kills it (by PID)."""
    proc = subprocess.Popen([beanstalkd_binary(), "-l", "127.0.0.1", "-p", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("beanstalkd did not start")
