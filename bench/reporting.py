"""The report: its head (date, machine), and the files written at the end of a run.

A complete run writes ``bench/results/<date>-<host>.json`` (the report) and ``.md`` (the table
of bench/targets.py); a quick, partial or failed one writes ``bench/.work/last.json`` and ``.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

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
    """Finish the report (load after, targets) and write it as JSON and as a Markdown table.

    Args:
        report: what the run measured, from :func:`new_report` on; gets
            ``machine.load_after`` and ``targets`` (bench/targets.py).
        output: the folder for a complete run's files (created when missing).
        complete: False writes bench/.work/last.json and .md instead.

    Returns:
        The Markdown table.
    """
    report["machine"]["load_after"] = os.getloadavg()[0]
    report["targets"] = targets.evaluate(report)
    table = targets.markdown(report)
    stem = WORK / "last"
    if complete:
        output.mkdir(parents=True, exist_ok=True)
        stem = output / f"{report['date'][:10]}-{report['machine']['host']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    log(f"wrote {stem}.md and .json")
    return table
