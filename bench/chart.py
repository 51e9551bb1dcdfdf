"""The chart written next to each results file: the comparison at a glance (matplotlib).

Left: fan-out latency against clients at 10 messages/s, one colour per setup (each ASGI
server of the servers phase, the stack and the tutorial's baseline of the fan-out phase):
p99 as a solid line, p50 dashed, on a log scale. Right: requests per second per setup of the
HTTP phase, one group of bars per page, on a log scale (the static file is 50 times the
pages). A report without those phases leaves the panel empty with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The fan-out rate the latency panel shows.
RATE = 10.0


def latency_series(report: dict[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """The latency lines: ``{setup: [(clients, p50_ms, p99_ms), ...]}`` at RATE, by clients.

    Setups: ``<server>`` for each server of ``report["servers"]``, then ``stack`` and
    ``baseline`` of ``report["fanout"]``. Levels without a p99 (nothing delivered) are left out.
    """
    series: dict[str, list[tuple[int, float, float]]] = {}
    runs: dict[str, list[dict[str, Any]]] = {
        server: entry.get("fanout", []) for server, entry in report.get("servers", {}).items()
    }
    fanout = report.get("fanout", {})
    for setup in ("stack", "baseline"):
        if fanout.get(setup):
            runs[f"fan-out {setup}"] = fanout[setup]
    for setup, results in runs.items():
        points = sorted(
            (r["clients"], r["p50_ms"], r["p99_ms"])
            for r in results
            if r.get("rate") == RATE and r.get("p99_ms") is not None
        )
        if points:
            series[setup] = points
    return series


def throughput_bars(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Requests per second of the HTTP phase: ``{page: {setup: rps}}``."""
    return {
        page: {setup: r["rps"] for setup, r in setups.items() if r.get("rps") is not None}
        for page, setups in report.get("http", {}).items()
    }


def draw(report: dict[str, Any], path: Path) -> Path:
    """Draw the chart of a report into ``path`` (PNG).

    Args:
        report: a bench report (bench/bench.py).
        path: the PNG to write.

    Returns:
        ``path``.

    Raises:
        ImportError: matplotlib is not installed (requirements.txt has it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    fig.suptitle(f"make bench {report.get('date', '')} on {report['machine']['host']}")
    series = latency_series(report)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (setup, points) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        clients = [p[0] for p in points]
        left.plot(clients, [p[2] for p in points], "-o", color=colour, label=f"{setup} p99")
        left.plot(clients, [p[1] for p in points], "--x", color=colour, label=f"{setup} p50")
    left.set_title(f"WebSocket fan-out, one room, {RATE:g} messages/s")
    left.set_xlabel("clients")
    left.set_ylabel("delivery latency, ms (log)")
    if series:
        left.set_yscale("log")
        left.legend(fontsize="small")
    else:
        left.text(0.5, 0.5, "no fan-out in this run", ha="center", transform=left.transAxes)
    left.grid(True, which="both", alpha=0.3)

    bars = throughput_bars(report)
    setups = sorted({s for page in bars.values() for s in page})
    width = 0.8 / max(1, len(setups))
    for n, setup in enumerate(setups):
        xs = [i + n * width for i in range(len(bars))]
        right.bar(xs, [bars[p].get(setup, 0.0) for p in bars], width, label=setup)
    right.set_xticks([i + width * (len(setups) - 1) / 2 for i in range(len(bars))], list(bars))
    right.set_title("HTTP: requests per second per setup")
    right.set_ylabel("req/s (log)")
    if bars:
        right.set_yscale("log")
        right.legend(fontsize="small")
    else:
        right.text(0.5, 0.5, "no HTTP rounds in this run", ha="center", transform=right.transAxes)
    right.grid(True, axis="y", alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
