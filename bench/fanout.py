"""WebSocket fan-out load: many logged-in clients in one chat room, a few of them sending.

Each client opens ``<ws-url>/ws/chat/<room>/`` with its own session cookie. The first
``senders`` clients send ``chat.message`` frames at a fixed total rate (spread evenly over
them and over time, below the consumer's per-connection limit of 5 frames/s); every client,
senders included, receives every message of the room. A message's text carries its send
time on ``CLOCK_MONOTONIC``, which all processes of one machine share, so each receiver
computes the delivery latency on the same clock as the sender.

The clients are spread over several processes (``--processes``), so that one Python event
loop is not what limits the measurement. Each process reports the CPU time it used during the
sending window, which is the load generator's share of the machine, and its own lag, so that
a result shows which part of the latency is the clients': every message is stamped when its
bytes were read from the socket (the connection's ``data_received``, run by the event loop once
the socket is readable and the loop gets to it) and again when the client has parsed it; a
probe task measures how late the process's event loop wakes up (how long a readable socket
waits for the loop). ``sent -> read`` is then the server's part (nginx, the ASGI server, the
channel layer, the network) plus the receiving loop's wait; ``read -> parsed`` and the loop lag
are the client's.

Command line (prints one JSON object on stdout, see :func:`run`)::

    python bench/fanout.py --url wss://channels-deploy-local --room bench \\
        --sessions sessions.json --clients 500 --rate 10 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import secrets
import ssl
import sys
import time
import urllib.parse
from collections import deque
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import Frame, Opcode

# The consumer allows 5 frames/s per connection; senders stay well below.
PER_SENDER_RATE = 2.0
# Clients connecting at the same time, per process.
CONNECT_CONCURRENCY = 25
# After the sending window, a client stops listening once this many seconds pass without a
# message: a backlog still draining keeps it listening (up to the plan's drain).
QUIET = 3.0
# The loop-lag probe's sleep, in seconds: it records how much later than this it woke up.
LAG_PROBE_INTERVAL = 0.01


class StampedConnection(ClientConnection):
    """A client connection that notes when the bytes of each text message were read.

    ``read_times`` holds one ``CLOCK_MONOTONIC`` time per text frame received and not yet
    taken by :meth:`take_read_time`: the time ``data_received`` ran for the bytes that
    completed the frame (the server sends each message as one frame).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_times: deque[float] = deque()
        self._read_at = 0.0

    def data_received(self, data: bytes) -> None:
        """Stamp the read, then let the protocol parse the bytes."""
        self._read_at = time.monotonic()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        """Note the read time of a text frame before it is queued for ``recv``."""
        if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
            self.read_times.append(self._read_at)
        super().process_event(event)

    def take_read_time(self, default: float) -> float:
        """The read time of the oldest message not yet taken (``default`` if none noted)."""
        return self.read_times.popleft() if self.read_times else default


@dataclass
class Plan:
    """What one run does; the same for every worker process.

    Args:
        url: ``ws://host:port`` or ``wss://host[:port]`` (no path).
        origin: the ``Origin`` header, e.g. ``https://channels-deploy-local``.
        room: room name.
        rate: messages per second sent in total (by all senders together).
        seconds: length of the sending window.
        drain: most seconds to keep receiving after the sending window; a client stops
            earlier once nothing arrived for ``QUIET`` seconds after the window.
        cafile: PEM file of the CA of the server certificate (``wss`` only); ``None`` uses the
            system store.
        tag: random token that marks this run's messages.
        senders: number of clients that send.
    """

    url: str
    origin: str
    room: str
    rate: float
    seconds: float
    drain: float
    cafile: str | None
    tag: str
    senders: int


def _percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (sorted in place); ``None`` when empty."""
    if not values:
        return None
    values.sort()
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


async def _open(plan: Plan, cookie: str, context: ssl.SSLContext | None) -> ClientConnection:
    return await connect(
        f"{plan.url}/ws/chat/{plan.room}/",
        ssl=context,
        origin=plan.origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": f"sessionid={cookie}"},
        open_timeout=30,
        ping_interval=None,
        max_size=2**20,
        proxy=None,
        create_connection=StampedConnection,
    )


async def _worker_main(
    plan: Plan, first_index: int, cookies: list[str], pipe: Connection
) -> dict[str, Any]:
    context = None
    if plan.url.startswith("wss://"):
        context = ssl.create_default_context(cafile=plan.cafile)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connect_errors: list[str] = []

    async def open_one(cookie: str) -> ClientConnection | None:
        async with gate:
            try:
                return await _open(plan, cookie, context)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                connect_errors.append(f"{type(exc).__name__}: {exc}")
                return None

    started = time.monotonic()
    opened = await asyncio.gather(*(open_one(c) for c in cookies))
    sockets = [ws for ws in opened if ws is not None]
    connect_seconds = time.monotonic() - started
    # A connection that the server accepted and then closed (4401: the session was not
    # recognised) is a connect failure too; give the close frame a moment to arrive.
    await asyncio.sleep(0.5)
    for ws in list(sockets):
        if ws.close_code is not None:
            connect_errors.append(f"closed by the server with code {ws.close_code}")
            sockets.remove(ws)

    pipe.send({"connected": len(sockets), "connect_seconds": connect_seconds})
    start_at = await asyncio.to_thread(pipe.recv)

    latencies: list[float] = []
    # Per message: sent -> read from the socket, and read -> parsed (seconds).
    to_read: list[float] = []
    parsing: list[float] = []
    loop_lags: list[float] = []
    counts = {"received": 0, "sent": 0, "send_errors": 0, "error_frames": 0, "closed": 0}
    error_codes: dict[str, int] = {}
    window_end = start_at + plan.seconds
    stop_at = window_end + plan.drain
    last_delivery = [window_end]

    async def receive(ws: ClientConnection) -> None:
        prefix = f"bench {plan.tag} "
        try:
            while True:
                now = time.monotonic()
                remaining = stop_at - now
                if now > window_end:
                    remaining = min(remaining, QUIET)
                if remaining <= 0:
                    return
                try:
                    raw = await asyncio.wait_for(ws.recv(), remaining)
                except TimeoutError:
                    if time.monotonic() > window_end:
                        return
                    continue
                now = time.monotonic()
                last_delivery[0] = max(last_delivery[0], now)
                frame = json.loads(raw)
                parsed = time.monotonic()
                read_at = ws.take_read_time(now) if isinstance(ws, StampedConnection) else now
                kind = frame.get("type")
                if kind == "chat.message" and frame.get("text", "").startswith(prefix):
                    sent_at = float(frame["text"].rsplit(" ", 1)[1])
                    latencies.append(parsed - sent_at)
                    to_read.append(read_at - sent_at)
                    parsing.append(parsed - read_at)
                    counts["received"] += 1
                elif kind == "error":
                    counts["error_frames"] += 1
                    code = str(frame.get("code"))
                    error_codes[code] = error_codes.get(code, 0) + 1
        except ConnectionClosed:
            counts["closed"] += 1

    async def send(ws: ClientConnection, sender: int) -> None:
        # Sender k of n sends at times start + (k + j*n) / rate: evenly interleaved.
        interval = plan.senders / plan.rate
        offset = sender / plan.rate
        seq = 0
        while True:
            due = start_at + offset + seq * interval
            if due >= start_at + plan.seconds:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            text = f"bench {plan.tag} {sender} {seq} {time.monotonic():.6f}"
            try:
                await ws.send(json.dumps({"type": "chat.message", "text": text}))
                counts["sent"] += 1
            except ConnectionClosed:
                counts["send_errors"] += 1
                return
            seq += 1

    async def probe_lag() -> None:
        # How late the loop wakes from a short sleep: the wait of a readable socket.
        while time.monotonic() < window_end:
            before = time.monotonic()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            loop_lags.append(time.monotonic() - before - LAG_PROBE_INTERVAL)

    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu_start = time.process_time()
    probe = asyncio.create_task(probe_lag())
    tasks = [asyncio.create_task(receive(ws)) for ws in sockets]
    for n, ws in enumerate(sockets):
        sender = first_index + n
        if sender < plan.senders:
            tasks.append(asyncio.create_task(send(ws, sender)))
    await asyncio.gather(*tasks)
    cpu_seconds = time.process_time() - cpu_start
    probe.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        **counts,
        "connected": len(sockets),
        "connect_errors": connect_errors[:5],
        "connect_failures": len(connect_errors),
        "error_codes": error_codes,
        "cpu_seconds": cpu_seconds,
        "drained_seconds": last_delivery[0] - window_end,
        "listened_seconds": time.monotonic() - start_at,
        "latencies": latencies,
        "to_read": to_read,
        "parsing": parsing,
        "loop_lags": loop_lags,
    }


def _worker(plan: Plan, first_index: int, cookies: list[str], pipe: Connection) -> None:
    try:
        result = asyncio.run(_worker_main(plan, first_index, cookies, pipe))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        result = {"fatal": f"{type(exc).__name__}: {exc}"}
    pipe.send(result)


def run(plan: Plan, cookies: list[str], processes: int, on_start: Any = None) -> dict[str, Any]:
    """Run one fan-out measurement and return its figures.

    Args:
        plan: what to send where (see :class:`Plan`).
        cookies: one session cookie per client; ``len(cookies)`` clients connect.
        processes: worker processes to spread the clients over.
        on_start: called with no argument when the sending window opens (e.g. to sample
            memory under load), or ``None``.

    Returns:
        A dict with ``clients``, ``connected``, ``connect_seconds`` (slowest process), ``rate``
        (messages/s), ``seconds``, ``sent``, ``expected`` (= sent x connected clients),
        ``delivered``, ``delivered_ratio``, ``deliveries_per_second``, ``drained_seconds`` (how
        long after the sending window the last message arrived), ``p50_ms``, ``p95_ms``,
        ``p99_ms``, ``max_ms``, ``error_frames``, ``error_codes``, ``closed``,
        ``connect_failures``, ``connect_errors`` (a few), ``loadgen_cpu_seconds`` and
        ``loadgen_cores`` (CPU seconds of the client processes during the window, and that
        divided by the window). Where the latency comes from: ``processes``;
        ``read_p50_ms``/``read_p99_ms`` (sent -> bytes read by the receiving process);
        ``parse_p50_ms``/``parse_p99_ms`` (read -> parsed, the client's own work);
        ``loop_lag_p99_ms`` (the highest of the processes' loop-lag p99s: how long a readable
        socket may wait for its loop); ``server_p99_ms`` (``read_p99_ms`` less
        ``loop_lag_p99_ms``: an estimate of the server's part of the p99); ``per_process``
        (per process: ``clients``, ``received``, ``cores``, ``p50_ms``, ``p99_ms``,
        ``read_p99_ms``, ``parse_p50_ms``, ``parse_p99_ms``, ``loop_lag_p50_ms``,
        ``loop_lag_p99_ms``).

    Raises:
        RuntimeError: a worker process failed, or no client could connect (the message gives
            the first connection errors).
    """
    context = mp.get_context("fork")
    # Contiguous shares: process n holds clients n*per .. (n+1)*per-1, so the senders (the
    # first `plan.senders` clients) know their index.
    per = math.ceil(len(cookies) / processes)
    shares = [cookies[n * per : (n + 1) * per] for n in range(processes)]
    pipes, workers = [], []
    for n, share in enumerate(shares):
        if not share:
            continue
        parent, child = context.Pipe()
        worker = context.Process(target=_worker, args=(plan, n * per, share, child), daemon=True)
        worker.start()
        pipes.append(parent)
        workers.append(worker)
    ready = [pipe.recv() for pipe in pipes]
    failed = [r["fatal"] for r in ready if "fatal" in r]
    if failed:
        raise RuntimeError(f"fan-out worker failed: {failed[0]}")
    connected = sum(r["connected"] for r in ready)
    start_at = time.monotonic() + 1.0
    for pipe in pipes:
        pipe.send(start_at)
    if on_start is not None:
        time.sleep(max(0.0, start_at - time.monotonic()))
        on_start()
    results = [pipe.recv() for pipe in pipes]
    for worker in workers:
        worker.join(timeout=10)
    failed = [r["fatal"] for r in results if "fatal" in r]
    if failed:
        raise RuntimeError(f"fan-out worker failed: {failed[0]}")
    if connected == 0:
        errors = [e for r in results for e in r["connect_errors"]]
        raise RuntimeError(f"no client connected to {plan.url}: {errors[:3]}")
    latencies = [x for r in results for x in r["latencies"]]
    sent = sum(r["sent"] for r in results)
    delivered = len(latencies)
    expected = sent * connected
    cpu = sum(r["cpu_seconds"] for r in results)
    window = max(r["listened_seconds"] for r in results)
    codes: dict[str, int] = {}
    for r in results:
        for code, n in r["error_codes"].items():
            codes[code] = codes.get(code, 0) + n

    def ms(fraction: float, values: list[float] | None = None) -> float | None:
        value = _percentile(latencies if values is None else values, fraction)
        return None if value is None else round(value * 1000, 1)

    to_read = [x for r in results for x in r["to_read"]]
    parsing = [x for r in results for x in r["parsing"]]
    per_process = [
        {
            "clients": r["connected"],
            "received": r["received"],
            "cores": round(r["cpu_seconds"] / r["listened_seconds"], 2)
            if r["listened_seconds"]
            else None,
            "p50_ms": ms(0.50, list(r["latencies"])),
            "p99_ms": ms(0.99, list(r["latencies"])),
            "read_p99_ms": ms(0.99, list(r["to_read"])),
            "parse_p50_ms": ms(0.50, list(r["parsing"])),
            "parse_p99_ms": ms(0.99, list(r["parsing"])),
            "loop_lag_p50_ms": ms(0.50, list(r["loop_lags"])),
            "loop_lag_p99_ms": ms(0.99, list(r["loop_lags"])),
        }
        for r in results
    ]
    lag_p99 = max((p["loop_lag_p99_ms"] or 0.0 for p in per_process), default=0.0)
    read_p99 = ms(0.99, to_read)

    return {
        "clients": len(cookies),
        "connected": connected,
        "connect_seconds": round(max(r["connect_seconds"] for r in ready), 1),
        "rate": plan.rate,
        "senders": plan.senders,
        "seconds": plan.seconds,
        "sent": sent,
        "expected": expected,
        "delivered": delivered,
        "delivered_ratio": round(delivered / expected, 5) if expected else None,
        "deliveries_per_second": round(delivered / plan.seconds, 1),
        "drained_seconds": round(max(r["drained_seconds"] for r in results), 1),
        "p50_ms": ms(0.50),
        "p95_ms": ms(0.95),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
        "error_frames": sum(r["error_frames"] for r in results),
        "error_codes": codes,
        "closed": sum(r["closed"] for r in results),
        "connect_failures": sum(r["connect_failures"] for r in results),
        "connect_errors": [e for r in results for e in r["connect_errors"]][:3],
        "loadgen_cpu_seconds": round(cpu, 2),
        "loadgen_cores": round(cpu / window, 2),
        "processes": len(results),
        "read_p50_ms": ms(0.50, to_read),
        "read_p99_ms": read_p99,
        "parse_p50_ms": ms(0.50, parsing),
        "parse_p99_ms": ms(0.99, parsing),
        "loop_lag_p99_ms": lag_p99,
        "server_p99_ms": None if read_p99 is None else round(max(0.0, read_p99 - lag_p99), 1),
        "per_process": per_process,
    }


def make_plan(
    url: str,
    origin: str,
    room: str,
    rate: float,
    seconds: float,
    drain: float = 30.0,
    cafile: str | None = None,
) -> Plan:
    """A :class:`Plan` with a fresh tag and enough senders for ``rate`` messages/s."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname or parsed.path not in ("", "/"):
        raise ValueError(f"url must be ws[s]://host[:port] without a path, not {url!r}")
    senders = max(1, math.ceil(rate / PER_SENDER_RATE))
    return Plan(
        url.rstrip("/"), origin, room, rate, seconds, drain, cafile, secrets.token_hex(4), senders
    )


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the figures of :func:`run` as JSON. Exit 1 on failure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="ws://host:port or wss://host[:port]")
    parser.add_argument("--origin", required=True, help="Origin header, e.g. https://name")
    parser.add_argument("--room", required=True)
    parser.add_argument("--sessions", required=True, help="JSON file: a list of session cookies")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="messages/s in total")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=30.0, help="most seconds of backlog")
    parser.add_argument("--cafile")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    with open(args.sessions, encoding="utf-8") as handle:
        cookies = json.load(handle)
    if len(cookies) < args.clients:
        parser.error(f"{args.sessions} has {len(cookies)} sessions, {args.clients} needed")
    plan = make_plan(
        args.url, args.origin, args.room, args.rate, args.seconds, args.drain, args.cafile
    )

    def started() -> None:
        print("STARTED", file=sys.stderr, flush=True)

    try:
        result = run(plan, cookies[: args.clients], args.processes, on_start=started)
    except (RuntimeError, ValueError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({**result, "plan": {k: v for k, v in asdict(plan).items() if k != "tag"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
