"""HTTP phase: wrk rounds (and curl checks) against the stack and the baselines, from the
target's network: the index page, a room page with history, and a static file."""

from __future__ import annotations

import json
import os
import re
import resource
import time
from typing import Any

import readings
from baselines import DAPHNE_PORT, PLAIN_PORT
from deployment import Testbed
from harness import ROOM, BenchError, log, run
from readings import cores_used

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"unexpected wrk duration {text!r}")
    return round(float(match[1]) * UNITS[match[2]], 2)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms) and errors from ``wrk --latency`` output.

    Errors are socket errors (connect, read, write, timeout) plus non-2xx/3xx answers.

    Args:
        output: what ``wrk --latency`` printed.

    Returns:
        ``rps`` (requests/s), ``p50_ms`` and ``p99_ms`` (None when wrk printed none),
        ``requests`` (the run's total) and ``errors``.

    Raises:
        BenchError: the output has no requests/s, or a latency in a unit it does not know.
    """
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    if not rps:
        raise BenchError(f"no Requests/sec in wrk output: {output[-500:]}")
    result: dict[str, Any] = {"rps": round(float(rps[1]), 1)}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.M)
        result[f"p{pct}_ms"] = _ms(match[1]) if match else None
    total = re.search(r"(\d+) requests in ([0-9.]+)(\w+),", output)
    result["requests"] = int(total[1]) if total else None
    errors = 0
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(x) for x in sock.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad[1])
    result["errors"] = errors
    return result


class Http:
    """wrk and curl against the stack and the baselines, from the target's network.

    Args:
        prefix: command prefix from :func:`in_target_network`.
        testbed: the deployment.
        cookie: a session cookie (logged-in user).
        seconds: length of each wrk run.
        connections: wrk connections (2 threads).
    """

    def __init__(
        self, prefix: list[str], testbed: Testbed, cookie: str, seconds: int, connections: int
    ) -> None:
        self.prefix = prefix
        self.testbed = testbed
        self.seconds = seconds
        self.connections = connections
        name = testbed.server_name
        self.servers = {
            "stack": (f"https://{name}", []),
            "runserver": (f"http://{name}:{PLAIN_PORT}", ["X-Forwarded-Proto: https"]),
            "daphne_runserver": (f"http://{name}:{DAPHNE_PORT}", ["X-Forwarded-Proto: https"]),
        }
        self.cookie = f"sessionid={cookie}"

    def _headers(self, server: str, login: bool) -> list[str]:
        headers = list(self.servers[server][1])
        if login:
            headers.append(f"Cookie: {self.cookie}")
        return headers

    def check(self, server: str, path: str, login: bool, expect: str) -> int:
        """GET once with curl: raise BenchError unless 200 and ``expect`` is in the body.

        Args:
            server: a key of ``servers`` (``stack``, ``runserver``, ``daphne_runserver``).
            path: URL path, with its leading slash.
            login: send the bench user's session cookie.
            expect: text the body must hold ("" for any body).

        Returns:
            The body's size in bytes.

        Raises:
            BenchError: curl failed (20 s at most), the status was not 200 or ``expect``
                was not in the body.
        """
        base = self.servers[server][0]
        cmd = [
            *self.prefix,
            "curl",
            "--silent",
            "--show-error",
            "--insecure",
            "--max-time",
            "20",
            "--write-out",
            "\n%{http_code}",
        ]
        for header in self._headers(server, login):
            cmd += ["--header", header]
        out = run([*cmd, base + path]).stdout
        body, _, status = out.rpartition("\n")
        if status != "200" or expect not in body:
            raise BenchError(f"GET {base}{path}: HTTP {status}, {expect!r} not in the answer")
        return len(body.encode())

    def wait(self, server: str, seconds: float = 60) -> None:
        """Wait until ``server`` answers /healthz-free ``/accounts/login/`` with 200.

        Args:
            server: a key of ``servers``.
            seconds: how long to keep trying, once a second.

        Raises:
            BenchError: the last check's error, once ``seconds`` have passed.
        """
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.check(server, "/accounts/login/", False, "csrfmiddlewaretoken")
                return
            except BenchError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def wrk(self, server: str, path: str, login: bool) -> dict[str, Any]:
        """One wrk run of ``seconds`` with 2 threads and ``connections`` connections.

        Args:
            server: a key of ``servers``.
            path: URL path, with its leading slash.
            login: send the bench user's session cookie.

        Returns:
            What :func:`parse_wrk` reads, plus ``loadgen_cores`` (wrk's CPU use in cores),
            ``server_cores`` (cores per service group, see :func:`readings.cores_used`) and
            ``load1_after`` (this machine's 1-minute load average after the run).

        Raises:
            BenchError: wrk failed or printed no result.
        """
        cmd = [
            *self.prefix,
            "wrk",
            "--threads",
            "2",
            "--connections",
            str(self.connections),
            "--duration",
            f"{self.seconds}s",
            "--latency",
            "--timeout",
            "10s",
        ]
        for header in self._headers(server, login):
            cmd += ["--header", header]
        servers_before = readings.cpu(self.testbed)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        out = run([*cmd, self.servers[server][0] + path]).stdout
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers_after = readings.cpu(self.testbed)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {
            **parse_wrk(out),
            "loadgen_cores": round(cpu / elapsed, 2),
            # Cores each service group used during the run (where the 2 cores went).
            "server_cores": cores_used(servers_before, servers_after, elapsed),
            "load1_after": os.getloadavg()[0],
        }


def http_phase(http: Http, static_path: str, rounds: int) -> dict[str, Any]:
    """Room page, index page and static file, each server in turn, ``rounds`` times.

    The best round of each contender is kept (the machine is shared: the best round is the
    one least disturbed), and every round is in the JSON.

    Args:
        http: the servers, as :class:`Http` reaches them.
        static_path: URL path of the static file (:func:`static_candidate`).
        rounds: how many rounds of each case on each server.

    Returns:
        ``{case: {server: {**best round, "rounds": [every round]}}}`` for the cases
        ``index``, ``room`` and ``static`` (static on the stack and runserver only); each
        round as :meth:`Http.wrk` returns it.

    Raises:
        BenchError: a wrk run failed.
    """
    cases = {
        "index": ("/", True, ["stack", "runserver", "daphne_runserver"]),
        "room": (f"/chat/{ROOM}/", True, ["stack", "runserver", "daphne_runserver"]),
        "static": (static_path, False, ["stack", "runserver"]),
    }
    results: dict[str, Any] = {}
    for case, (path, login, servers) in cases.items():
        results[case] = {s: {"rounds": []} for s in servers}
        for n in range(rounds):
            for server in servers:
                log(f"http: {case} on {server}, round {n + 1}/{rounds}")
                results[case][server]["rounds"].append(http.wrk(server, path, login))
        for server in servers:
            best = max(results[case][server]["rounds"], key=lambda r: r["rps"])
            results[case][server].update(best)
    return results


def static_candidate(testbed: Testbed) -> tuple[str, int]:
    """The collectstatic file (unhashed name) whose size is closest to 50 KB: (URL path, bytes).

    Only ``.js`` and ``.css`` files of the live release's static directory are candidates.

    Raises:
        BenchError: the search failed in the target (also when it found no candidate).
    """
    script = (
        "import json, math, os, re, sys\n"
        "root = sys.argv[1]\n"
        "best = None\n"
        "for d, _, files in os.walk(root):\n"
        "    for f in files:\n"
        "        if re.search(r'\\.[0-9a-f]{12}\\.', f) or not f.endswith(('.js', '.css')):\n"
        "            continue\n"
        "        p = os.path.join(d, f); size = os.path.getsize(p)\n"
        "        score = abs(math.log(size / 50000))\n"
        "        if best is None or score < best[0]: best = (score, p, size)\n"
        "print(json.dumps([os.path.relpath(best[1], root), best[2]]))\n"
    )
    rel, size = json.loads(testbed.exec("python3", "-c", script, f"{testbed.root}/current/static"))
    return f"/static/{rel}", size
