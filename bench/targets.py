"""The targets of issue 7, checked against a bench report, and the report as a Markdown table.

Nothing here fails a build: a missed target is reported as ``miss`` with the measured value.
"""

from __future__ import annotations

from typing import Any

import goals

MIB = 1024


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 1)


def _level(runs: list[dict[str, Any]], clients: int, rate: float) -> dict[str, Any] | None:
    for run in runs:
        if run["clients"] == clients and run["rate"] == rate:
            return run
    return None


def _total(memory: dict[str, Any] | None, key: str = "rss_kib") -> float | None:
    if not memory:
        return None
    return round(sum(group[key] for group in memory.values()) / MIB, 1)


# The room page's p99 target, in milliseconds.
ROOM_P99_MS = 20


def _bound(report: dict[str, Any], needed_rps: float | None) -> str | None:
    """Why a room page target cannot be met here, or None when it could be.

    A target is bound when it needs more requests per second than the app's own CPU cost
    allows on this machine's cores (``app_cost``'s ``ceiling_rps``, see bench/ceiling.py): no
    server, worker count or proxy setting can beat that.
    """
    room = report.get("app_cost", {}).get("pages", {}).get("room")
    if not room or needed_rps is None or needed_rps <= room["ceiling_rps"]:
        return None
    cost = room["django_cpu_ms"] + room["postgresql_cpu_ms"]
    return (
        f"needs {needed_rps:,.0f} req/s; one room page costs {cost:.1f} ms of CPU in Django "
        f"and PostgreSQL alone, so {report['app_cost']['cores']} cores serve at most "
        f"{room['ceiling_rps']:,.0f} req/s"
    )


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: ``{"target", "measured", "met", "bound"}``.

    ``met`` is None when not measured; ``bound`` says why a missed target cannot be met on
    this machine, when the report proves it (otherwise None).
    """
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: Any, met: bool | None, bound: str | None = None) -> None:
        rows.append(
            {"target": target, "measured": measured, "met": met, "bound": None if met else bound}
        )

    http = report.get("http", {})
    room = http.get("room", {})
    stack = room.get("stack", {})
    plain = _ratio(stack.get("rps"), room.get("runserver", {}).get("rps"))
    daphne = _ratio(stack.get("rps"), room.get("daphne_runserver", {}).get("rps"))
    add("Room page: stack >= 2x plain runserver", plain, None if plain is None else plain >= 2)
    daphne_rps = room.get("daphne_runserver", {}).get("rps")
    add(
        "Room page: stack >= 9x daphne's runserver",
        daphne,
        None if daphne is None else daphne >= 9,
        _bound(report, None if daphne_rps is None else 9 * daphne_rps),
    )
    p99 = stack.get("p99_ms")
    # wrk keeps every connection busy with one request, so the throughput is the connections
    # divided by the mean latency (Little's law): latencies of 20 ms need connections / 0.020.
    connections = report.get("http_connections")
    add(
        f"Room page: stack p99 <= {ROOM_P99_MS} ms",
        p99,
        None if p99 is None else p99 <= ROOM_P99_MS,
        _bound(report, connections and connections * 1000 / ROOM_P99_MS),
    )
    static = http.get("static", {})
    ratio = _ratio(static.get("stack", {}).get("rps"), static.get("runserver", {}).get("rps"))
    add("Static file: nginx >= 40x Django", ratio, None if ratio is None else ratio >= 40)

    fanout = report.get("fanout", {})
    at10 = _level(fanout.get("stack", []), 500, 10.0)
    base10 = _level(fanout.get("baseline", []), 500, 10.0)
    at20 = _level(fanout.get("stack", []), 500, 20.0)
    if at10:
        add(
            "Fan-out 500 x 10/s: 100 % delivered",
            at10["delivered_ratio"],
            at10["delivered_ratio"] == 1.0,
        )
        add(
            "Fan-out 500 x 10/s: p99 <= 150 ms",
            at10["p99_ms"],
            at10["p99_ms"] is not None and at10["p99_ms"] <= 150,
        )
    if at10 and base10:
        factor = _ratio(base10["p99_ms"], at10["p99_ms"])
        add(
            "Fan-out 500 x 10/s: p99 >= 15x below the tutorial setup",
            factor,
            None if factor is None else factor >= 15,
        )
    if at20:
        add(
            "Fan-out 500 x 20/s: nothing lost",
            at20["delivered_ratio"],
            at20["delivered_ratio"] == 1.0,
        )

    prov = report.get("provisioning")
    if prov:
        warm, cold = prov["warm"], prov["cold"]
        add(
            "Warm site.yml <= 30 s with changed=0",
            f"{warm['seconds']} s, changed={warm['changed']}",
            warm["seconds"] <= 30 and warm["changed"] == 0,
        )
        add("Cold site.yml <= 6 min", f"{cold['seconds']} s", cold["seconds"] <= 360)
        plain = prov.get("warm_linear")
        if plain:
            add(
                "Warm site.yml: Mitogen faster than Ansible's linear strategy",
                f"{warm['seconds']} s against {plain['seconds']} s "
                f"({plain['seconds'] / warm['seconds']:.2f}x)",
                warm["seconds"] < plain["seconds"],
            )
    idle = _total(report.get("memory_idle"))
    add("Whole stack idle <= 600 MiB RSS", idle, None if idle is None else idle <= 600)
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:g}"
    return str(value)


def _cores(cores: dict[str, float] | None) -> str:
    """``nginx 0.6, gunicorn 1.1``: the cores each service group used, busiest first."""
    if not cores:
        return "-"
    return ", ".join(f"{g} {c}" for g, c in sorted(cores.items(), key=lambda kv: -kv[1]))


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: targets, then each phase's figures."""
    m = report["machine"]
    lines = [
        f"# Benchmark {report['date']} on {m['host']} ({m['cpus']} CPUs, {m['memory_gib']} GiB, "
        f"load {m['load_before']:.2f} before, {m.get('load_after', 0):.2f} after)",
        "",
        "Produced by `make bench` (bench/bench.py). Each comparison was measured side by side",
        "in this run; load generators ran on the same machine (their CPU use is in the tables).",
        "",
    ]
    if report.get("quick"):
        lines += ["**Quick run: short durations, figures are not comparable.**", ""]
    if report.get("skipped"):
        lines += [f"Phases left out: {', '.join(report['skipped'])}.", ""]
    if report.get("error"):
        lines += [f"**The run failed part-way:** {report['error']}", ""]
    lines += goals.markdown(goals.evaluate(report))
    lines += ["## Targets of issue 7", "", "| target | measured | met |", "|---|---|---|"]
    bounds = []
    for row in report.get("targets", []):
        met = {True: "yes", False: "**miss**", None: "-"}[row["met"]]
        if row.get("bound"):
            bounds.append(f"- {row['target']}: {row['bound']}.")
            met += f" (bound, note {len(bounds)})"
        lines.append(f"| {row['target']} | {_fmt(row['measured'])} | {met} |")
    if bounds:
        lines += [
            "",
            "Bound on this machine (the app's own cost per request is below):",
            "",
            *bounds,
        ]

    http = report.get("http", {})
    if http:
        lines += [
            "",
            "## HTTP (wrk, 2 threads, 32 connections; best of the rounds)",
            "",
            f"Static file: `{report['static_file']['path']}` "
            f"({report['static_file']['bytes']:,} bytes).",
            "",
            "| page | server | req/s | p50 ms | p99 ms | errors | wrk cores | server cores "
            "| x stack |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for case, servers in http.items():
            top = servers["stack"]["rps"]
            for server, r in servers.items():
                lines.append(
                    f"| {case} | {server} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} | "
                    f"{_fmt(r['p99_ms'])} | {r['errors']} | {_fmt(r['loadgen_cores'])} | "
                    f"{_cores(r.get('server_cores'))} | {_fmt(_ratio(top, r['rps']))} |"
                )
    cost = report.get("app_cost")
    if cost:
        lines += [
            "",
            f"### The app's own cost per request (ceiling on {cost['cores']} cores)",
            "",
            "The release's WSGI application called in the target with no server, nginx or TLS,",
            "one request at a time (bench/ceiling.py). Ceiling: the cores divided by the CPU of",
            "Django and of its PostgreSQL backend, the most any server could serve here.",
            "",
            "| page | Django CPU ms | PostgreSQL CPU ms | wall ms | ceiling req/s | stack req/s "
            "| stack / ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        for case, page in cost["pages"].items():
            served = http.get(case, {}).get("stack", {}).get("rps")
            share = None if served is None else round(served / page["ceiling_rps"], 2)
            lines.append(
                f"| {case} | {_fmt(page['django_cpu_ms'])} | {_fmt(page['postgresql_cpu_ms'])} "
                f"| {_fmt(page['wall_ms'])} | {_fmt(page['ceiling_rps'])} | {_fmt(served)} "
                f"| {_fmt(share)} |"
            )
    profile = report.get("profile_room_page")
    if profile and profile.get("request_samples"):
        lines += [
            "",
            f"### Profile of the room page (py-spy on all gunicorn workers: "
            f"{profile['request_samples']} samples inside requests; "
            f"{profile['outside_requests_percent']} % of all samples were outside them)",
            "",
            "| innermost area | % of request samples |",
            "|---|---|",
        ]
        for area, pct in profile["areas_percent"].items():
            lines.append(f"| {area} | {pct} |")
        lines += ["", "| function (own time) | % of request samples |", "|---|---|"]
        for name, pct in profile["top_own_percent"]:
            lines.append(f"| `{name}` | {pct} |")
    fanout = report.get("fanout", {})
    if fanout:
        lines += [
            "",
            "## WebSocket fan-out (one room; stack = wss through nginx to daphne + Redis pub/sub;",
            "baseline = one daphne runserver with the in-memory layer, ws, no nginx)",
            "",
            "| setup | clients | msg/s | delivered | deliveries/s | p50 ms | p95 ms | p99 ms | "
            "drain s | errors | client cores | server cores | daphne CPU per delivery us |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for setup in ("stack", "baseline"):
            # The cores of the daphne processes (the baseline's unit is one daphne) divided by
            # the deliveries they made: what one message to one client costs in daphne.
            group = "daphne" if setup == "stack" else "baseline"
            for r in fanout.get(setup, []):
                errors = r["error_frames"] + r["closed"] + r["connect_failures"]
                cores = (r.get("server_cores") or {}).get(group)
                per_delivery = (
                    round(cores * 1e6 / r["deliveries_per_second"])
                    if cores and r["deliveries_per_second"]
                    else None
                )
                lines.append(
                    f"| {setup} | {r['clients']} | {r['rate']:g} | {r['delivered_ratio']} | "
                    f"{_fmt(r['deliveries_per_second'])} | {_fmt(r['p50_ms'])} | "
                    f"{_fmt(r['p95_ms'])} | {_fmt(r['p99_ms'])} | {r['drained_seconds']} | "
                    f"{errors} | {_fmt(r['loadgen_cores'])} | {_cores(r.get('server_cores'))} | "
                    f"{_fmt(per_delivery)} |"
                )
    lines += _servers_markdown(report)
    lines += _capacity_markdown(report)
    prov = report.get("provisioning")
    if prov:
        lines += [
            "",
            "## Provisioning (site.yml on inventory/local)",
            "",
            "cold and warm: ansible.cfg's Mitogen strategy; warm_linear: the same warm run with "
            "Ansible's own linear strategy (`ANSIBLE_STRATEGY=linear`).",
            "",
            "| run | seconds | tasks | changed | module tasks | their median s | module runs |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in ("cold", "warm", "warm_linear"):
            p = prov.get(run)
            if not p:
                continue
            lines.append(
                f"| {run} | {p['seconds']} | {p['tasks']} | {p['changed']} | "
                f"{p.get('module_tasks', '-')} | {_fmt(p.get('module_task_median_seconds'))} | "
                f"{p.get('module_runs', '-')} |"
            )
        floor = prov.get("floor")
        if floor:
            lines += [
                "",
                f"Floor: an `ansible.builtin.ping` task takes {floor['ping_task_seconds']} s here "
                f"(median of a {floor['tasks']}-task playbook), so the warm run's "
                f"{floor['warm_module_runs']} module runs (loop items count one each) need "
                "at least "
                f"{floor['warm_floor_seconds']} s before they do any work.",
            ]
            if floor.get("task_floor_seconds") is not None:
                lines[-1] += (
                    f" A task that runs no module (debug) takes {floor['debug_task_seconds']} s: "
                    f"with its other tasks, the warm run needs at least "
                    f"{floor['task_floor_seconds']} s."
                )
        slow = prov["warm"].get("slowest_tasks") or []
        if slow:
            lines += [
                "",
                "Slowest tasks of the warm run: "
                + "; ".join(f"{name} {sec} s" for name, sec in slow[:5])
                + ".",
            ]
    memory = [(k, report.get(k)) for k in ("memory_idle", "memory_under_load", "memory_after")]
    if any(v for _, v in memory):
        lines += [
            "",
            "## Memory (MiB: RSS / PSS)",
            "",
            "| service | idle | under fan-out | after |",
            "|---|---|---|---|",
        ]
        groups = next(v for _, v in memory if v).keys()
        for group in [*groups, "total"]:
            cells = []
            for _, snap in memory:
                if not snap:
                    cells.append("-")
                elif group == "total":
                    cells.append(f"{_total(snap)} / {_total(snap, 'pss_kib')}")
                else:
                    g = snap[group]
                    cells.append(f"{g['rss_kib'] / MIB:.1f} / {g['pss_kib'] / MIB:.1f}")
            lines.append(f"| {group} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _codes(codes: dict[str, int] | None) -> str:
    """``1012 x200, 1006 x3``: counts by key, largest first; ``none`` when empty."""
    if not codes:
        return "none"
    return ", ".join(f"{k} x{n}" for k, n in sorted(codes.items(), key=lambda kv: -kv[1]))


def _per_delivery_us(run: dict[str, Any]) -> float | None:
    """CPU of the WebSocket instances per delivery, in microseconds."""
    cores = (run.get("server_cores") or {}).get("daphne")
    if not cores or not run.get("deliveries_per_second"):
        return None
    return round(cores * 1e6 / run["deliveries_per_second"])


def _servers_markdown(report: dict[str, Any]) -> list[str]:
    """The servers phase: fan-out per server and level, memory, drain and restarts."""
    servers = report.get("servers")
    if not servers:
        return []
    lines = [
        "",
        "## WebSocket tier: the ASGI servers side by side (wss through nginx, same release)",
        "",
        "Where the latency comes from: *read p99* is sent -> bytes read by the receiving client",
        "process (the server's part plus the client loop's wait), *parse p99* read -> parsed and",
        "*loop lag p99* how late the busiest client loop woke up (both the clients'); *server",
        "p99* is read p99 less loop lag p99, an estimate of the server's part.",
        "",
        "| server | clients | delivered | p50 ms | p99 ms | read p99 ms | parse p99 ms "
        "| loop lag p99 ms | server p99 ms | drain s | errors | client procs | client cores "
        "| server cores | CPU per delivery us |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server, entry in servers.items():
        for r in entry.get("fanout", []):
            errors = r["error_frames"] + r["closed"] + r["connect_failures"]
            lines.append(
                f"| {server} | {r['clients']} | {r['delivered_ratio']} | {_fmt(r['p50_ms'])} | "
                f"{_fmt(r['p99_ms'])} | {_fmt(r.get('read_p99_ms'))} | "
                f"{_fmt(r.get('parse_p99_ms'))} | {_fmt(r.get('loop_lag_p99_ms'))} | "
                f"{_fmt(r.get('server_p99_ms'))} | {r['drained_seconds']} | {errors} | "
                f"{r.get('processes', '-')} | {_fmt(r['loadgen_cores'])} | "
                f"{_cores(r.get('server_cores'))} | {_fmt(_per_delivery_us(r))} |"
            )
    lines += [
        "",
        "| server | switch s | idle MiB (RSS / PSS) | held connections | KiB per connection "
        "(RSS / PSS) | drain: close codes | drain: refused reconnects | restart: close codes "
        "| restart: refused reconnects | reconnect max ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server, entry in servers.items():
        idle = entry.get("memory_idle", {}).get("daphne", {})
        drain, restart = entry.get("drain", {}), entry.get("restart", {})
        lines.append(
            f"| {server} | {entry.get('switch_seconds')} | "
            f"{idle.get('rss_kib', 0) / MIB:.1f} / {idle.get('pss_kib', 0) / MIB:.1f} | "
            f"{entry.get('held_connections')} | {_fmt(entry.get('rss_kib_per_connection'))} / "
            f"{_fmt(entry.get('pss_kib_per_connection'))} | {_codes(drain.get('close_codes'))} | "
            f"{_codes(drain.get('reconnect_failures'))} | {_codes(restart.get('close_codes'))} | "
            f"{_codes(restart.get('reconnect_failures'))} | "
            f"{_fmt(max(drain.get('reconnect_max_ms') or 0, restart.get('reconnect_max_ms') or 0))}"
            " |"
        )
    return lines


def _capacity_markdown(report: dict[str, Any]) -> list[str]:
    """The capacity phase: idle WebSockets held through nginx, then one message to all."""
    cap = report.get("capacity")
    if not cap:
        return []
    return [
        "",
        f"## Capacity: {cap['connections']:,} idle WebSockets through nginx for "
        f"{cap['seconds']:g} s ({cap['processes']} client processes)",
        "",
        "| opened | connect s | refused (by kind) | still open | closed while held "
        "| one message reached | in s | KiB per connection, instances (RSS / PSS) "
        "| KiB per connection, nginx (RSS) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {cap['connected']:,} | {cap['connect_seconds']} | {_codes(cap['connect_failures'])} "
        f"| {cap['still_open']:,} | {_codes(cap['closed_codes'])} | {cap['received']:,} "
        f"({cap['delivered_ratio']}) | {_fmt(cap['delivery_seconds'])} | "
        f"{_fmt(cap.get('rss_kib_per_connection'))} / {_fmt(cap.get('pss_kib_per_connection'))} "
        f"| {_fmt(cap.get('nginx_kib_per_connection'))} |",
    ]
