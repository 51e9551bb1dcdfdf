"""The report: its head (date, machine), and the files written at the end of a run.

A complete run writes ``bench/results/<date>-<host>.json`` (the report), ``.md`` (the table
of bench/targets.py) and ``.png`` (the chart of bench/chart.py); a quick, partial or failed one
writes ``bench/.work/last.json``, ``.md`` and ``.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

import chart
import goals
import targets
from harness import ROOT, WORK, log

RESULTS = ROOT / "bench" / "results"


def new_report(quick: bool, skipped: set[str]) -> dict[str, Any]:
    """The head of a run's report, before anything is measured.

    Args:
        quick: the run has short rounds (``--quick``).
        skipped: the phases left out.

    Returns:
        ``date`` (UTC, ISO 8601), ``machine`` (``host``, ``cpus``, ``memory_gib`` and
        ``load_before``, the 1-minute load average now), ``quick`` and ``skipped`` (sorted).
    """
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "memory_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "load_before": os.getloadavg()[0],
        },
        "quick": quick,
        "skipped": sorted(skipped),
    }


def write(report: dict[str, Any], output: Path, complete: bool) -> str:
    """Finish the report (load after, targets); write it as JSON, a Markdown table and a chart.

    Args:
        report: what the run measured, from :func:`new_report` on; gets
            ``machine.load_after``, ``targets`` (bench/targets.py), ``goals``
            (bench/goals.py) and ``chart`` (the PNG's
            file name, or None when matplotlib is missing: the run goes on without it).
        output: the folder for a complete run's files (created when missing).
        complete: False writes bench/.work/last.json, .md and .png instead.

    Returns:
        The Markdown table.
    """
    report["machine"]["load_after"] = os.getloadavg()[0]
    report["targets"] = targets.evaluate(report)
    report["goals"] = goals.evaluate(report)
    table = targets.markdown(report)
    stem = WORK / "last"
    if complete:
        output.mkdir(parents=True, exist_ok=True)
        stem = output / f"{report['date'][:10]}-{report['machine']['host']}"
    try:
        report["chart"] = chart.draw(report, stem.with_suffix(".png")).name
    except ImportError as exc:
        report["chart"] = None
        log(f"no chart: {exc} (make venv installs matplotlib from requirements.txt)")
    if report["chart"]:
        table += f"\n![latency against clients; req/s per setup]({report['chart']})\n"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    log(f"wrote {stem}.md, .json{' and .png' if report['chart'] else ''}")
    return table
