"""Sample every process's command line until told to stop, as `ps` shows them.

Usage: python3 sample_cmdlines.py OUT STOP_FILE MAX_SECONDS

Reads /proc/<pid>/cmdline of every process every 50 ms until STOP_FILE exists
or MAX_SECONDS (monotonic clock) have passed, then writes each distinct
command line once to OUT (arguments joined by spaces), and a last line
"samples N" with the number of passes. Exits 0.
"""

import os
import sys
import time


def command_lines() -> set[str]:
    """Return the command line of every process now running (kernel threads have none)."""
    seen = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # ended meanwhile
        if raw:
            seen.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace"))
    return seen


def main() -> None:
    """Sample as the module's docstring says."""
    out, stop_file, max_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    deadline = time.monotonic() + max_seconds
    lines: set[str] = set()
    samples = 0
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        lines |= command_lines()
        samples += 1
        time.sleep(0.05)
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in sorted(lines))
        f.write(f"samples {samples}\n")


if __name__ == "__main__":
    main()
