"""Fan-out phase: bench/fanout.py in the target's network, one run per (clients, rate) level,
alternating between the stack (wss through nginx to daphne) and daphne's runserver."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import readings
from baselines import DAPHNE_PORT
from deployment import Testbed
from harness import ROOT, BenchError, log
from readings import cores_used

# The rooms of the fan-out runs: f"{FANOUT_ROOM}-stack" and f"{FANOUT_ROOM}-baseline".
FANOUT_ROOM = "fanout"


def fanout_phase(
    prefix: list[str],
    testbed: Testbed,
    sessions: Path,
    levels: list[tuple[int, float]],
    baseline_levels: list[tuple[int, float]],
    seconds: float,
    reset_baseline: Callable[[], None],
) -> dict[str, Any]:
    """Run bench/fanout.py for each (clients, rate) level against the stack and the baseline.

    Memory is sampled mid-run during the stack's 500 clients x 10 messages/s (the target's load).
    ``reset_baseline`` is called after each baseline run: a saturated baseline goes on working
    through its backlog after its clients left, which would slow the next run down.

    Args:
        prefix: command prefix from :func:`deployment.in_target_network`.
        testbed: the deployment.
        sessions: JSON file of the bench users' session keys (one per client).
        levels: (clients, messages per second) levels for the stack.
        baseline_levels: the levels for daphne's runserver.
        seconds: length of each run's sending window.
        reset_baseline: called after each baseline run.

    Returns:
        ``stack`` and ``baseline``: a list of bench/fanout.py results, one per level, each
        with ``server_cores`` (cores per service group over the run) and ``load1_after``;
        ``memory_under_load``: a :func:`readings.memory` reading (None when not sampled).

    Raises:
        BenchError: a fan-out run failed, or a reading in the target failed.
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
        sample = contender == "stack" and (clients, rate) == sampled

        def memory_sample() -> None:
            results["memory_under_load"] = readings.memory(testbed)

        result = run_fanout(
            prefix,
            testbed,
            url,
            origin,
            f"{FANOUT_ROOM}-{contender}",
            sessions,
            clients,
            rate,
            seconds,
            processes_for(clients),
            memory_sample if sample else None,
        )
        if contender == "baseline":
            reset_baseline()
        results[contender].append(result)
        log(f"fan-out: delivered {result['delivered_ratio']}, p99 {result['p99_ms']} ms")
    return results


def processes_for(clients: int) -> int:
    """Client processes for a fan-out level: one per 125 clients, 2 to 8.

    One Python process decrypting the frames of 500 clients lags behind them by more than
    the server does (issue 18); every phase spreads its clients by this rule.
    """
    return min(8, max(2, math.ceil(clients / 125)))


def run_fanout(
    prefix: list[str],
    testbed: Testbed,
    url: str,
    origin: str,
    room: str,
    sessions: Path,
    clients: int,
    rate: float,
    seconds: float,
    processes: int | None,
    on_started: Callable[[], None] | None,
) -> dict[str, Any]:
    """Run bench/fanout.py once in the target's network and read the servers' CPU around it.

    Args:
        prefix: command prefix from :func:`deployment.in_target_network`.
        testbed: the deployment.
        url: ``ws[s]://host[:port]``.
        origin: the Origin header.
        room: the room.
        sessions: JSON file of session keys (one per client).
        clients: clients in the room.
        rate: messages per second in total.
        seconds: the sending window.
        processes: client processes (None: fanout.py's default, one per CPU).
        on_started: called halfway through the sending window (e.g. a memory reading).

    Returns:
        bench/fanout.py's result without ``plan``, with ``server_cores`` (cores per service
        group over the whole run, connects and drain included) and ``load1_after``.

    Raises:
        BenchError: the run failed, or a reading in the target failed.
    """
    cmd = [
        *prefix,
        sys.executable,
        str(ROOT / "bench" / "fanout.py"),
        "--url",
        url,
        "--origin",
        origin,
        "--room",
        room,
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
    if processes:
        cmd += ["--processes", str(processes)]
    servers_before = readings.cpu(testbed)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_lines = []
    for line in proc.stderr or []:
        stderr_lines.append(line)
        if line.startswith("STARTED") and on_started is not None:
            time.sleep(seconds / 2)
            on_started()
    out = proc.stdout.read() if proc.stdout else ""
    if proc.wait() != 0:
        raise BenchError(f"fan-out against {url} failed: {''.join(stderr_lines)[-800:]}")
    elapsed = time.monotonic() - started
    servers_after = readings.cpu(testbed)
    result = json.loads(out)
    result.pop("plan", None)
    result["server_cores"] = cores_used(servers_before, servers_after, elapsed)
    result["load1_after"] = os.getloadavg()[0]
    return result
