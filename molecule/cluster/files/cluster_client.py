"""Clients of the cluster scenario: users of the chat through the web host's public port.

Built on testbed/chatclient.py (HTTPS with sign-up and session cookies, WebSockets with the
site's Origin), which this file imports from the project's testbed folder. Each command prints
one JSON object and exits 0; a failed step prints ``FAILED: ...`` to stderr and exits 1. The
verifier asserts on the JSON.

Where a WebSocket landed is told by ``--where NAME=COMMAND``: COMMAND (split with shlex, run
without a shell, e.g. ``podman exec cd-cluster-app1 ss -Htn state established '( sport = :8101
)'``) prints one line per WebSocket that app host NAME holds; a new WebSocket is on the host
whose count grew.

    pair URL [common options] --where NAME=CMD ...
        Two users; the second one's WebSocket is on another app host than the first one's;
        each sends a message that the other receives.
    rolling URL [common options] --clients N --ready-file F --stop-file S
        N readers in one room that reconnect when closed and catch up; a sender posting every
        --interval s; an HTTP loop on /healthz. F is written once all are connected; all run
        until S exists. Reports requests, close codes, reconnections and missed messages.
    limits URL [common options] --max-per-user N --login-failures N
        The app's limits through the public port: a WebSocket from a foreign origin (the site's
        name over http on port 8080) and one to an unknown path; one user's N+1th WebSocket;
        a logout closing that session's WebSocket; N failed logins of one account locking it
        (429 with Retry-After, the right password too) while another account logs in.
    latency URL [common options] --path P --seconds T
        One user GETs P one request after another for T s; reports the statuses and the
        latency percentiles (for pages unrelated to an attack running meanwhile).
    failover URL [common options] --stop-cmd CMD --seconds T --where NAME=CMD ...
        An HTTP loop and new WebSockets one after another; after --warmup s CMD stops one app
        host's servers; the loops go on for T s. Then --hold WebSockets are opened and held,
        and --where says where they are.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import secrets
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "testbed"))

from chatclient import (  # noqa: E402 (the path above first)
    ChatClientError,
    ChatSite,
    next_chat_message,
    run_restart,
)
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus  # noqa: E402

# What a failed connect or handshake raises.
CONNECT_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, TimeoutError)


def close_code(exc: ConnectionClosed) -> int:
    """The close code the server sent, or 1006 when the connection just dropped."""
    return exc.rcvd.code if exc.rcvd is not None else 1006


def count_lines(cmd: str) -> int:
    """Run a shell-free command line; return how many non-empty lines it printed.

    Raises:
        ChatClientError: it exited non-zero.
    """
    done = subprocess.run(  # noqa: S603
        shlex.split(cmd), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ChatClientError(f"{cmd!r} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def where_counts(where: dict[str, str]) -> dict[str, int]:
    """The number of WebSockets each app host holds, by ``--where`` name."""
    return {name: count_lines(cmd) for name, cmd in where.items()}


def landed(before: dict[str, int], after: dict[str, int]) -> str | None:
    """The one host whose count grew by one, or None when that is not clear."""
    grown = [name for name in after if after[name] - before.get(name, 0) == 1]
    others = [name for name in after if name not in grown and after[name] != before.get(name, 0)]
    return grown[0] if len(grown) == 1 and not others else None


def new_users(args: argparse.Namespace, count: int, prefix: str) -> list[ChatSite]:
    """Sign up ``count`` new users; return their sessions.

    A 429 (nginx's budget of form posts per address) waits 7 s and retries, 5 tries a user.

    Raises:
        ChatClientError: a sign-up failed otherwise, or was refused 5 times.
    """
    suffix = secrets.token_hex(4)
    sites = []
    for n in range(count):
        for attempt in range(5):
            site = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
            try:
                site.signup(f"{prefix}-{n}-{suffix}", secrets.token_urlsafe(16))
                break
            except ChatClientError as exc:
                if "HTTP 429" not in str(exc) or attempt == 4:
                    raise
                time.sleep(7)
        sites.append(site)
    return sites


# pair -----------------------------------------------------------------------------------------
async def pair(args: argparse.Namespace, where: dict[str, str]) -> dict[str, Any]:
    """Two users on different app hosts exchange a message each way."""
    alice, bob = new_users(args, 2, "pair")
    room = f"pair-{secrets.token_hex(4)}"
    counts = where_counts(where)
    rx = await alice.websocket(room)
    after = where_counts(where)
    alice_host = landed(counts, after)
    if alice_host is None:
        raise ChatClientError(f"first WebSocket: counts {counts} -> {after}, no one host grew")
    # nginx balances over every daphne instance of every host: hold bob's WebSockets until one
    # is on another host than alice's (with N instances per host, at most N tries).
    held: list[ClientConnection] = []
    tx = None
    bob_host = None
    for _ in range(args.max_tries):
        counts = after
        ws = await bob.websocket(room)
        after = where_counts(where)
        host = landed(counts, after)
        if host is not None and host != alice_host:
            tx, bob_host = ws, host
            break
        held.append(ws)
    if tx is None:
        raise ChatClientError(f"{args.max_tries} WebSockets of the second user all on {alice_host}")
    for ws in held:
        await ws.close()
    sent = []
    for sender, receiver, who in ((tx, rx, "bob"), (rx, tx, "alice")):
        text = f"from {who} {secrets.token_hex(4)}"
        await sender.send(json.dumps({"type": "chat.message", "text": text}))
        deadline = time.monotonic() + args.timeout
        while True:
            frame = await next_chat_message(receiver, max(0.1, deadline - time.monotonic()))
            if frame["text"] == text:
                sent.append({"id": frame["id"], "text": text, "author": frame["author"]})
                break
    await rx.close()
    await tx.close()
    return {
        "first_user_on": alice_host,
        "second_user_on": bob_host,
        "second_user_tries": len(held) + 1,
        "exchanged": sent,
        "counts": after,
    }


# HTTP loop ------------------------------------------------------------------------------------
class HttpLoop(threading.Thread):
    """GET ``path`` one request after another until ``stop`` is set; every non-200 fails.

    ``log`` keeps (start offset, seconds, error or None) per request, offsets from ``t0``.
    ``pause`` s between requests leave the little CPU of the test bed to what is measured.
    """

    def __init__(self, site: ChatSite, path: str, t0: float, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.site, self.path, self.t0, self.pause = site, path, t0, pause
        self.stop = threading.Event()
        self.log: list[tuple[float, float, str | None]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            error = None
            try:
                status = self.site.request("GET", self.path).status
                if status != 200:
                    error = f"HTTP {status}"
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.log.append((start - self.t0, time.monotonic() - start, error))
            self.stop.wait(self.pause)

    def summary(self, since: float = float("-inf")) -> dict[str, Any]:
        """Counts of the requests started at or after offset ``since``."""
        rows = [row for row in self.log if row[0] >= since]
        failed = [row for row in rows if row[2]]
        errors: dict[str, int] = {}
        for row in failed:
            errors[row[2]] = errors.get(row[2], 0) + 1  # type: ignore[index]
        return {
            "sent": len(rows),
            "failed": len(failed),
            "slowest": round(max((row[1] for row in rows), default=0.0), 3),
            "last_failure_at": round(max((r[0] + r[1] for r in failed), default=0.0), 3),
            "errors": errors,
        }


# rolling --------------------------------------------------------------------------------------
class Reader:
    """A user in the room who reconnects whenever the server closes and catches up by id."""

    def __init__(self, site: ChatSite, room: str, name: str) -> None:
        self.site, self.room, self.name = site, room, name
        self.ids: set[int] = set()
        self.closes: list[int] = []
        self.reconnect_failures = 0
        self.reconnect_errors: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.connected = asyncio.Event()

    async def connect(self, budget: float) -> ClientConnection:
        """Connect, retrying every 0.2 s for ``budget`` s, and ask for what was missed."""
        deadline = time.monotonic() + budget
        while True:
            try:
                ws = await self.site.websocket(self.room)
            except CONNECT_ERRORS as exc:
                self.reconnect_failures += 1
                key = f"{type(exc).__name__}: {exc}"[:120]
                self.reconnect_errors[key] = self.reconnect_errors.get(key, 0) + 1
                if time.monotonic() > deadline:
                    raise ChatClientError(
                        f"{self.name}: no reconnection within {budget} s"
                    ) from exc
                await asyncio.sleep(0.2)
                continue
            try:
                await ws.send(
                    json.dumps({"type": "chat.catchup", "after": max(self.ids, default=0)})
                )
                return ws
            except ConnectionClosed as exc:
                self.closes.append(close_code(exc))

    async def run(self, stop: asyncio.Event, budget: float) -> None:
        """Read until ``stop``; on every close record its code and connect again."""
        while not stop.is_set():
            ws = await self.connect(budget)
            self.connected.set()
            try:
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(0.5):
                            frame = json.loads(await ws.recv())
                    except TimeoutError:
                        continue
                    if frame.get("type") == "chat.message":
                        self.ids.add(frame["id"])
                    elif frame.get("code") == "catchup_truncated":
                        after = max(self.ids, default=0)
                        await ws.send(json.dumps({"type": "chat.catchup", "after": after}))
                    else:
                        key = str(frame.get("code", frame.get("type")))
                        self.errors[key] = self.errors.get(key, 0) + 1
                await ws.close()
            except ConnectionClosed as exc:
                self.closes.append(close_code(exc))


class Sender(Reader):
    """A reader that also posts a numbered message every ``interval`` s until ``stop``.

    A message counts as sent once the server's broadcast of it came back, or a catch-up after a
    reconnection shows it stored; otherwise it is sent again. ``texts`` maps each text to its id.
    """

    def __init__(self, site: ChatSite, room: str, interval: float) -> None:
        super().__init__(site, room, "sender")
        self.interval = interval
        self.texts: dict[str, int] = {}
        self.resent = 0
        self.tag = secrets.token_hex(4)

    async def confirm(self, ws: ClientConnection, text: str, timeout: float) -> int | None:
        """Read until ``text`` comes back (its id), an error frame or ``timeout`` (None)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame.get("type") == "chat.message":
                        self.ids.add(frame["id"])
                        self.texts.setdefault(frame["text"], frame["id"])
                        if frame["text"] == text:
                            return frame["id"]
                    elif frame.get("code") == "catchup_truncated":
                        after = max(self.ids, default=0)
                        await ws.send(json.dumps({"type": "chat.catchup", "after": after}))
                    elif frame.get("type") == "error":
                        key = str(frame.get("code"))
                        self.errors[key] = self.errors.get(key, 0) + 1
                        return None
        except TimeoutError:
            return None

    async def run(self, stop: asyncio.Event, budget: float) -> None:  # noqa: D102
        ws = await self.connect(budget)
        self.connected.set()
        number = 0
        while not stop.is_set():
            number += 1
            text = f"deploy {self.tag} #{number}"
            while text not in self.texts:
                try:
                    await ws.send(json.dumps({"type": "chat.message", "text": text}))
                    if await self.confirm(ws, text, self.site.timeout) is None:
                        self.resent += 1
                except ConnectionClosed as exc:
                    self.closes.append(close_code(exc))
                    ws = await self.rejoin(text, budget)
            await asyncio.sleep(self.interval)
        await ws.close()

    async def rejoin(self, text: str, budget: float) -> ClientConnection:
        """Connect again after a close and read the catch-up, which may show ``text`` stored.

        A connection that closes again meanwhile (the next instance restarting) is recorded
        and replaced, like the first one.

        Raises:
            ChatClientError: no connection within ``budget`` s (see :meth:`Reader.connect`).
        """
        while True:
            ws = await self.connect(budget)
            try:
                if await self.confirm(ws, text, 2.0) is None and text not in self.texts:
                    self.resent += 1
                return ws
            except ConnectionClosed as exc:
                self.closes.append(close_code(exc))


class Crowd:
    """Readers in one room, a sender and HTTP loops, run until a stop file exists.

    The first site sends (one message every ``args.interval`` s), the others read and
    reconnect and catch up when closed (``args.reconnect_budget`` s to reconnect);
    ``loops`` (not yet started) run beside them. :meth:`run` writes ``args.ready_file``
    once every reader is connected and returns once ``args.stop_file`` exists, the sender
    has stopped and the readers had ``args.settle`` s for the last messages.
    """

    def __init__(self, sites: list[ChatSite], room: str, interval: float, loops: list[HttpLoop]):
        self.sender = Sender(sites[0], room, interval)
        self.readers = [Reader(site, room, f"reader-{n}") for n, site in enumerate(sites[1:])]
        self.loops = loops
        self.seconds = 0.0

    async def run(self, args: argparse.Namespace) -> None:
        """Run everything until the stop file exists (see the class).

        Raises:
            ChatClientError: no stop file within ``args.max_seconds`` s, or a client gave up.
            TimeoutError: the readers were not all connected within 3 × ``args.timeout`` s.
        """
        stop_readers, stop_sender = asyncio.Event(), asyncio.Event()
        budget = args.reconnect_budget
        tasks = [asyncio.create_task(r.run(stop_readers, budget)) for r in self.readers]
        async with asyncio.timeout(args.timeout * 3):
            await asyncio.gather(*(r.connected.wait() for r in self.readers))
        sender_task = asyncio.create_task(self.sender.run(stop_sender, budget))
        for loop in self.loops:
            loop.start()
        Path(args.ready_file).write_text("ready\n")
        started = time.monotonic()
        while not os.path.exists(args.stop_file):
            if time.monotonic() - started > args.max_seconds:
                raise ChatClientError(f"no stop file {args.stop_file} within {args.max_seconds} s")
            for task in [*tasks, sender_task]:
                if task.done():
                    task.result()  # a client that gave up raises here
            await asyncio.sleep(0.2)
        self.seconds = time.monotonic() - started
        # The sender stops first; the readers get a few seconds for the last live messages.
        stop_sender.set()
        await sender_task
        await asyncio.sleep(args.settle)
        stop_readers.set()
        await asyncio.gather(*tasks)
        for loop in self.loops:
            loop.stop.set()
            loop.join()

    @property
    def sent_ids(self) -> set[int]:
        """Ids of the messages the sender had confirmed stored."""
        return set(self.sender.texts.values())


async def rolling(args: argparse.Namespace) -> dict[str, Any]:
    """Readers, a sender and an HTTP loop across whatever happens until the stop file exists."""
    sites = new_users(args, args.clients + 1, "rolling")
    http_loop = HttpLoop(sites[0], "/healthz", time.monotonic())
    crowd = Crowd(sites, f"rolling-{secrets.token_hex(4)}", args.interval, [http_loop])
    await crowd.run(args)
    sent_ids = crowd.sent_ids
    clients = []
    for r in crowd.readers:
        missing = sorted(sent_ids - r.ids)
        clients.append(
            {
                "name": r.name,
                "closes": r.closes,
                "reconnect_failures": r.reconnect_failures,
                "reconnect_errors": r.reconnect_errors,
                "errors": r.errors,
                "missing": missing[:10],
                "missing_count": len(missing),
            }
        )
    return {
        "seconds": round(crowd.seconds, 1),
        "requests": http_loop.summary(),
        "clients": len(crowd.readers),
        "messages": len(sent_ids),
        "resent": crowd.sender.resent,
        "sender": {"closes": crowd.sender.closes, "errors": crowd.sender.errors},
        "readers": clients,
    }


# failover -------------------------------------------------------------------------------------
async def ws_loop(
    site: ChatSite, room: str, t0: float, stop: asyncio.Event, log: list[tuple[float, float, Any]]
) -> None:
    """Open a WebSocket, send a message, wait for its broadcast, close; again until ``stop``."""
    while not stop.is_set():
        start = time.monotonic()
        error = None
        text = f"failover {secrets.token_hex(4)}"
        try:
            ws = await site.websocket(room)
            try:
                await ws.send(json.dumps({"type": "chat.message", "text": text}))
                while (await next_chat_message(ws, site.timeout))["text"] != text:
                    pass
            finally:
                await ws.close()
        except CONNECT_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"[:160]
        log.append((start - t0, time.monotonic() - start, error))
        # At most 4 messages a second: one user's frames share a budget of 5 a
        # second over all their sockets (CHAT_WS_RATE_PER_SECOND).
        await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - start)))


async def failover(args: argparse.Namespace, where: dict[str, str]) -> dict[str, Any]:
    """Requests and new WebSockets across the stop of one app host's servers."""
    (site,) = new_users(args, 1, "failover")
    room = f"failover-{secrets.token_hex(4)}"
    t0 = time.monotonic()
    http_loop = HttpLoop(
        ChatSite(args.url, args.connect_to, args.cafile, args.timeout), "/healthz", t0
    )
    ws_log: list[tuple[float, float, Any]] = []
    stop = asyncio.Event()
    http_loop.start()
    ws_task = asyncio.create_task(ws_loop(site, room, t0, stop, ws_log))
    await asyncio.sleep(args.warmup)
    stop_wall = time.time()
    stop_began = time.monotonic() - t0
    await asyncio.to_thread(run_restart, args.stop_cmd)
    stop_ended = time.monotonic() - t0
    await asyncio.sleep(args.seconds)
    stop.set()
    await ws_task
    http_loop.stop.set()
    http_loop.join()
    ws_after = [row for row in ws_log if row[0] >= stop_began]
    ws_failed = [row for row in ws_after if row[2]]
    ws_errors: dict[str, int] = {}
    for row in ws_failed:
        ws_errors[row[2]] = ws_errors.get(row[2], 0) + 1
    # Where new WebSockets go now: hold some open and count them per host.
    before = where_counts(where)
    held = [await site.websocket(room) for _ in range(args.hold)]
    after = where_counts(where)
    for ws in held:
        await ws.close()
    http_after = http_loop.summary(since=stop_began)
    return {
        "stop_wall": round(stop_wall, 3),
        "stop_seconds": round(stop_ended - stop_began, 3),
        "window": args.seconds,
        "http_before": http_loop.summary()["sent"] - http_after["sent"],
        "http": {
            **http_after,
            "last_failure_at": round(max(0.0, http_after["last_failure_at"] - stop_began), 3),
        },
        "websockets": {
            "opened": len(ws_after),
            "failed": len(ws_failed),
            "slowest": round(max((row[1] for row in ws_after), default=0.0), 3),
            "last_failure_at": round(
                max((r[0] + r[1] - stop_began for r in ws_failed), default=0.0), 3
            ),
            "errors": ws_errors,
        },
        "held": args.hold,
        "held_on": {name: after[name] - before[name] for name in after},
    }


# limits ---------------------------------------------------------------------------------------
async def open_ws(site: ChatSite, path: str, origin: str | None = None) -> ClientConnection:
    """Open a WebSocket at ``path`` with the session's cookies and ``origin`` (the site's)."""
    raw = socket.create_connection((site.connect_to or site.host, site.port), site.timeout)
    raw.setblocking(False)
    return await connect(
        f"wss://{site.host}:{site.port}{path}",
        sock=raw,
        ssl=site.context,
        server_hostname=site.host,
        origin=origin or site.origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in site.cookies.items())},
        open_timeout=site.timeout,
        proxy=None,
    )


async def closed_with(ws: ClientConnection, timeout: float) -> int | None:
    """Read frames until the server closes; its close code, or None while still open."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return close_code(exc)
    except TimeoutError:
        return None


def csrf_from(site: ChatSite, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    page = site.expect("GET", path, 200).text
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise ChatClientError(f"no CSRF token on {path}")
    return match.group(1)


def login(site: ChatSite, username: str, password: str) -> tuple[int, str | None]:
    """POST the login form; the status and the Retry-After header."""
    token = csrf_from(site, "/accounts/login/")
    answer = site.request(
        "POST",
        "/accounts/login/",
        form={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers={"Referer": site.origin + "/accounts/login/", "Origin": site.origin},
    )
    return answer.status, answer.headers.get("retry-after")


async def limits(args: argparse.Namespace) -> dict[str, Any]:
    """The app's limits as a user and an attacker meet them through the public port."""
    alice, bob = new_users(args, 2, "limits")
    room = f"limits-{secrets.token_hex(3)}"
    result: dict[str, Any] = {}

    foreign = f"http://{alice.host}:8080"
    try:
        ws = await open_ws(alice, f"/ws/chat/{room}/", origin=foreign)
        await ws.close()
        result["foreign_origin"] = {"origin": foreign, "status": 101}
    except InvalidStatus as exc:
        result["foreign_origin"] = {"origin": foreign, "status": exc.response.status_code}

    ws = await open_ws(alice, "/ws/nowhere/")
    result["unknown_path_close"] = await closed_with(ws, args.timeout)

    held = [await alice.websocket(room) for _ in range(args.max_per_user)]
    extra = await alice.websocket(room)
    result["over_cap_close"] = await closed_with(extra, args.timeout)
    result["held_still_open"] = [await closed_with(ws, 0.2) for ws in held].count(None)
    for ws in held:
        await ws.close()

    bob_ws = await bob.websocket(room)
    token = csrf_from(bob, f"/chat/{room}/")
    start = time.monotonic()
    bob.request(
        "POST",
        "/accounts/logout/",
        form={"csrfmiddlewaretoken": token},
        headers={"Referer": bob.origin + "/", "Origin": bob.origin},
    )
    result["logout_close"] = await closed_with(bob_ws, args.timeout)
    result["logout_close_seconds"] = round(time.monotonic() - start, 3)

    password = secrets.token_urlsafe(16)
    victim = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    victim_name = f"limits-victim-{secrets.token_hex(4)}"
    victim.signup(victim_name, password)
    other_password = secrets.token_urlsafe(16)
    other = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    other_name = f"limits-other-{secrets.token_hex(4)}"
    other.signup(other_name, other_password)
    attacker = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    result["wrong_logins"] = [
        login(attacker, victim_name, "wrong-" + secrets.token_hex(4))
        for _ in range(args.login_failures)
    ]
    owner = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    result["right_password_locked"] = login(owner, victim_name, password)
    fresh = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    result["other_account"] = login(fresh, other_name, other_password)
    return result


# latency --------------------------------------------------------------------------------------
def latency(args: argparse.Namespace) -> dict[str, Any]:
    """GET ``args.path`` in a loop for ``args.seconds``; statuses and latency percentiles in ms."""
    (site,) = new_users(args, 1, "latency")
    times: list[float] = []
    statuses: dict[str, int] = {}
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            status = str(site.request("GET", args.path).status)
        except OSError as exc:
            status = type(exc).__name__
        times.append((time.monotonic() - start) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
    times.sort()

    def pct(p: float) -> float:
        return round(times[min(len(times) - 1, int(p * len(times)))], 1)

    return {
        "requests": len(times),
        "statuses": statuses,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "max_ms": round(times[-1], 1),
    }


def add_site_options(command: argparse.ArgumentParser) -> None:
    """The options every command takes: the public URL, where to connect, the CA, the timeout."""
    command.add_argument("url", help="public URL, https://name[:port]")
    command.add_argument("--connect-to", help="address to connect to instead of the name's")
    command.add_argument("--cafile", help="PEM of the CA that issued the server certificate")
    command.add_argument("--timeout", type=float, default=10.0, help="seconds per step")


def add_crowd_options(command: argparse.ArgumentParser, clients: int) -> None:
    """The options of a command that runs a :class:`Crowd` (``clients``: default readers)."""
    command.add_argument("--clients", type=int, default=clients)
    command.add_argument("--interval", type=float, default=0.5, help="seconds between messages")
    command.add_argument("--ready-file", required=True)
    command.add_argument("--stop-file", required=True)
    command.add_argument("--max-seconds", type=float, default=600.0)
    command.add_argument("--settle", type=float, default=3.0, help="seconds for the last messages")
    command.add_argument("--reconnect-budget", type=float, default=60.0)


def report(run: Callable[[], dict[str, Any]]) -> int:
    """Call ``run`` and print its result as one JSON object: 0; or ``FAILED: ...`` on stderr: 1."""
    try:
        result = run()
    except (ChatClientError, OSError, ssl.SSLError, TimeoutError, ConnectionClosed) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); 0 when the command ran to its end."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        name: sub.add_parser(name) for name in ("pair", "rolling", "failover", "limits", "latency")
    }
    for command in commands.values():
        add_site_options(command)
    for name in ("pair", "failover"):
        commands[name].add_argument(
            "--where", action="append", default=[], metavar="NAME=CMD", required=True
        )
    commands["pair"].add_argument("--max-tries", type=int, default=4)
    add_crowd_options(commands["rolling"], clients=6)
    fail = commands["failover"]
    fail.add_argument("--stop-cmd", required=True)
    fail.add_argument("--warmup", type=float, default=3.0)
    fail.add_argument("--seconds", type=float, default=20.0)
    fail.add_argument("--hold", type=int, default=4)
    lim = commands["limits"]
    lim.add_argument("--max-per-user", type=int, default=10, help="CHAT_WS_MAX_PER_USER")
    lim.add_argument("--login-failures", type=int, default=5, help="CHAT_LOGIN_FAILURE_LIMIT")
    lat = commands["latency"]
    lat.add_argument("--path", default="/")
    lat.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    where = dict(item.split("=", 1) for item in getattr(args, "where", []))
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "pair": lambda: asyncio.run(pair(args, where)),
        "rolling": lambda: asyncio.run(rolling(args)),
        "limits": lambda: asyncio.run(limits(args)),
        "latency": lambda: latency(args),
        "failover": lambda: asyncio.run(failover(args, where)),
    }
    return report(runs[args.command])


if __name__ == "__main__":
    sys.exit(main())
