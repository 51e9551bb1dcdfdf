"""Run redis-cli once per case and print the replies as JSON.

Reads JSON on stdin::

    {"port": 6379, "cacert": "/path/ca.pem",
     "users": {"app": {"name": "chat", "password": "..."}, ...},
     "cases": [{"user": "app", "args": ["PING"]}, {"user": "", "args": ["PING"]}, ...]}

With "cacert" (a Redis serving TLS only) redis-cli speaks TLS and verifies the
server against that CA. A case with an empty user sends no credentials.
Passwords reach redis-cli on its stdin (--askpass), never in argv. Prints a
JSON list with, per case, redis-cli's stdout and stderr (stripped). redis-cli
exits 0 on error replies as well, so the replies are the result.
"""

import json
import subprocess
import sys

REDIS_CLI = "/usr/bin/redis-cli"


def run_case(port: int, cacert: str, users: dict, case: dict) -> dict:
    """Run one case; return its stdout and stderr.

    Raises:
        subprocess.TimeoutExpired: redis-cli took more than 10 seconds.
    """
    argv = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port)]
    if cacert:
        argv += ["--tls", "--cacert", cacert]
    password = None
    if case["user"]:
        user = users[case["user"]]
        argv += ["--user", user["name"], "--askpass"]
        password = user["password"] + "\n"
    argv += [str(arg) for arg in case["args"]]
    result = subprocess.run(  # noqa: S603 (fixed binary, arguments from the scenario)
        argv, input=password, capture_output=True, text=True, timeout=10, check=False
    )
    return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}


def main() -> None:
    """Read the cases from stdin, print the replies to stdout."""
    spec = json.load(sys.stdin)
    replies = [
        run_case(spec["port"], spec.get("cacert", ""), spec["users"], case)
        for case in spec["cases"]
    ]
    json.dump(replies, sys.stdout)


if __name__ == "__main__":
    main()
