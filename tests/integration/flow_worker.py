"""A pull worker for the flow-control tests, run as its own process so that a test can
kill -9 it while it holds leases. Standard library only.

  python3 flow_worker.py URL QUEUE OUTFILE HOLD_MS LEASE_MS

It leases one task at a time (long-polling), writes "L id start_ms expires_at key" the
moment it has it, holds it HOLD_MS, writes "A id end_ms" and then acks. Times are epoch
ms. A worker killed mid-hold leaves an L line without its A line: that lease ends when it
expires (expires_at)."""
import json
import sys
import time
import urllib.request


def call(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def main():
    base, queue, outfile, hold_ms, lease_ms = sys.argv[1:6]
    with open(outfile, "a", buffering=1) as out:
        while True:
            got = call(f"{base}/v1/queues/{queue}/lease",
                       {"max": 1, "wait_ms": 1000, "lease_ms": int(lease_ms), "worker": "fw"})
            for task in got["tasks"]:
                start = time.time() * 1000
                out.write(f"L {task['id']} {start:.1f} {task['lease']['expires_at']} "
                          f"{task.get('key') or '-'}\n")
                time.sleep(int(hold_ms) / 1000)
                out.write(f"A {task['id']} {time.time() * 1000:.1f}\n")
                call(f"{base}/v1/tasks/{task['id']}/ack", {"lease": task["lease"]["token"]})


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
