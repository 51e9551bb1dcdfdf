"""What a page costs the app itself: CPU per request of the WSGI application alone
(bench/ceiling.py), and where a request's time goes (py-spy on gunicorn under wrk)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from typing import Any

from deployment import Testbed
from harness import ROOM, WORK, BenchError, run
from http_rounds import Http


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
    parent is the container's init (systemd services' main processes).

    Args:
        testbed: the deployment.
        needle: text the process's command line must hold (``gunicorn``).

    Raises:
        BenchError: ``podman top`` failed.
    """
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

    Returns:
        ``samples`` and ``request_samples``; when some samples are in requests, also
        ``outside_requests_percent``, ``areas_percent`` (area: percent of request samples)
        and ``top_own_percent`` (the 8 functions with the most own samples, as
        ``[function, percent]``).
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

    A separate wrk run: the measured rounds are not slowed by the sampling. py-spy samples
    200 times a second for ``http.seconds``; its raw output stays in bench/.work/.

    Args:
        http: the servers; its ``stack`` is requested.
        testbed: the deployment.

    Returns:
        What :func:`summarize_profile` makes of the samples.

    Raises:
        BenchError: no gunicorn service, py-spy is missing or failed, or wrk failed.
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
