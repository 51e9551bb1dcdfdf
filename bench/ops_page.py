"""The room page on a deployed stack other than inventory/local: gunicorn contenders, memory.

For a stack that ``molecule converge -s ops`` deployed (``OPS_NAME=<name>``: the all-in-one
container ``cd-<name>-aio``). Run on this machine with the tools' virtualenv::

    python3 bench/ops_page.py cd-page-aio [--rounds 2] [--seconds 10]

It makes the bench fixtures (bench/fixtures.py), measures the app's own cost per page
(bench/ceiling.py, as ``make bench`` does) and the idle memory per service
(bench/memory.py), then loads the room page through nginx over TLS with wrk (2 threads,
32 connections, from the container's network) with each gunicorn contender in turn,
alternating over the rounds. A contender is the deployed unit's own command with other
``--workers``/``--worker-class``/``--threads``, set by a runtime drop-in
(``/run/systemd/system/<unit>.d/``, gone at the next boot and never seen by Ansible) and a
restart; the drop-in is removed and the service restarted at the end, also on failure.
After each run it reads the memory per service and the client connections PostgreSQL
holds. Prints JSON: ``{"ceiling": ..., "idle_memory": ..., "contenders": {name: [run, ...]}}``.

Raises (uncaught): ``BenchError`` when a command in the container or wrk fails.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import readings  # noqa: E402
from app_cost import app_cost  # noqa: E402
from deployment import Testbed, in_target_network  # noqa: E402
from harness import ROOM  # noqa: E402
from http_rounds import Http  # noqa: E402

CONTENDERS = {
    "sync 3": {"--workers": "3", "--worker-class": "sync", "--threads": "1"},
    "gthread 2x4": {"--workers": "2", "--worker-class": "gthread", "--threads": "4"},
    "gthread 3x4": {"--workers": "3", "--worker-class": "gthread", "--threads": "4"},
    "sync 5": {"--workers": "5", "--worker-class": "sync", "--threads": "1"},
}


def ops_testbed(host: str, app: str = "chat") -> Testbed:
    """A Testbed for a container that is not inventory/local's (its name is the site's)."""
    testbed = Testbed.__new__(Testbed)
    testbed.host = host
    testbed.app = app
    testbed.server_name = host
    testbed.root = f"/srv/{app}"
    testbed.env_file = f"/etc/{app}/env"
    return testbed


def set_contender(testbed: Testbed, unit: str, flags: dict[str, str] | None) -> None:
    """Run the unit with other worker flags (a runtime drop-in), or as deployed (None)."""
    dropin = f"/run/systemd/system/{unit}.d"
    testbed.exec("rm", "-rf", dropin)
    if flags is not None:
        line = testbed.exec("systemctl", "show", "--property=ExecStart", "--value", unit)
        argv = shlex.split(line.split("argv[]=", 1)[1].split(" ;", 1)[0])
        for flag, value in flags.items():
            argv[argv.index(flag) + 1] = value
        testbed.exec("mkdir", "-p", dropin)
        text = f"[Service]\nExecStart=\nExecStart={shlex.join(argv)}\n"
        testbed.exec("tee", f"{dropin}/bench.conf", stdin=text)
    testbed.exec("systemctl", "daemon-reload")
    testbed.exec("systemctl", "restart", unit)


def client_connections(testbed: Testbed) -> int:
    """Client connections PostgreSQL holds now."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
    return int(testbed.exec("runuser", "-u", "postgres", "--", "psql", "-tAc", sql).strip())


def main() -> None:
    """Fixtures, ceiling, idle memory, then the contenders' rounds; print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    options = parser.parse_args()
    testbed = ops_testbed(options.host)
    unit = f"{testbed.app}-gunicorn.service"
    fixtures = testbed.app_script("fixtures.py", {"BENCH_USERS": "2", "BENCH_ROOM": ROOM})
    cookie = fixtures["sessions"][0]
    result: dict = {"contenders": {}}
    with in_target_network(testbed) as prefix:
        http = Http(prefix, testbed, cookie, options.seconds, 32)
        warm = Http(prefix, testbed, cookie, 3, 32)
        http.wait("stack")
        result["ceiling"] = app_cost(testbed, cookie, 300)
        result["idle_memory"] = readings.memory(testbed)
        names = options.contenders.split(",")
        try:
            for _ in range(options.rounds):
                for name in names:
                    set_contender(testbed, unit, CONTENDERS[name])
                    http.wait("stack")
                    warm.wrk("stack", f"/chat/{ROOM}/", True)
                    run = http.wrk("stack", f"/chat/{ROOM}/", True)
                    run["memory"] = {
                        group: {"rss_mib": round(m["rss_kib"] / 1024, 1),
                                "pss_mib": round(m["pss_kib"] / 1024, 1)}
                        for group, m in readings.memory(testbed).items()
                    }  # fmt: skip
                    run["pg_connections"] = client_connections(testbed)
                    result["contenders"].setdefault(name, []).append(run)
        finally:
            set_contender(testbed, unit, None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
