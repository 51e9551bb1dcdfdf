"""HTTP over a unix socket, for the app_server scenario's gunicorn checks (stdlib only).

client.py get SOCKET PATH [TIMEOUT]
    One GET, waiting at most TIMEOUT seconds (default 30) for the answer;
    prints {"status": ..., "body": ...} or {"error": ...}.
client.py loop SOCKET SECONDS THREADS PATH
    THREADS clients each send GETs one after another for SECONDS; prints
    {"sent": n, "failed": n, "errors": {message: count}}. A request fails
    when it raises or answers anything but 200.
"""

import http.client
import json
import os
import socket
import sys
import threading
import time
from collections import Counter


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTPConnection that connects to a unix socket instead of host:port."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def get(path: str, url: str, timeout: float = 30.0) -> tuple[int, str]:
    """GET `url` over the unix socket `path`; return status and body.

    Args:
        timeout: seconds each step (connect, send, each read) may wait.
    """
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", url, headers={"Host": "testapp.example", "X-Forwarded-Proto": "https"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def loop(path: str, threads: int, url: str, stop_file: str) -> dict:
    """Send GETs from `threads` threads until `stop_file` exists; count failures."""
    sent = Counter()
    errors = Counter()
    slowest = [0.0, ""]
    lock = threading.Lock()
    deadline = time.monotonic() + 300

    def worker() -> None:
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            start = time.monotonic()
            started_at = time.strftime("%H:%M:%S")
            try:
                status, _ = get(path, url)
                error = None if status == 200 else f"HTTP {status}"
            except Exception as exc:  # every failure counts
                error = f"{type(exc).__name__}: {exc}"
            with lock:
                sent["n"] += 1
                if time.monotonic() - start > slowest[0]:
                    slowest[:] = [time.monotonic() - start, started_at]
                if error:
                    errors[error] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return {
        "sent": sent["n"],
        "failed": sum(errors.values()),
        "slowest": round(slowest[0], 3),
        "slowest_started_at": slowest[1],
        "errors": dict(errors),
    }


def main() -> int:
    """Run the sub-command named on the command line."""
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "get":
        try:
            timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
            status, body = get(path, sys.argv[3], timeout)
        except OSError as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "errno": exc.errno}))
            return 0
        print(json.dumps({"status": status, "body": body}))
        return 0
    if cmd == "loop":
        print(json.dumps(loop(path, int(sys.argv[3]), sys.argv[4], sys.argv[5])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
