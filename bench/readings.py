"""Memory and CPU readings of the target's service groups, through bench/memory.py."""

from __future__ import annotations

import json
from typing import Any

from deployment import Testbed
from harness import ROOT


def _memory_py(testbed: Testbed, *args: str) -> Any:
    """Run bench/memory.py in the target with the system Python; its parsed JSON output."""
    script = (ROOT / "bench" / "memory.py").read_text()
    return json.loads(testbed.exec("python3", "-", testbed.app, *args, stdin=script))


def memory(testbed: Testbed) -> dict[str, Any]:
    """RSS and PSS of each service group (see bench/memory.py).

    Returns:
        ``{group: {"rss_kib": int, "pss_kib": int, "processes": int, "units": [...]}}``.

    Raises:
        BenchError: the script failed in the target.
    """
    return _memory_py(testbed)


def cpu(testbed: Testbed) -> dict[str, float]:
    """CPU seconds used so far by each service group and the baselines (bench/memory.py).

    Raises:
        BenchError: the script failed in the target.
    """
    return _memory_py(testbed, "--cpu")


def cores_used(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Cores each group used between two :func:`cpu` readings ``seconds`` apart.

    Args:
        before: the earlier reading (CPU seconds per group).
        after: the later reading.
        seconds: wall-clock seconds between the two.

    Returns:
        Cores (CPU seconds per second) per group, rounded to 0.01; groups under 0.01 cores
        are left out.
    """
    used = {group: (after[group] - before.get(group, 0.0)) / seconds for group in after}
    return {group: round(cores, 2) for group, cores in used.items() if cores >= 0.01}
