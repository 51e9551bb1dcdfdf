"""Memory of the stack's services, run on the target with its system Python (standard library).

For each service group (nginx, gunicorn, daphne, postgresql, redis) it finds the running
systemd units, takes each unit's main process and all its descendants from ``/proc``, and
sums their resident set size (``VmRSS`` of ``/proc/<pid>/status``) and proportional set size
(``Pss`` of ``/proc/<pid>/smaps_rollup``: shared pages divided among the processes that map
them, so the sum does not count a page twice). Prints one JSON object:
``{"<group>": {"rss_kib": int, "pss_kib": int, "processes": int, "units": [...]}, ...}``.

With ``--cpu`` it prints ``{"<group>": <CPU seconds>, ...}`` instead: user plus system time of
the processes, plus what their exited children used (``/proc/<pid>/stat`` fields 14-17, in
clock ticks), so workers that gunicorn or PostgreSQL replaced still count. Two readings
around a load run give each group's CPU use; a restart of a unit in between loses its time.
The group ``baseline`` holds the bench's own ``<app>-bench-*`` units.

Usage: ``python3 memory.py <app name> [--cpu]`` (e.g. ``chat``: units ``chat-gunicorn.service``
and ``chat-daphne@N.service``).
"""

import json
import os
import re
import subprocess
import sys

app = sys.argv[1]
cpu_only = "--cpu" in sys.argv[2:]
patterns = {
    "nginx": r"nginx\.service",
    "gunicorn": rf"{re.escape(app)}-gunicorn\.service",
    "daphne": rf"{re.escape(app)}-daphne@\d+\.service",
    "postgresql": r"postgresql@.+\.service",
    "redis": r"redis-server(@.+)?\.service",
}
if cpu_only:
    patterns["baseline"] = rf"{re.escape(app)}-bench-.+\.service"
listing = subprocess.run(
    ["systemctl", "list-units", "--type=service", "--state=running", "--plain", "--no-legend"],
    check=True,
    capture_output=True,
    text=True,
).stdout
running = [line.split()[0] for line in listing.splitlines() if line.strip()]

children = {}
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))


def tree(pid):
    """The pid and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def field_kib(path, name):
    """The value in kB of a ``Name: N kB`` line of a /proc file, 0 if gone."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system time of a process and of its reaped children, in seconds; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")": field 3 is index 0, so utime..cstime (fields 14-17) are 11..14.
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


report = {}
for group, pattern in patterns.items():
    units = [u for u in running if re.fullmatch(pattern, u)]
    pids = []
    for unit in units:
        main = subprocess.run(
            ["systemctl", "show", "--property=MainPID", "--value", unit],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if main and main != "0":
            pids.extend(tree(int(main)))
    if cpu_only:
        report[group] = round(sum(cpu_seconds(p) for p in pids), 2)
        continue
    report[group] = {
        "rss_kib": sum(field_kib(f"/proc/{p}/status", "VmRSS") for p in pids),
        "pss_kib": sum(field_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids),
        "processes": len(pids),
        "units": units,
    }
print(json.dumps(report))
