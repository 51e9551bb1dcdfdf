"""Held WebSockets: many idle connections in one room, for capacity and for restarts.

Two modes, both spread over several processes (``--processes``) that each open their share of
the connections (``--connections``, the session cookies used in turn: a user may hold
``CHAT_WS_MAX_PER_USER`` sockets) through ``<ws-url>/ws/chat/<room>/``:

``capacity``
    Open the connections, hold them idle for ``--seconds`` (answering the server's pings),
    count how many are still open, then one connection sends one message and every process
    waits up to ``--deliver-timeout`` seconds for it on all of its connections. Prints
    ``HELD`` on stderr once every process has opened its share (a reading of the servers'
    memory belongs there).

``restart``
    Open the connections, print ``HELD``, then keep each one open for ``--seconds``: a
    connection the server closes is opened again at once (as room.js does for 1012 and
    4012), and every close code seen and every failed reconnect (refused handshake: an HTTP
    status instead of 101, a refused or reset connection) is counted. Meanwhile the caller
    restarts the servers or closes their WebSockets.

Prints one JSON object on stdout (see :func:`summarize`). Bounded: every wait has a timeout,
and a process stops after ``--seconds`` plus the connect and delivery timeouts.

    python bench/hold.py capacity --url wss://channels-deploy-local --origin https://... \\
        --room hold --sessions sessions.json --connections 10000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import resource
import secrets
import ssl
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

# Handshakes in flight at once, per process: with 8 processes at 50, daphne dropped
# handshakes that waited past its 5 s connect timeout and nginx marked both instances
# failed ("no live upstreams", 502 for 9,103 of 10,000).
CONNECT_CONCURRENCY = 10
# Seconds one handshake may take.
OPEN_TIMEOUT = 60.0
# Seconds between the checks of the restart mode's reconnect loop after a failure.
RECONNECT_PAUSE = 0.2


@dataclass
class Plan:
    """What every worker process does.

    Args:
        mode: ``capacity`` or ``restart``.
        url: ``ws://host:port`` or ``wss://host[:port]``.
        origin: the ``Origin`` header.
        room: room name.
        seconds: how long the connections are held.
        deliver_timeout: seconds to wait for the one message (capacity).
        cafile: CA of the server certificate (wss), or None for the system store.
        tag: random token marking this run's message.
    """

    mode: str
    url: str
    origin: str
    room: str
    seconds: float
    deliver_timeout: float
    cafile: str | None
    tag: str


def _raise_open_files(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (up to the hard limit).

    Returns:
        The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def _open(plan: Plan, cookie: str, context: ssl.SSLContext | None) -> ClientConnection:
    return await connect(
        f"{plan.url}/ws/chat/{plan.room}/",
        ssl=context,
        origin=plan.origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={cookie}"},
        open_timeout=OPEN_TIMEOUT,
        # The server pings; the client answers (websockets does that by itself).
        ping_interval=None,
        max_size=2**20,
        proxy=None,
        compression=None,
    )


def _failure(exc: BaseException) -> str:
    """A short name for a failed handshake: ``http <status>`` or the exception's type."""
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    return type(exc).__name__


async def _worker_main(plan: Plan, cookies: list[str], pipe: Connection) -> dict[str, Any]:
    limit = _raise_open_files(len(cookies) + 256)
    context = ssl.create_default_context(cafile=plan.cafile) if plan.url.startswith("wss") else None
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    failures: dict[str, int] = {}

    def failed(exc: BaseException) -> None:
        name = _failure(exc)
        failures[name] = failures.get(name, 0) + 1

    async def open_one(cookie: str) -> ClientConnection | None:
        async with gate:
            try:
                return await _open(plan, cookie, context)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                failed(exc)
                return None

    started = time.monotonic()
    opened = [ws for ws in await asyncio.gather(*(open_one(c) for c in cookies)) if ws]
    connect_seconds = time.monotonic() - started
    await asyncio.sleep(0.5)
    refused = [ws for ws in opened if ws.close_code is not None]
    for ws in refused:
        code = f"closed {ws.close_code}"
        failures[code] = failures.get(code, 0) + 1
    sockets = [ws for ws in opened if ws.close_code is None]
    pipe.send({"connected": len(sockets), "connect_seconds": connect_seconds})
    start_at = await asyncio.to_thread(pipe.recv)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    result: dict[str, Any] = {
        "connections": len(cookies),
        "connected": len(sockets),
        "connect_seconds": connect_seconds,
        "open_files_limit": limit,
    }
    if plan.mode == "capacity":
        result.update(await _capacity(plan, sockets, pipe))
    else:
        result.update(await _restart(plan, sockets, cookies, context, failed))
    result["connect_failures"] = failures
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return result


async def _capacity(
    plan: Plan, sockets: list[ClientConnection], pipe: Connection
) -> dict[str, Any]:
    """Hold, count the open ones, then wait for the one message on each."""
    await asyncio.sleep(plan.seconds)
    still_open = [ws for ws in sockets if ws.close_code is None]
    closed_codes: dict[str, int] = {}
    for ws in sockets:
        if ws.close_code is not None:
            closed_codes[str(ws.close_code)] = closed_codes.get(str(ws.close_code), 0) + 1
    # The parent tells process 0 to send once every process is listening.
    pipe.send({"still_open": len(still_open)})
    send_now = await asyncio.to_thread(pipe.recv)
    text = f"hold {plan.tag} {time.monotonic():.6f}"
    sent_at = time.monotonic()
    if send_now and still_open:
        await still_open[0].send(json.dumps({"type": "chat.message", "text": text}))
    deadline = sent_at + plan.deliver_timeout
    arrivals: list[float] = []

    async def wait_for_it(ws: ClientConnection) -> None:
        prefix = f"hold {plan.tag} "
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except (TimeoutError, ConnectionClosed):
                return
            frame = json.loads(raw)
            if frame.get("type") == "chat.message" and frame.get("text", "").startswith(prefix):
                arrivals.append(time.monotonic())
                return

    await asyncio.gather(*(wait_for_it(ws) for ws in still_open))
    return {
        "still_open": len(still_open),
        "closed_codes": closed_codes,
        "received": len(arrivals),
        "sent_at": sent_at if send_now else None,
        "last_arrival": max(arrivals) if arrivals else None,
    }


async def _restart(
    plan: Plan,
    sockets: list[ClientConnection],
    cookies: list[str],
    context: ssl.SSLContext | None,
    failed: Any,
) -> dict[str, Any]:
    """Keep every connection open for plan.seconds, reconnecting at once when closed."""
    end = time.monotonic() + plan.seconds
    codes: dict[str, int] = {}
    reconnect_failures: dict[str, int] = {}
    gaps: list[float] = []
    live: list[ClientConnection] = list(sockets)

    async def keep(index: int, ws: ClientConnection, cookie: str) -> None:
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(ws.wait_closed(), remaining)
            except TimeoutError:
                return
            closed_at = time.monotonic()
            code = ws.close_code
            codes[str(code)] = codes.get(str(code), 0) + 1
            while time.monotonic() < end:
                try:
                    ws = await _open(plan, cookie, context)
                    live[index] = ws
                    gaps.append(time.monotonic() - closed_at)
                    break
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    name = _failure(exc)
                    reconnect_failures[name] = reconnect_failures.get(name, 0) + 1
                    await asyncio.sleep(RECONNECT_PAUSE)

    await asyncio.gather(*(keep(n, ws, cookies[n % len(cookies)]) for n, ws in enumerate(sockets)))
    sockets[:] = live
    return {
        "close_codes": codes,
        "reconnect_failures": reconnect_failures,
        "reconnected": len(gaps),
        "reconnect_gaps": gaps,
        "open_at_end": sum(1 for ws in live if ws.close_code is None),
    }


def _worker(plan: Plan, cookies: list[str], pipe: Connection) -> None:
    try:
        result = asyncio.run(_worker_main(plan, cookies, pipe))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    pipe.send(result)


def _merge(counts: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for one in counts:
        for key, n in one.items():
            merged[key] = merged.get(key, 0) + n
    return merged


def run(plan: Plan, cookies: list[str], connections: int, processes: int) -> dict[str, Any]:
    """Hold ``connections`` WebSockets over ``processes`` processes; see :func:`summarize`.

    Args:
        plan: the mode and target (see :class:`Plan`).
        cookies: session cookies, used in turn (connection n uses ``cookies[n % len]``).
        connections: how many WebSockets to open.
        processes: worker processes to spread them over.

    Raises:
        RuntimeError: a worker failed, or no connection could be opened.
    """
    context = mp.get_context("fork")
    per = math.ceil(connections / processes)
    pipes, workers = [], []
    for n in range(processes):
        share = [cookies[i % len(cookies)] for i in range(n * per, min(connections, (n + 1) * per))]
        if not share:
            continue
        parent, child = context.Pipe()
        worker = context.Process(target=_worker, args=(plan, share, child), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    try:
        ready = [pipe.recv() for pipe in pipes]
        fatal = [r["fatal"] for r in ready if "fatal" in r]
        if fatal:
            raise RuntimeError(f"hold worker failed: {fatal[0]}")
        if not sum(r["connected"] for r in ready):
            raise RuntimeError(f"no WebSocket could be opened to {plan.url}")
        print("HELD", file=sys.stderr, flush=True)
        start_at = time.monotonic() + 0.5
        for pipe in pipes:
            pipe.send(start_at)
        if plan.mode == "capacity":
            for pipe in pipes:
                answer = pipe.recv()
                if "fatal" in answer:
                    raise RuntimeError(f"hold worker failed: {answer['fatal']}")
            # Process 0 sends; the others only listen.
            for n, pipe in enumerate(pipes):
                pipe.send(n == 0)
        results = [pipe.recv() for pipe in pipes]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        raise RuntimeError(f"hold worker failed: {fatal[0]}")
    return summarize(plan, results)


def summarize(plan: Plan, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one run from the worker processes' results.

    Returns:
        Both modes: ``mode``, ``connections``, ``connected``, ``connect_seconds`` (slowest
        process), ``connect_failures`` (by kind: ``http <status>``, ``closed <code>``, an
        exception's name), ``processes``, ``open_files_limit`` (the lowest of the processes').
        capacity: ``seconds`` held, ``still_open``, ``closed_codes`` (of those that closed
        while held), ``received`` (connections the one message reached), ``delivered_ratio``
        (received / still_open) and ``delivery_seconds`` (send to the last arrival).
        restart: ``close_codes`` (codes the server closed with, by code; 1006: no close frame),
        ``reconnect_failures`` (failed handshakes by kind), ``reconnected``,
        ``reconnect_p50_ms``/``reconnect_max_ms`` (close seen -> open again) and
        ``open_at_end``.
    """
    out: dict[str, Any] = {
        "mode": plan.mode,
        "connections": sum(r["connections"] for r in results),
        "connected": sum(r["connected"] for r in results),
        "connect_seconds": round(max(r["connect_seconds"] for r in results), 1),
        "connect_failures": _merge([r["connect_failures"] for r in results]),
        "processes": len(results),
        "open_files_limit": min(r["open_files_limit"] for r in results),
    }
    if plan.mode == "capacity":
        still_open = sum(r["still_open"] for r in results)
        received = sum(r["received"] for r in results)
        sent_at = next((r["sent_at"] for r in results if r["sent_at"] is not None), None)
        last = max((r["last_arrival"] for r in results if r["last_arrival"]), default=None)
        out.update(
            {
                "seconds": plan.seconds,
                "still_open": still_open,
                "closed_codes": _merge([r["closed_codes"] for r in results]),
                "received": received,
                "delivered_ratio": round(received / still_open, 5) if still_open else None,
                "delivery_seconds": round(last - sent_at, 2) if sent_at and last else None,
            }
        )
    else:
        gaps = sorted(g for r in results for g in r["reconnect_gaps"])
        out.update(
            {
                "seconds": plan.seconds,
                "close_codes": _merge([r["close_codes"] for r in results]),
                "reconnect_failures": _merge([r["reconnect_failures"] for r in results]),
                "reconnected": len(gaps),
                "reconnect_p50_ms": round(gaps[len(gaps) // 2] * 1000, 1) if gaps else None,
                "reconnect_max_ms": round(gaps[-1] * 1000, 1) if gaps else None,
                "open_at_end": sum(r["open_at_end"] for r in results),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the figures of :func:`run` as JSON. Exit 1 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("capacity", "restart"))
    parser.add_argument("--url", required=True, help="ws://host:port or wss://host[:port]")
    parser.add_argument("--origin", required=True, help="Origin header, e.g. https://name")
    parser.add_argument("--room", required=True)
    parser.add_argument("--sessions", required=True, help="JSON file: a list of session cookies")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to hold them")
    parser.add_argument("--deliver-timeout", type=float, default=30.0)
    parser.add_argument("--cafile")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    with open(args.sessions, encoding="utf-8") as handle:
        cookies = json.load(handle)
    if not cookies:
        parser.error(f"{args.sessions} holds no session")
    plan = Plan(
        args.mode,
        args.url.rstrip("/"),
        args.origin,
        args.room,
        args.seconds,
        args.deliver_timeout,
        args.cafile,
        secrets.token_hex(4),
    )
    try:
        result = run(plan, cookies, args.connections, args.processes)
    except (RuntimeError, OSError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
