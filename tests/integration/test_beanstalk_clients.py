"""Real beanstalkd client libraries that no one here wrote (npm's jackd 2.2.2 and
fivebeans 1.5.0, pinned in tests/integration/beanstalk_clients and installed by
scripts/install-deps.sh) drive Conveyor's beanstalkd listener through
beanstalk_clients/clients.js: put with priorities and delays, reserve with timeout, touch,
release, bury, kick, delete, stats, several tubes. The same script first runs against
Debian's beanstalkd, so its expectations are beanstalkd's own."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beanstalk_client import start_beanstalkd  # noqa: E402
from harness import Server, free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "beanstalk_clients")
NODE = shutil.which("node")


def run_client(lib, port, tube):
    out = subprocess.run([NODE, os.path.join(CLIENTS, "clients.js"), lib, str(port), tube],
                         capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


class RealClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # scripts/install-deps.sh installs both (make test runs it first): missing is a failure.
        if not NODE or not os.path.isdir(os.path.join(CLIENTS, "node_modules")):
            raise RuntimeError("node or the npm clients in tests/integration/beanstalk_clients "
                               "are missing: run scripts/install-deps.sh")
        cls.bport = free_port()
        cls.server = Server(["--beanstalk", f"127.0.0.1:{cls.bport}"], durability="sync")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def check(self, lib):
        port = free_port()
        ref = start_beanstalkd(port)
        try:
            rc, out = run_client(lib, port, f"{lib}-ref")
            self.assertEqual(rc, 0, f"against beanstalkd itself: {out}")
        finally:
            ref.kill()
            ref.wait()
        rc, out = run_client(lib, self.bport, f"{lib}-tube")
        self.assertEqual(rc, 0, out + self.server.output()[-2000:])
        self.assertIn(f"{lib}: ok", out)

    def test_jackd(self):
        self.check("jackd")

    def test_fivebeans(self):
        self.check("fivebeans")


if __name__ == "__main__":
    unittest.main(verbosity=2)
