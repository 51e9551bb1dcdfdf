"""`make bench`: measure the stack that `make site` deploys, side by side with the seed's setups.

What runs where:

* The stack under test is the local test bed of ``inventory/local`` (one all-in-one podman
  container). The baselines run in the same container, from the same release, as transient
  systemd units started for the benchmark and stopped after it: Django's plain
  ``runserver`` (WSGI, threaded) and daphne's ``runserver`` (what ``manage.py runserver``
  is when ``daphne`` is an installed app, as in the Channels tutorial) with the in-memory
  channel layer.
* The load generators (wrk from Debian, and :mod:`fanout`) run on this machine but inside the
  container's network namespace (``nsenter --net``), with a private ``/etc/hosts`` that maps the
  site's name to 127.0.0.1. So the stack is reached by name over TLS with SNI, the baselines on
  loopback ports that the firewall keeps private, and every figure in one comparison crosses
  the same loopback path. The generators share the two cores with the stack: their CPU use
  is recorded next to each figure.
* Comparisons alternate between the contenders in one run; ratios are the headline.

Phases: provisioning (cold ``site.yml`` on a freshly created container, then a warm re-run;
skip with ``--no-provision``), HTTP pages, a static file, WebSocket fan-out, memory. The results
go to ``bench/results/<date>-<host>.md`` and ``.json``; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readings  # noqa: E402
import targets  # noqa: E402
from baselines import DAPHNE_PORT, PLAIN_PORT, Baselines  # noqa: E402
from deployment import Testbed, in_target_network  # noqa: E402
from harness import ROOM, ROOT, WORK, BenchError, log, run  # noqa: E402
from provisioning import provision  # noqa: E402
from readings import cores_used  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FANOUT_ROOM = "fanout"
# wrk's connections for the HTTP pages, each with one request outstanding at a time.
WRK_CONNECTIONS = 32


# --- HTTP -----------------------------------------------------------------------------------
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"unexpected wrk duration {text!r}")
    return round(float(match[1]) * UNITS[match[2]], 2)


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms) and errors from ``wrk --latency`` output.

    Errors are socket errors (connect, read, write, timeout) plus non-2xx/3xx answers.
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

        Returns:
            The body's size in bytes.
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
        """Wait until ``server`` answers /healthz-free ``/accounts/login/`` with 200."""
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
        """One wrk run; requests/s, p50/p99 (ms), errors and wrk's CPU use (cores)."""
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


def app_cost(testbed: Testbed, cookie: str, requests: int) -> dict[str, Any]:
    """CPU per request of the index and room pages without any server (bench/ceiling.py).

    Returns ``{"cores": n, "pages": {"index": {...}, "room": {...}}}``; each page has
    ``django_cpu_ms``, ``postgresql_cpu_ms``, ``wall_ms`` and ``ceiling_rps``: the cores of
    the machine divided by the two CPU figures, the most requests per second this machine
    could serve of that page if everything else (server, nginx, TLS, wrk) cost nothing.

    Args:
        testbed: the deployment.
        cookie: a bench user's session key.
        requests: measured requests per page (as many again warm up first).

    Raises:
        BenchError: a page did not answer 200, or the script failed.
    """
    paths = {"index": "/", "room": f"/chat/{ROOM}/"}
    measured = testbed.app_script(
        "ceiling.py",
        {
            "BENCH_PATHS": json.dumps(list(paths.values())),
            "BENCH_HOST": testbed.server_name,
            "BENCH_COOKIE": cookie,
            "BENCH_REQUESTS": str(requests),
        },
    )
    cores = os.cpu_count() or 1
    pages = {}
    for name, path in paths.items():
        page = measured[path]
        cpu_ms = page["django_cpu_ms"] + page["postgresql_cpu_ms"]
        pages[name] = {**page, "ceiling_rps": round(cores * 1000 / cpu_ms, 1)}
    return {"cores": cores, "pages": pages}


# --- Profile --------------------------------------------------------------------------------
# Where a request spends its time. Each sample of a request (a stack through Django's WSGI
# handler) counts for the innermost of these areas it is in, so "ORM" is time in Django's ORM
# outside the driver, and "view and the rest" is what no area claims.
REQUEST_MARKER = "django/core/handlers/wsgi.py"
PROFILE_AREAS = {
    "database driver (psycopg)": ("psycopg/",),
    "ORM": ("django/db/",),
    "templates": ("django/template/", "django/utils/dateformat.py", "django/utils/html.py"),
    "sessions and auth": ("django/contrib/sessions/", "django/contrib/auth/backends.py"),
    "middleware": ("django/middleware/",),
}


def server_pids(testbed: Testbed, needle: str) -> list[int]:
    """Host PIDs of the container's processes whose command line holds ``needle``, whose
    parent is the container's init (systemd services' main processes)."""
    out = run(["podman", "top", testbed.host, "hpid", "ppid", "args"]).stdout
    pids = []
    for line in out.splitlines()[1:]:
        fields = line.split(None, 2)
        if len(fields) == 3 and fields[1] == "1" and needle in fields[2]:
            pids.append(int(fields[0]))
    return pids


def summarize_profile(raw: str) -> dict[str, Any]:
    """Where request time goes: shares by area and the functions with the most own samples.

    Only samples inside a request (a frame in Django's WSGI handler) count; each goes to the
    innermost area of PROFILE_AREAS on its stack. Worker idle time and gunicorn's own
    bookkeeping between requests are reported as ``outside_requests_percent`` of all samples.

    Args:
        raw: py-spy ``--format raw`` output: one line per stack, ``frame;frame;... count``.
    """
    total = in_requests = 0
    areas = dict.fromkeys([*PROFILE_AREAS, "view and the rest"], 0)
    own: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        if REQUEST_MARKER not in stack:
            continue
        in_requests += count
        frames = stack.split(";")
        area = next(
            (
                name
                for frame in reversed(frames)
                for name, needles in PROFILE_AREAS.items()
                if any(n in frame for n in needles)
            ),
            "view and the rest",
        )
        areas[area] += count
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        leaf = re.sub(r"\(.*/site-packages/", "(", leaf)
        own[leaf] = own.get(leaf, 0) + count
    if not in_requests:
        return {"samples": total, "request_samples": 0}
    top = sorted(own.items(), key=lambda kv: -kv[1])[:8]
    return {
        "samples": total,
        "request_samples": in_requests,
        "outside_requests_percent": round(100 * (total - in_requests) / total, 1),
        "areas_percent": {a: round(100 * n / in_requests, 1) for a, n in areas.items()},
        "top_own_percent": [[name, round(100 * n / in_requests, 1)] for name, n in top],
    }


def profile_room_page(http: Http, testbed: Testbed) -> dict[str, Any]:
    """Sample every gunicorn process with py-spy while wrk requests the room page.

    A separate wrk run: the measured rounds are not slowed by the sampling.

    Raises:
        BenchError: py-spy is missing or failed.
    """
    masters = server_pids(testbed, "gunicorn")
    if not masters:
        raise BenchError("no gunicorn service found in the target")
    output = WORK / "profile-room.txt"
    spy = shutil.which("py-spy")
    if spy is None:
        raise BenchError("py-spy is not installed (make venv installs it from requirements.txt)")
    sampler = subprocess.Popen(
        [spy, "record", "--pid", str(masters[0]), "--subprocesses", "--nonblocking",
         "--rate", "200", "--duration", str(http.seconds), "--format", "raw",
         "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1)
    http.wrk("stack", f"/chat/{ROOM}/", True)
    _, err = sampler.communicate(timeout=60)
    if sampler.returncode != 0 or not output.exists():
        raise BenchError(f"py-spy failed: {err.strip()[-400:]}")
    return summarize_profile(output.read_text())


# --- Fan-out --------------------------------------------------------------------------------
def fanout_phase(
    prefix: list[str],
    testbed: Testbed,
    sessions: Path,
    levels: list[tuple[int, float]],
    baseline_levels: list[tuple[int, float]],
    seconds: float,
    reset_baseline: Any,
) -> dict[str, Any]:
    """Run bench/fanout.py for each (clients, rate) level against the stack and the baseline.

    Memory is sampled mid-run during the stack's 500 clients x 10 messages/s (the target's load).
    ``reset_baseline`` is called after each baseline run: a saturated baseline goes on working
    through its backlog after its clients left, which would slow the next run down.
    """
    name = testbed.server_name
    contenders = {
        "stack": (f"wss://{name}", f"https://{name}"),
        "baseline": (f"ws://{name}:{DAPHNE_PORT}", f"http://{name}:{DAPHNE_PORT}"),
    }
    sampled = (500, 10.0) if (500, 10.0) in levels else max(levels)
    results: dict[str, Any] = {"stack": [], "baseline": [], "memory_under_load": None}
    plan = [
        (c, lvl)
        for lvl in sorted(set(levels) | set(baseline_levels))
        for c in ("stack", "baseline")
        if lvl in (levels if c == "stack" else baseline_levels)
    ]
    for contender, (clients, rate) in plan:
        url, origin = contenders[contender]
        log(f"fan-out: {clients} clients at {rate:g} messages/s on {contender}")
        cmd = [
            *prefix,
            sys.executable,
            str(ROOT / "bench" / "fanout.py"),
            "--url",
            url,
            "--origin",
            origin,
            "--room",
            f"{FANOUT_ROOM}-{contender}",
            "--sessions",
            str(sessions),
            "--clients",
            str(clients),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--cafile",
            str(testbed.cafile),
        ]
        servers_before = readings.cpu(testbed)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stderr_lines = []
        sample = contender == "stack" and (clients, rate) == sampled
        for line in proc.stderr or []:
            stderr_lines.append(line)
            if line.startswith("STARTED") and sample:
                time.sleep(seconds / 2)
                results["memory_under_load"] = readings.memory(testbed)
        out = proc.stdout.read() if proc.stdout else ""
        if proc.wait() != 0:
            raise BenchError(f"fan-out against {contender} failed: {''.join(stderr_lines)[-800:]}")
        elapsed = time.monotonic() - started
        servers_after = readings.cpu(testbed)
        if contender == "baseline":
            reset_baseline()
        result = json.loads(out)
        result.pop("plan", None)
        # Cores each service group used over the whole run (connects and drain included).
        result["server_cores"] = cores_used(servers_before, servers_after, elapsed)
        result["load1_after"] = os.getloadavg()[0]
        results[contender].append(result)
        log(f"fan-out: delivered {result['delivered_ratio']}, p99 {result['p99_ms']} ms")
    return results


# --- Report ---------------------------------------------------------------------------------
def static_candidate(testbed: Testbed) -> tuple[str, int]:
    """The collectstatic file (unhashed name) whose size is closest to 50 KB: (URL path, bytes)."""
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


PHASES = ("provision", "http", "fanout")


def main(argv: list[str] | None = None) -> int:
    """Command line: run the phases, write bench/results/<date>-<host>.md and .json.

    A run that is quick, skips a phase or fails part-way writes bench/.work/last.md and .json
    only (a failure still reports what was measured before it), and exits 1 on failure.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="channels-deploy-local", help="inventory/local target")
    parser.add_argument(
        "--skip",
        action="append",
        choices=PHASES,
        default=[],
        help="leave out a phase (repeatable); memory is always sampled",
    )
    parser.add_argument(
        "--no-provision",
        action="store_true",
        help="same as --skip provision: measure the deployed stack as it is",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs, for trying the harness (figures not comparable)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    skip = set(args.skip) | ({"provision"} if args.no_provision else set())
    WORK.mkdir(parents=True, exist_ok=True)
    testbed = Testbed(args.host)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "memory_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "load_before": os.getloadavg()[0],
        },
        "quick": args.quick,
        "skipped": sorted(skip),
    }
    try:
        measure(report, testbed, skip, args.quick)
    except BenchError as exc:
        report["error"] = str(exc)
    report["machine"]["load_after"] = os.getloadavg()[0]
    report["targets"] = targets.evaluate(report)
    table = targets.markdown(report)
    complete = not (args.quick or skip or "error" in report)
    stem = WORK / "last"
    if complete:
        args.output.mkdir(parents=True, exist_ok=True)
        stem = args.output / f"{report['date'][:10]}-{report['machine']['host']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    log(f"wrote {stem}.md and .json")
    print(table)
    if "error" in report:
        print(f"bench: FAILED: {report['error']}", file=sys.stderr)
        return 1
    return 0


def measure(report: dict[str, Any], testbed: Testbed, skip: set[str], quick: bool) -> None:
    """Run the phases not in ``skip``, filling ``report`` as they go.

    Raises:
        BenchError: a step failed; ``report`` keeps what was measured before.
    """
    wrk_seconds, rounds, fan_seconds = (3, 1, 5) if quick else (10, 2, 20)
    levels = [(50, 10.0), (200, 10.0), (500, 10.0), (500, 20.0)]
    baseline_levels = [(50, 10.0), (200, 10.0), (500, 10.0)]
    if quick:
        levels, baseline_levels = [(50, 10.0)], [(50, 10.0)]
    if "provision" not in skip:
        report["provisioning"] = provision(testbed)
    log("smoke check (also fetches pebble's current root)")
    run([str(ROOT / "testbed" / "smoke.sh")], cwd=ROOT)
    clients = max(c for c, _ in levels)
    log(f"fixtures: {clients} logged-in bench users, history in room {ROOM!r}")
    fixtures = {"BENCH_USERS": str(clients), "BENCH_ROOM": ROOM}
    cookies = testbed.app_script("fixtures.py", fixtures)["sessions"]
    sessions = WORK / "sessions.json"
    sessions.write_text(json.dumps(cookies))
    sessions.chmod(0o600)
    static_path, static_size = static_candidate(testbed)
    report["static_file"] = {"path": static_path, "bytes": static_size}
    # Before the baselines start: their database sessions would count as the stack's PostgreSQL.
    report["memory_idle"] = readings.memory(testbed)
    baselines = Baselines(testbed)
    try:
        baselines.start()
        with in_target_network(testbed) as prefix:
            http = Http(prefix, testbed, cookies[0], wrk_seconds, WRK_CONNECTIONS)
            report["http_connections"] = WRK_CONNECTIONS
            for server in http.servers:
                http.wait(server)
            report["room_page_bytes"] = {
                s: http.check(s, f"/chat/{ROOM}/", True, "history message") for s in http.servers
            }
            http.check("stack", static_path, False, "")
            http.check("runserver", static_path, False, "")
            if "http" not in skip:
                report["http"] = http_phase(http, static_path, rounds)
                log("app cost: the WSGI application alone, in the target, one request at a time")
                report["app_cost"] = app_cost(testbed, cookies[0], 50 if quick else 300)
                log("profile: py-spy on gunicorn while wrk requests the room page")
                report["profile_room_page"] = profile_room_page(http, testbed)
            if "fanout" not in skip:

                def reset_baseline() -> None:
                    baselines.restart_daphne()
                    http.wait("daphne_runserver")

                report["fanout"] = fanout_phase(
                    prefix, testbed, sessions, levels, baseline_levels, fan_seconds, reset_baseline
                )
                report["memory_under_load"] = report["fanout"].pop("memory_under_load")
    finally:
        baselines.stop()
        report["memory_after"] = readings.memory(testbed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
