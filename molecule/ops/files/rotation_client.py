"""Users of the chat across a secret rotation (molecule/ops, verify-rotation.yml).

Built on molecule/cluster/files/cluster_client.py (its readers that reconnect and catch up by
message id, its sender, its HTTP loop), which builds on testbed/chatclient.py; both are imported,
not copied. All users sign up before the rotation starts, so their sessions are signed with the
old SECRET_KEY.

    rotation URL [--connect-to A] [--cafile F] --clients N --ready-file F --stop-file S

N readers in one room and a sender posting every --interval s, an HTTP loop on /healthz and one
on / (a login-required page: a redirect to the login form counts as a failure) with a reader's
session; F is written once all are connected; all run until S exists. Then every user's session
cookie from before the rotation GETs / once more, with nothing else. Prints one JSON object:
requests of both loops, close codes (4401 counted apart), messages sent and missed per reader,
and the status each old cookie got. Exits 1 with ``FAILED: ...`` on stderr when a step fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import ssl
import sys
import time
from pathlib import Path
from typing import Any

_PROJECT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(_PROJECT / "testbed"), str(_PROJECT / "molecule" / "cluster" / "files")]

from chatclient import ChatClientError, ChatSite  # noqa: E402 (the path above first)
from cluster_client import HttpLoop, Reader, Sender  # noqa: E402 (the path above first)
from websockets.exceptions import ConnectionClosed  # noqa: E402

# The app's close code for a session that no longer logs its user in.
CLOSE_UNAUTHENTICATED = 4401


def new_users(args: argparse.Namespace, count: int) -> list[ChatSite]:
    """Sign up ``count`` users; a 429 (nginx's budget of form posts per address) waits and retries.

    Raises:
        ChatClientError: a sign-up failed otherwise, or was refused 5 times.
    """
    suffix = secrets.token_hex(4)
    sites = []
    for n in range(count):
        for attempt in range(5):
            site = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
            try:
                site.signup(f"rotation-{n}-{suffix}", secrets.token_urlsafe(16))
                break
            except ChatClientError as exc:
                if "HTTP 429" not in str(exc) or attempt == 4:
                    raise
                time.sleep(7)
        sites.append(site)
    return sites


def old_cookie_status(args: argparse.Namespace, cookie: str) -> int:
    """GET / with only the session cookie ``cookie``; return the status (200, or 302 to log in)."""
    site = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    site.cookies = {"sessionid": cookie}
    return site.request("GET", "/").status


async def rotation(args: argparse.Namespace) -> dict[str, Any]:
    """Readers, a sender and two HTTP loops until the stop file exists; then the old cookies."""
    sites = new_users(args, args.clients + 1)
    cookies = [site.cookies["sessionid"] for site in sites]
    room = f"rotation-{secrets.token_hex(4)}"
    t0 = time.monotonic()
    health = HttpLoop(sites[0], "/healthz", t0)
    page = HttpLoop(sites[1], "/", t0)
    readers = [Reader(site, room, f"reader-{n}") for n, site in enumerate(sites[1:])]
    sender = Sender(sites[0], room, args.interval)
    stop_readers, stop_sender = asyncio.Event(), asyncio.Event()
    budget = args.reconnect_budget
    tasks = [asyncio.create_task(r.run(stop_readers, budget)) for r in readers]
    async with asyncio.timeout(args.timeout * 3):
        await asyncio.gather(*(r.connected.wait() for r in readers))
    sender_task = asyncio.create_task(sender.run(stop_sender, budget))
    health.start()
    page.start()
    Path(args.ready_file).write_text("ready\n")
    started = time.monotonic()
    while not os.path.exists(args.stop_file):
        if time.monotonic() - started > args.max_seconds:
            raise ChatClientError(f"no stop file {args.stop_file} within {args.max_seconds} s")
        for task in [*tasks, sender_task]:
            if task.done():
                task.result()  # a client that gave up raises here
        await asyncio.sleep(0.2)
    ran = time.monotonic() - started
    stop_sender.set()
    await sender_task
    await asyncio.sleep(args.settle)
    stop_readers.set()
    await asyncio.gather(*tasks)
    for loop in (health, page):
        loop.stop.set()
        loop.join()
    sent_ids = set(sender.texts.values())
    closes = [code for r in [*readers, sender] for code in r.closes]
    return {
        "seconds": round(ran, 1),
        "requests": health.summary(),
        "pages": page.summary(),
        "clients": len(readers),
        "messages": len(sent_ids),
        "resent": sender.resent,
        "closes": {str(code): closes.count(code) for code in sorted(set(closes))},
        "closed_4401": closes.count(CLOSE_UNAUTHENTICATED),
        "missing": {r.name: len(sent_ids - r.ids) for r in readers},
        "missing_total": sum(len(sent_ids - r.ids) for r in readers),
        "errors": {r.name: r.errors for r in [*readers, sender] if r.errors},
        "session_keys_changed": sum(
            old != site.cookies["sessionid"] for old, site in zip(cookies, sites, strict=True)
        ),
        "old_cookies": [old_cookie_status(args, cookie) for cookie in cookies],
    }


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); 0 when the rotation ran to its end."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("rotation")
    command.add_argument("url", help="public URL, https://name[:port]")
    command.add_argument("--connect-to", help="address to connect to instead of the name's")
    command.add_argument("--cafile", help="PEM of the CA that issued the server certificate")
    command.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    command.add_argument("--clients", type=int, default=4)
    command.add_argument("--interval", type=float, default=0.5, help="seconds between messages")
    command.add_argument("--ready-file", required=True)
    command.add_argument("--stop-file", required=True)
    command.add_argument("--max-seconds", type=float, default=600.0)
    command.add_argument("--settle", type=float, default=3.0, help="seconds for the last messages")
    command.add_argument("--reconnect-budget", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(rotation(args))
    except (ChatClientError, OSError, ssl.SSLError, TimeoutError, ConnectionClosed) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
