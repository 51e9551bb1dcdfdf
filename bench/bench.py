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
skip with ``--no-provision``), HTTP pages, a static file, WebSocket fan-out, the WebSocket
tier's ASGI servers side by side (:mod:`servers_phase`), the capacity of held WebSockets,
memory. The results go to ``bench/results/<date>-<host>.md``, ``.json`` and a chart ``.png``;
nothing here asserts a timing.

This file runs the phases; each lives in a module of its own: :mod:`provisioning`,
:mod:`baselines`, :mod:`http_rounds`, :mod:`app_cost` (the ceiling and the profile),
:mod:`fanout_driver`, with :mod:`readings` (memory and CPU), :mod:`reporting` (the files
written) and :mod:`deployment` (the target) beside them, and :mod:`harness` for what all share.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import readings  # noqa: E402
import reporting  # noqa: E402
from app_cost import app_cost, profile_room_page  # noqa: E402
from baselines import Baselines  # noqa: E402
from deployment import Testbed, in_target_network  # noqa: E402
from fanout_driver import fanout_phase  # noqa: E402
from harness import ROOM, ROOT, WORK, BenchError, log, run  # noqa: E402
from http_rounds import Http, http_phase, static_candidate  # noqa: E402
from provisioning import provision  # noqa: E402
from servers_phase import SERVERS, capacity_phase, servers_phase, users_needed  # noqa: E402

# wrk's connections for the HTTP pages, each with one request outstanding at a time.
WRK_CONNECTIONS = 32

PHASES = ("provision", "http", "fanout", "servers", "capacity")


def main(argv: list[str] | None = None) -> int:
    """Command line: run the phases, write bench/results/<date>-<host>.md and .json.

    A run that is quick, skips a phase or fails part-way writes bench/.work/last.md and .json
    only (a failure still reports what was measured before it), and exits 1 on failure.

    Args:
        argv: the arguments (default: the command line's).

    Returns:
        The exit status: 0, or 1 when a step failed.

    Raises:
        BenchError: the target is not in the inventory (before anything is measured).
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
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="WebSocket servers of the servers phase, comma-separated (default: all)",
    )
    parser.add_argument("--output", type=Path, default=reporting.RESULTS)
    args = parser.parse_args(argv)
    servers = tuple(name for name in args.servers.split(",") if name)
    if not servers or set(servers) - set(SERVERS):
        parser.error(f"--servers: a comma-separated choice of {', '.join(SERVERS)}")
    skip = set(args.skip) | ({"provision"} if args.no_provision else set())
    WORK.mkdir(parents=True, exist_ok=True)
    testbed = Testbed(args.host)
    report = reporting.new_report(args.quick, skip)
    try:
        measure(report, testbed, skip, args.quick, servers)
    except BenchError as exc:
        report["error"] = str(exc)
    complete = not (args.quick or skip or "error" in report)
    print(reporting.write(report, args.output, complete))
    if "error" in report:
        print(f"bench: FAILED: {report['error']}", file=sys.stderr)
        return 1
    return 0


def measure(
    report: dict[str, Any],
    testbed: Testbed,
    skip: set[str],
    quick: bool,
    servers: tuple[str, ...] = SERVERS,
) -> None:
    """Run the phases not in ``skip``, filling ``report`` as they go.

    In order: provisioning, the smoke check, fixtures, idle memory, the baselines, then in the
    target's network the HTTP rounds (with the app cost and the profile) and the fan-out; the
    baselines are stopped and memory is read once more at the end, also after a failure.

    Args:
        report: the report from :func:`reporting.new_report`; each phase adds its keys.
        testbed: the deployment.
        skip: phases left out (names in ``PHASES``).
        quick: short runs (3 s wrk runs, one round, 5 s fan-out at 50 clients only, 1,000
            held connections for 10 s).
        servers: the WebSocket servers the servers phase compares.

    Raises:
        BenchError: a step failed; ``report`` keeps what was measured before.
    """
    wrk_seconds, rounds, fan_seconds = (3, 1, 5) if quick else (10, 2, 20)
    levels = [(50, 10.0), (200, 10.0), (500, 10.0), (500, 20.0)]
    baseline_levels = [(50, 10.0), (200, 10.0), (500, 10.0)]
    if quick:
        levels, baseline_levels = [(50, 10.0)], [(50, 10.0)]
    report["site_websocket_server"] = testbed.websocket_server
    if "provision" not in skip:
        report["provisioning"] = provision(testbed)
    log("smoke check (also fetches pebble's current root)")
    run([str(ROOT / "testbed" / "smoke.sh")], cwd=ROOT)
    clients = max(c for c, _ in levels)
    if not {"servers", "capacity"} <= skip:
        clients = max(clients, users_needed(quick))
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
            if "servers" not in skip:
                report["servers"] = servers_phase(
                    prefix, testbed, sessions, fan_seconds, quick, testbed.websocket_server, servers
                )
            if "capacity" not in skip:
                report["capacity"] = capacity_phase(prefix, testbed, sessions, quick)
    finally:
        baselines.stop()
        report["memory_after"] = readings.memory(testbed)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
