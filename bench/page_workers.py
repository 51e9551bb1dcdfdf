"""gunicorn's worker class and count for the room page, side by side in one run.

Runs on this machine, in the app's virtualenv, against the app tests' throwaway PostgreSQL
and Redis (see bench/page_steps.py, whose set-up it shares)::

    cd app && ../.venv-app/bin/python ../bench/page_workers.py [--rounds 3] [--seconds 8]

Each contender is a gunicorn of the app (``config.wsgi:application``, production
settings) on a loopback port, which wrk loads with the room page (2 threads, 32
connections, the bench user's session cookie, ``X-Forwarded-Proto: https``). The rounds
alternate between the contenders; a contender is started afresh for every round, warmed
up for 2 s, then measured. No nginx, no TLS: both are the same for every contender and
would only add their own CPU to the two cores.

Per run: req/s, p50 and p99 (ms), errors, and the cores (CPU seconds per second) used by
gunicorn (master and workers), by the PostgreSQL server (all its processes) and by Redis,
and wrk's own; after the run, gunicorn's RSS and PSS (MiB, /proc/<pid>/smaps_rollup, all
its processes), and the client connections PostgreSQL holds (``pg_connections``:
persistent connections, one per worker thread that served a request). The last line of
output is JSON: ``{"<contender>": {"best": {...}, "rounds": [...]}, ...}``, the best round
by req/s.

Raises (uncaught): ``RuntimeError`` when a gunicorn does not answer within 30 s, or wrk
fails.
"""

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import page_steps  # noqa: E402
from page_steps import HOST, ROOM, app_environment, proc_cpu_ms, session_cookie  # noqa: E402

PORT = 8731
CONTENDERS = {
    "sync 2": ["--worker-class", "sync", "--workers", "2"],
    "sync 3": ["--worker-class", "sync", "--workers", "3"],
    "sync 5": ["--worker-class", "sync", "--workers", "5"],
    "gthread 2x4": ["--worker-class", "gthread", "--workers", "2", "--threads", "4"],
    "gthread 3x4": ["--worker-class", "gthread", "--workers", "3", "--threads", "4"],
}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def tree(pid: int) -> list[int]:
    """A process and all its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def cpu_ms(pids: list[int]) -> dict[int, float]:
    """CPU used so far by each of these processes that still runs, in ms."""
    out = {}
    for pid in pids:
        try:
            out[pid] = proc_cpu_ms(pid)
        except OSError:
            continue
    return out


def memory_mib(pids: list[int]) -> dict[str, float]:
    """RSS and PSS of these processes together, in MiB."""
    totals = {"rss_mib": 0.0, "pss_mib": 0.0}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for field, key in (("Rss", "rss_mib"), ("Pss", "pss_mib")):
            match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
            totals[key] += int(match[1]) / 1024 if match else 0
    return {key: round(value, 1) for key, value in totals.items()}


def client_backends() -> int:
    """Client connections the PostgreSQL server holds now (this process's included)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def wait_until_up(process: subprocess.Popen) -> None:
    """Wait until gunicorn answers /healthz."""
    deadline = time.monotonic() + 30
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}/healthz", headers={"Host": HOST})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def ms(text: str) -> float:
    """A wrk duration (``12.5ms``) in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"unexpected wrk duration {text!r}")
    return round(float(match[1]) * UNITS[match[2]], 2)


def wrk(cookie: str, seconds: int) -> dict[str, float]:
    """One wrk run against the room page; req/s, p50/p99 ms, errors, wrk's cores."""
    from django.conf import settings

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        ["wrk", "--threads", "2", "--connections", "32", "--duration", f"{seconds}s",
         "--latency", "--timeout", "10s",
         "--header", f"Host: {HOST}", "--header", "X-Forwarded-Proto: https",
         "--header", f"Cookie: {settings.SESSION_COOKIE_NAME}={cookie}",
         f"http://127.0.0.1:{PORT}/chat/{ROOM}/"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = result.stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk's output: {out[-400:]}")
    figures = {"rps": round(float(rps[1]), 1)}
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        figures[f"p{pct}_ms"] = ms(match[1]) if match else None
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["errors"] = errors + (int(bad[1]) if bad else 0)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures["wrk_cores"] = round(wrk_cpu / elapsed, 2)
    return figures


def one_round(args: list[str], env: dict[str, str], postmaster: int, redis_pid: int,
              cookie: str, seconds: int) -> dict[str, float]:  # fmt: skip
    """Start a gunicorn with ``args``, warm it up, measure one wrk run, stop it."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "--bind", f"127.0.0.1:{PORT}", "--log-level", "warning",
         *args, "config.wsgi:application"],
        env={**os.environ, **env}, cwd=page_steps.APP,
    )  # fmt: skip
    try:
        wait_until_up(process)
        wrk(cookie, 2)
        watched = tree(process.pid) + tree(postmaster) + [redis_pid]
        before = cpu_ms(watched)
        started = time.monotonic()
        figures = wrk(cookie, seconds)
        elapsed_ms = (time.monotonic() - started) * 1000
        after = cpu_ms(watched)
        groups = {"gunicorn": tree(process.pid), "postgresql": tree(postmaster)}
        groups["redis"] = [redis_pid]
        for name, pids in groups.items():
            used = sum(after.get(p, 0) - before.get(p, 0) for p in pids if p in before)
            figures[f"{name}_cores"] = round(used / elapsed_ms, 2)
        figures.update(memory_mib(tree(process.pid)))
        figures["pg_connections"] = client_backends() - 1  # Less this process's own.
        return figures
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """Run the rounds; print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    options = parser.parse_args()
    names = options.contenders.split(",")
    with app_environment() as (postgres, redis, env):
        postmaster = int((Path(postgres.data) / "postmaster.pid").read_text().split()[0])
        cookie = session_cookie()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(options.rounds):
            for name in names:
                runs[name].append(
                    one_round(CONTENDERS[name], env, postmaster, redis.process.pid, cookie,
                              options.seconds)
                )  # fmt: skip
    results = {
        name: {"best": max(rows, key=lambda row: row["rps"]), "rounds": rows}
        for name, rows in runs.items()
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
