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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readings  # noqa: E402
import targets  # noqa: E402
from app_cost import app_cost, profile_room_page  # noqa: E402
from baselines import DAPHNE_PORT, Baselines  # noqa: E402
from deployment import Testbed, in_target_network  # noqa: E402
from harness import ROOM, ROOT, WORK, BenchError, log, run  # noqa: E402
from http_rounds import Http, http_phase, static_candidate  # noqa: E402
from provisioning import provision  # noqa: E402
from readings import cores_used  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FANOUT_ROOM = "fanout"
# wrk's connections for the HTTP pages, each with one request outstanding at a time.
WRK_CONNECTIONS = 32


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
