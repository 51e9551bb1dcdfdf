"""What every phase of the bench shares: the paths, the room, errors, progress lines, commands."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
# The room the HTTP rounds and the app cost request (its history comes from bench/fixtures.py).
ROOM = "bench"


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and why."""


def log(message: str) -> None:
    """Print a progress line to stderr (stdout gets the final table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output.

    Args:
        cmd: the program and its arguments (no shell).
        **kwargs: passed on to :func:`subprocess.run` (``cwd``, ``input``, ...).

    Returns:
        The finished process, with ``stdout`` and ``stderr`` as text.

    Raises:
        BenchError: the command exited non-zero; the message has the end of its stderr
            (or stdout, when stderr is empty).
    """
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise BenchError(
            f"{shlex.join(cmd)[:200]} exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
    return done
