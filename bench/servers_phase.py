"""The WebSocket tier's ASGI servers side by side, and the capacity of the default one.

Servers phase: for each server of ``SERVERS`` in turn, the daphne role's part of site.yml
switches the instances to it (``--tags daphne -e site_websocket_server=<server>``: the same
release, sockets, units and nginx, only ExecStart changes, and the role restarts the
instances one by one), then:

* fan-out at each level (clients x 10 messages/s, bench/fanout.py), with the CPU of the
  server's processes per delivery;
* memory: the instances' RSS and PSS idle, and while the largest level's clients are held,
  so memory per held connection = (held - idle) / connections;
* the drain: ``manage.py close_websockets`` while bench/hold.py holds connections that
  reconnect at once (the close code the clients see: 1012, or daphne's 4012);
* a restart of each instance in turn (``systemctl restart``, as the role's restart entry
  point does, 8 s apart) under the same held connections: the close codes seen, and whether any
  reconnect was refused.

The site's own server is switched back at the end, also after a failure.

Capacity phase: bench/hold.py holds ``CAPACITY_CONNECTIONS`` idle WebSockets through nginx for
``CAPACITY_SECONDS`` on the deployed server, then one message goes to all of them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import readings
from deployment import Testbed
from fanout_driver import processes_for, run_fanout
from harness import ROOT, WORK, BenchError, log

# The contenders, the default first.
SERVERS = ("daphne", "uvicorn", "gunicorn")
# Clients at 10 messages/s for each server.
SERVER_LEVELS = (50, 200, 500, 1000)
SERVER_RATE = 10.0
# Held connections during the drain and the restarts.
RESTART_CONNECTIONS = 200
# Idle connections of the capacity phase, how long they are held, the sockets per user
# (below CHAT_WS_MAX_PER_USER, 10) and the client processes.
CAPACITY_CONNECTIONS = 10_000
CAPACITY_SECONDS = 60.0
CAPACITY_PER_USER = 8
CAPACITY_PROCESSES = 8


def users_needed(quick: bool) -> int:
    """Bench users the servers and capacity phases need (one session each)."""
    connections, _ = capacity_size(quick)
    levels = (50,) if quick else SERVER_LEVELS
    return max(*levels, RESTART_CONNECTIONS, math.ceil(connections / CAPACITY_PER_USER))


def capacity_size(quick: bool) -> tuple[int, float]:
    """Connections and seconds of the capacity phase (a tenth and 10 s in quick mode)."""
    return (1_000, 10.0) if quick else (CAPACITY_CONNECTIONS, CAPACITY_SECONDS)


def switch_server(server: str) -> float:
    """Run the daphne role's part of site.yml with ``site_websocket_server=<server>``.

    Returns:
        The playbook's wall-clock seconds.

    Raises:
        BenchError: the playbook failed (its output is in bench/.work/switch-<server>.log).
    """
    logfile = WORK / f"switch-{server}.log"
    started = time.monotonic()
    with logfile.open("w") as out:
        done = subprocess.run(
            [
                "ansible-playbook",
                str(ROOT / "playbooks" / "site.yml"),
                "--tags",
                "daphne",
                "-e",
                f"site_websocket_server={server}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            check=False,
        )
    if done.returncode != 0:
        raise BenchError(f"switching the WebSocket tier to {server} failed, see {logfile}")
    return round(time.monotonic() - started, 1)


def instance_units(testbed: Testbed) -> list[str]:
    """The running WebSocket instances' units, e.g. ``chat-daphne@1.service``."""
    out = testbed.exec(
        "systemctl",
        "list-units",
        "--type=service",
        "--state=running",
        "--plain",
        "--no-legend",
        f"{testbed.app}-daphne@*.service",
    )
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def _hold(
    prefix: list[str],
    testbed: Testbed,
    mode: str,
    sessions: Path,
    room: str,
    connections: int,
    seconds: float,
    processes: int,
    on_held: Any,
) -> dict[str, Any]:
    """Run bench/hold.py in the target's network; call ``on_held()`` once it printed HELD."""
    cmd = [
        *prefix,
        sys.executable,
        str(ROOT / "bench" / "hold.py"),
        mode,
        "--url",
        f"wss://{testbed.server_name}",
        "--origin",
        f"https://{testbed.server_name}",
        "--room",
        room,
        "--sessions",
        str(sessions),
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
        "--processes",
        str(processes),
        "--cafile",
        str(testbed.cafile),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stderr or []:
            lines.append(line)
            if line.startswith("HELD") and on_held is not None:
                on_held()
        out = proc.stdout.read() if proc.stdout else ""
        if proc.wait(timeout=seconds + 300) != 0:
            raise BenchError(f"hold.py {mode} failed: {''.join(lines)[-800:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    return json.loads(out)


def _restart_runs(
    prefix: list[str], testbed: Testbed, sessions: Path, server: str, quick: bool
) -> dict[str, Any]:
    """The drain (close_websockets) and a restart of each instance under held connections."""
    connections = 50 if quick else RESTART_CONNECTIONS
    units = instance_units(testbed)

    def drain() -> None:
        time.sleep(2)
        testbed.as_app(f"{testbed.root}/current/venv/bin/python", "manage.py", "close_websockets")

    def restart_each() -> None:
        time.sleep(2)
        for unit in units:
            testbed.exec("systemctl", "restart", unit)
            time.sleep(8)

    log(f"servers: {server}: close_websockets under {connections} held connections")
    drained = _hold(
        prefix, testbed, "restart", sessions, f"drain-{server}", connections, 10, 2, drain
    )
    log(f"servers: {server}: restarting {', '.join(units)} under {connections} held connections")
    restarted = _hold(
        prefix,
        testbed,
        "restart",
        sessions,
        f"restart-{server}",
        connections,
        # gunicorn's stop takes its graceful timeout (5 s): room for every instance's.
        4 + 8 * len(units) + 6,
        2,
        restart_each,
    )
    return {"drain": drained, "restart": restarted, "units": units}


def _per_connection_kib(
    idle: dict[str, Any], held: dict[str, Any] | None, connections: int, key: str
) -> float | None:
    if not held or not connections:
        return None
    return round((held["daphne"][key] - idle["daphne"][key]) / connections, 1)


def servers_phase(
    prefix: list[str],
    testbed: Testbed,
    sessions: Path,
    seconds: float,
    quick: bool,
    site: str,
    servers: tuple[str, ...] = SERVERS,
) -> dict[str, Any]:
    """Every server of SERVERS side by side; the site's server ``site`` is restored at the end.

    Args:
        prefix: command prefix from :func:`deployment.in_target_network`.
        testbed: the deployment.
        sessions: JSON file of the bench users' session keys.
        seconds: each fan-out run's sending window.
        quick: one level (50 clients), short holds.
        site: the server the site runs (switched back to at the end).
        servers: the servers to compare, in this order.

    Returns:
        ``{server: {"switch_seconds", "fanout": [fanout.py results with server_cores],
        "memory_idle", "memory_held", "held_connections", "rss_kib_per_connection",
        "pss_kib_per_connection", "drain", "restart", "units"}}``.

    Raises:
        BenchError: a switch, a fan-out or a hold failed (the site's server is restored).
    """
    levels = (50,) if quick else SERVER_LEVELS
    results: dict[str, Any] = {}
    try:
        for server in servers:
            log(f"servers: switching the WebSocket tier to {server}")
            entry: dict[str, Any] = {"switch_seconds": switch_server(server)}
            time.sleep(3)
            entry["memory_idle"] = readings.memory(testbed)
            entry["fanout"] = []
            held: dict[str, Any] = {}
            for clients in levels:
                log(f"servers: {server}: {clients} clients at {SERVER_RATE:g} messages/s")

                def sample(held: dict[str, Any] = held) -> None:
                    held["memory"] = readings.memory(testbed)

                result = run_fanout(
                    prefix,
                    testbed,
                    f"wss://{testbed.server_name}",
                    f"https://{testbed.server_name}",
                    f"fanout-{server}",
                    sessions,
                    clients,
                    SERVER_RATE,
                    seconds,
                    processes_for(clients),
                    sample if clients == max(levels) else None,
                )
                entry["fanout"].append(result)
                log(
                    f"servers: {server}: delivered {result['delivered_ratio']}, "
                    f"p99 {result['p99_ms']} ms (server part about {result['server_p99_ms']} ms)"
                )
            top = entry["fanout"][-1]["connected"]
            entry["memory_held"] = held.get("memory")
            entry["held_connections"] = top
            for key in ("rss_kib", "pss_kib"):
                entry[f"{key[:3]}_kib_per_connection"] = _per_connection_kib(
                    entry["memory_idle"], entry["memory_held"], top, key
                )
            entry.update(_restart_runs(prefix, testbed, sessions, server, quick))
            results[server] = entry
    finally:
        log(f"servers: switching the WebSocket tier back to {site}")
        switch_server(site)
    return results


def capacity_phase(
    prefix: list[str], testbed: Testbed, sessions: Path, quick: bool
) -> dict[str, Any]:
    """Hold CAPACITY_CONNECTIONS idle WebSockets through nginx, then one message to all.

    Returns:
        bench/hold.py's capacity figures plus ``memory_idle`` and ``memory_held`` (readings
        before and once every connection is open), ``rss_kib_per_connection`` and
        ``pss_kib_per_connection`` of the WebSocket instances, and ``nginx_kib_per_connection``.

    Raises:
        BenchError: the hold failed.
    """
    connections, seconds = capacity_size(quick)
    idle = readings.memory(testbed)
    held: dict[str, Any] = {}

    def sample() -> None:
        held["memory"] = readings.memory(testbed)

    log(f"capacity: {connections} idle WebSockets through nginx for {seconds:g} s")
    result = _hold(
        prefix,
        testbed,
        "capacity",
        sessions,
        "hold",
        connections,
        seconds,
        CAPACITY_PROCESSES,
        sample,
    )
    result["memory_idle"] = idle
    result["memory_held"] = held.get("memory")
    opened = result["connected"]
    for key in ("rss_kib", "pss_kib"):
        result[f"{key[:3]}_kib_per_connection"] = _per_connection_kib(
            idle, result["memory_held"], opened, key
        )
    if result["memory_held"] and opened:
        result["nginx_kib_per_connection"] = round(
            (result["memory_held"]["nginx"]["rss_kib"] - idle["nginx"]["rss_kib"]) / opened, 1
        )
    log(
        f"capacity: {result['connected']} opened, {result['still_open']} still open after "
        f"{seconds:g} s, the message reached {result['received']}"
    )
    return result
