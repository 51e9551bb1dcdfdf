"""Run ``ansible-playbook`` with each task worker under cProfile; sum up where they spent time.

ansible-core forks a worker process per task and host; the worker templates the task and
its variables, runs the action and waits for the target. The main process mostly sleeps
while they run, so profiling ``ansible-playbook`` itself shows nothing useful. This wraps
``WorkerProcess._run`` so that each worker writes its own profile, then adds them up.

Usage:
    ``python bench/ansible_profile.py OUTDIR ansible-playbook-arguments...`` runs the
    playbook (exit code as ``ansible-playbook``'s) and leaves ``OUTDIR/<pid>.prof``;
    :func:`summarize` reads that folder.
"""

from __future__ import annotations

import cProfile
import glob
import os
import pstats
import sys
from pathlib import Path
from typing import Any

# (label, file suffix, function name) of the calls summed: a function's cumulative time
# counts its callees once, also when it recurses (pstats).
PARTS = (
    # Jinja parses and compiles a template string to Python code: ansible-core 2.19 keeps no
    # cache of compiled templates, and each forked worker starts from the parent's state.
    ("jinja_compile_seconds", "jinja2/environment.py", "compile"),
    # Everything templating costs, compiling included (variables, conditionals, arguments).
    ("template_seconds", "_templating/_engine.py", "template"),
    ("conditional_seconds", "_templating/_engine.py", "evaluate_conditional"),
    # Waiting for the target's answer through Mitogen's connection.
    ("target_wait_seconds", "select.poll", "poll"),
    ("argument_spec_seconds", "action/validate_argument_spec.py", "run"),
)


def summarize(folder: Path) -> dict[str, Any]:
    """Add up the workers' profiles in a folder.

    Args:
        folder: where :func:`main` had each worker write ``<pid>.prof``.

    Returns:
        ``workers`` (profiles read; one cut short by the run's end is skipped),
        ``worker_seconds`` (their summed run time) and each of PARTS in seconds, summed
        over the workers.
    """
    total: pstats.Stats | None = None
    workers = 0
    for path in sorted(glob.glob(str(folder / "*.prof"))):
        try:
            stats = pstats.Stats(path)
        except (EOFError, ValueError, TypeError):
            continue
        workers += 1
        if total is None:
            total = stats
        else:
            total.add(stats)
    result: dict[str, Any] = {"workers": workers}
    if total is None:
        return result
    entries = total.stats  # type: ignore[attr-defined]
    result["worker_seconds"] = round(
        sum(
            cum
            for (file, _, name), (_, _, _, cum, _) in entries.items()
            if name == "_run" and file.endswith("executor/process/worker.py")
        ),
        1,
    )
    for label, suffix, function in PARTS:
        result[label] = round(
            sum(
                cum
                for (file, _, name), (_, _, _, cum, _) in entries.items()
                if (file.endswith(suffix) and name == function)
                or (file == "~" and suffix in name and function in name)
            ),
            1,
        )
    return result


def main() -> None:
    """Profile each worker of an ``ansible-playbook`` run (see the module docstring)."""
    from ansible.cli.playbook import main as playbook_main
    from ansible.executor.process import worker

    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    run = worker.WorkerProcess._run

    def profiled(self: Any) -> Any:
        profile = cProfile.Profile()
        profile.enable()
        try:
            return run(self)
        finally:
            profile.disable()
            profile.dump_stats(str(folder / f"{os.getpid()}.prof"))

    worker.WorkerProcess._run = profiled  # type: ignore[method-assign]
    sys.argv = ["ansible-playbook", *sys.argv[2:]]
    playbook_main()


if __name__ == "__main__":
    main()
