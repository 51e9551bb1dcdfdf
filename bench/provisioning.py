"""Provisioning phase: a cold and a warm ``site.yml`` on a freshly created target, and the floor
(what one module run costs on this machine with nothing to do).

The playbooks run with the ``ansible.posix.json`` callback; the reports stay in bench/.work/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ansible_profile
from deployment import Testbed
from harness import ROOT, WORK, BenchError, log, run

# Actions that run on the controller only (action plugins without a module): no module start-up
# on the target. Every other task that is not skipped runs a module (on the target, or on the
# controller when delegated there).
LOCAL_ACTIONS = {
    f"ansible.builtin.{name}"
    for name in (
        "add_host",
        "assert",
        "debug",
        "fail",
        "group_by",
        "import_role",
        "import_tasks",
        "include_role",
        "include_tasks",
        "include_vars",
        "meta",
        "set_fact",
        "validate_argument_spec",
    )
}
# Modules that install packages (Debian's, Python's): what a cold run spends downloading and
# unpacking, beside its tasks' own cost (``install_seconds``).
INSTALL_ACTIONS = {"ansible.builtin.apt", "ansible.builtin.pip"}
# Tasks of each kind in the floor playbook: ansible.builtin.ping, the smallest module, and
# ansible.builtin.debug, a task that runs on the controller only.
FLOOR_TASKS = 50


def module_runs(result: dict[str, Any]) -> int:
    """How many times a task's result on one host ran a module: once, or once per loop item.

    Args:
        result: one host's result of one task in the JSON callback's report (``action``,
            ``skipped``, and ``results`` for a loop).

    Returns:
        0 for a skipped task or a controller-only action (``LOCAL_ACTIONS``), else the runs.
    """
    if result.get("action") in LOCAL_ACTIONS:
        return 0
    if "results" in result:
        return sum(1 for item in result["results"] if not item.get("skipped"))
    return 0 if result.get("skipped") else 1


def playbook(
    path: Path, logfile: Path, strategy: str | None = None, profile: Path | None = None
) -> dict[str, Any]:
    """Run a playbook against inventory/local with the JSON callback; summarize its tasks.

    Args:
        path: the playbook.
        logfile: where the playbook's output (warnings, then the JSON report) is written;
            the whole report stays there.
        strategy: the strategy plugin (``ANSIBLE_STRATEGY``), e.g. ``linear``; default
            ansible.cfg's (Mitogen's linear strategy).
        profile: a folder (emptied first) for a cProfile of every task worker
            (bench/ansible_profile.py); the summary is returned as ``profile``.

    Returns:
        ``seconds`` (wall), ``controller_cpu_seconds`` (user + system time of
        ansible-playbook and every process it started on this machine), the recap
        totals, ``tasks`` (ok + skipped), ``module_tasks``
        (tasks that ran a module, see ``LOCAL_ACTIONS``) with their median seconds,
        ``module_runs`` (module runs: a loop runs one per item), ``by_role`` and the 8
        slowest tasks as ``[name, seconds]`` (see :func:`summarize`).

    Raises:
        BenchError: the playbook failed (the log file is named).
    """
    command = ["ansible-playbook", str(path)]
    if profile is not None:
        shutil.rmtree(profile, ignore_errors=True)
        command = [
            sys.executable,
            str(ROOT / "bench" / "ansible_profile.py"),
            str(profile),
            str(path),
        ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with logfile.open("w") as out:
        done = subprocess.run(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            check=False,
            env={
                **os.environ,
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer",
                **({"ANSIBLE_STRATEGY": strategy} if strategy else {}),
            },
        )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"{path.name} failed, see {logfile}")
    summary = summarize(read_report(logfile))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {"seconds": round(seconds, 1), "controller_cpu_seconds": round(cpu, 1), **summary}
    if profile is not None:
        result["profile"] = ansible_profile.summarize(profile)
    return result


def read_report(logfile: Path) -> dict[str, Any]:
    """Read the ``ansible.posix.json`` report from a playbook's log.

    Args:
        logfile: the playbook's output: warnings (stderr) may come first, then the report,
            which starts with a line holding ``{`` alone.

    Returns:
        The report as the callback wrote it (``plays``, ``stats``).

    Raises:
        BenchError: the log holds no report.
    """
    text = logfile.read_text()
    start = re.search(r"^\{$", text, re.M)
    if start is None:
        raise BenchError(f"no JSON report in {logfile}")
    report, _ = json.JSONDecoder().raw_decode(text[start.start() :])
    return report


def _role(task_name: str) -> str:
    """The role of a task as the callback names it (``role : task``), or ``(playbook)``."""
    role, sep, _ = task_name.partition(" : ")
    return role if sep else "(playbook)"


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Sum up a playbook's ``ansible.posix.json`` report: its tasks, module runs and time.

    Args:
        report: the callback's report (``plays``, each with ``tasks``; ``stats`` per host).

    Returns:
        The recap totals, ``tasks`` (ok + skipped), ``module_tasks`` (tasks that ran a
        module, see ``LOCAL_ACTIONS``) with their median and summed seconds,
        ``install_seconds`` (the tasks that ran an INSTALL_ACTIONS module), the median
        seconds of the other tasks (``controller_task_median_seconds``: controller-only
        actions and skipped tasks),
        ``module_runs`` (a loop runs one per item), ``by_role`` (role, or ``(playbook)`` for
        a playbook's own tasks, to ``module_runs``, ``seconds`` of all its tasks and
        ``controller_seconds`` of those that ran no module, most runs first) and the 8
        slowest tasks as ``[name, seconds]``. Seconds are the callback's task spans: a task's
        start to its end on the last host.
    """
    totals = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
    for stats in report["stats"].values():
        for key, field in (("ok", "ok"), ("changed", "changed"), ("failed", "failures")):
            totals[key] += stats[field]
        totals["skipped"] += stats["skipped"]
    timed, module_seconds, controller_seconds, module_total = [], [], [], 0
    install_seconds = 0.0
    by_role: dict[str, dict[str, float]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            span = task["task"]["duration"]
            if "end" not in span:
                continue
            took = (
                dt.datetime.fromisoformat(span["end"]) - dt.datetime.fromisoformat(span["start"])
            ).total_seconds()
            name = task["task"]["name"]
            timed.append((name, round(took, 2)))
            runs = sum(module_runs(r) for r in task["hosts"].values())
            role = by_role.setdefault(
                _role(name), {"module_runs": 0, "seconds": 0.0, "controller_seconds": 0.0}
            )
            role["module_runs"] += runs
            role["seconds"] += took
            if runs:
                module_seconds.append(took)
                module_total += runs
                actions = {r.get("action") for r in task["hosts"].values()}
                if actions & INSTALL_ACTIONS:
                    install_seconds += took
            else:
                controller_seconds.append(took)
                role["controller_seconds"] += took
    return {
        "tasks": totals["ok"] + totals["skipped"],
        **totals,
        "module_tasks": len(module_seconds),
        "module_runs": module_total,
        "module_task_median_seconds": round(statistics.median(module_seconds), 3)
        if module_seconds
        else None,
        "module_task_seconds": round(sum(module_seconds), 1),
        "install_seconds": round(install_seconds, 1),
        "controller_task_median_seconds": round(statistics.median(controller_seconds), 3)
        if controller_seconds
        else None,
        "by_role": {
            name: {key: round(value, 1) for key, value in r.items()}
            for name, r in sorted(by_role.items(), key=lambda kv: -kv[1]["module_runs"])
        },
        "slowest_tasks": sorted(timed, key=lambda t: -t[1])[:8],
    }


def floor_playbook() -> Path:
    """Write the floor playbook: FLOOR_TASKS ``ansible.builtin.ping`` tasks, then as many
    ``ansible.builtin.debug`` ones, no facts.

    Returns:
        Its path, bench/.work/floor.yml.
    """
    tasks = "".join(
        f"    - name: Ping {n}\n      ansible.builtin.ping:\n" for n in range(FLOOR_TASKS)
    ) + "".join(
        f"    - name: Debug {n}\n      ansible.builtin.debug:\n        msg: {n}\n"
        for n in range(FLOOR_TASKS)
    )
    path = WORK / "floor.yml"
    path.write_text(
        "---\n- name: Per-task floor\n  hosts: all\n  gather_facts: false\n  tasks:\n" + tasks
    )
    return path


def provision(testbed: Testbed) -> dict[str, Any]:
    """Recreate the target container, time a cold and a warm ``site.yml``, then the floor.

    The runs use ansible.cfg's strategy (Mitogen's linear strategy), the warm one twice
    (``warm`` is the faster, with ``runs_seconds`` of both and the larger ``changed``); one
    more warm run uses Ansible's own linear strategy, so the two compare in one run.

    The floor is what one module run costs here with nothing to do, the median seconds of
    FLOOR_TASKS ``ping`` tasks, and what a task that runs no module costs, the median of
    as many ``debug`` tasks. The warm run's module runs times the first, plus its other
    tasks times the second, is the least a warm run of this playbook can take here.

    Args:
        testbed: the deployment; its container is removed and created again.

    Returns:
        ``{"cold": ..., "warm": ..., "warm_linear": ...}`` (each as :func:`playbook`
        returns it), ``warm_profile`` (one more warm run with its workers profiled, as
        :func:`ansible_profile.summarize` returns it) and ``floor``:
        ``tasks``, ``ping_task_seconds``, ``debug_task_seconds``, ``warm_module_runs``,
        ``warm_floor_seconds`` (module runs only) and ``task_floor_seconds`` (every task).

    Raises:
        BenchError: the container could not be removed or a playbook failed.
    """
    log(f"provisioning: recreating {testbed.host} (pebble stays)")
    run(["podman", "rm", "--force", "--time", "5", testbed.host])
    playbook(ROOT / "playbooks" / "testbed.yml", WORK / "testbed.json")
    log("provisioning: cold site.yml")
    cold = playbook(ROOT / "playbooks" / "site.yml", WORK / "site-cold.json")
    log(f"provisioning: cold run took {cold['seconds']} s; warm re-run")
    # Two warm runs, the faster one reported (as the HTTP phase keeps its best round): the
    # first one after a cold run shares the CPUs with the new container settling down.
    warm_runs = [
        playbook(ROOT / "playbooks" / "site.yml", WORK / f"site-warm{n}.json") for n in ("", "-2")
    ]
    warm = min(warm_runs, key=lambda r: r["seconds"])
    warm["runs_seconds"] = [r["seconds"] for r in warm_runs]
    log(
        f"provisioning: warm runs took {' and '.join(str(s) for s in warm['runs_seconds'])} s, "
        f"changed={max(r['changed'] for r in warm_runs)}"
    )
    warm["changed"] = max(r["changed"] for r in warm_runs)
    # The same warm run with Ansible's own linear strategy, for the side-by-side ratio.
    plain = playbook(ROOT / "playbooks" / "site.yml", WORK / "site-warm-linear.json", "linear")
    log(f"provisioning: warm run without Mitogen took {plain['seconds']} s")
    # Once more with each task worker under cProfile (slower): where the controller's time goes.
    profiled = playbook(
        ROOT / "playbooks" / "site.yml", WORK / "site-warm-profiled.json", profile=WORK / "profile"
    )
    log(f"provisioning: profiled warm run: {profiled['profile']}")
    floor = playbook(floor_playbook(), WORK / "floor.json")
    ping = floor["module_task_median_seconds"]
    debug = floor["controller_task_median_seconds"]
    log(f"provisioning: a ping task takes {ping} s, a debug task {debug} s")
    others = warm["tasks"] - warm["module_tasks"]
    return {
        "cold": cold,
        "warm": warm,
        "warm_linear": plain,
        "warm_profile": profiled["profile"],
        "floor": {
            "tasks": FLOOR_TASKS,
            "ping_task_seconds": ping,
            "warm_module_runs": warm["module_runs"],
            "warm_floor_seconds": round(ping * warm["module_runs"], 1),
            "debug_task_seconds": debug,
            "task_floor_seconds": round(ping * warm["module_runs"] + debug * others, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Print the module runs of saved reports, per role: ``python bench/provisioning.py LOG...``.

    Args:
        argv: the logs of ``ansible.posix.json`` runs (``bench/.work/site-warm.json``, or a
            run of one's own with ``ANSIBLE_STDOUT_CALLBACK=ansible.posix.json``); default
            ``sys.argv[1:]``.

    Returns:
        0; each log's totals, then one line per role: module runs and seconds.

    Raises:
        BenchError: a log holds no report.
    """
    for name in sys.argv[1:] if argv is None else argv:
        summary = summarize(read_report(Path(name)))
        print(
            f"{name}: {summary['module_runs']} module runs in {summary['module_tasks']} tasks"
            f" ({summary['module_task_seconds']} s), {summary['tasks']} tasks,"
            f" changed={summary['changed']}, failed={summary['failed']}"
        )
        for role, figures in summary["by_role"].items():
            print(
                f"  {role:14} {figures['module_runs']:5g} runs {figures['seconds']:7.1f} s"
                f" (controller-only tasks {figures['controller_seconds']:.1f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
