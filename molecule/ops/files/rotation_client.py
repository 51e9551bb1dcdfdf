"""Users of the chat across a secret rotation (molecule/ops, verify-rotation.yml).

Built on molecule/cluster/files/cluster_client.py (its Crowd: readers that reconnect and catch up by
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
import secrets
import sys
import time
from pathlib import Path
from typing import Any

_PROJECT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(_PROJECT / "testbed"), str(_PROJECT / "molecule" / "cluster" / "files")]

from chatclient import ChatSite  # noqa: E402 (the path above first)
from cluster_client import (  # noqa: E402 (the path above first)
    Crowd,
    HttpLoop,
    add_crowd_options,
    add_site_options,
    new_users,
    report,
)

# The app's close code for a session that no longer logs its user in.
CLOSE_UNAUTHENTICATED = 4401


def old_cookie_status(args: argparse.Namespace, cookie: str) -> int:
    """GET / with only the session cookie ``cookie``; return the status (200, or 302 to log in)."""
    site = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
    site.cookies = {"sessionid": cookie}
    return site.request("GET", "/").status


async def rotation(args: argparse.Namespace) -> dict[str, Any]:
    """Readers, a sender and two HTTP loops until the stop file exists; then the old cookies."""
    sites = new_users(args, args.clients + 1, "rotation")
    cookies = [site.cookies["sessionid"] for site in sites]
    t0 = time.monotonic()
    health = HttpLoop(sites[0], "/healthz", t0)
    page = HttpLoop(sites[1], "/", t0)
    crowd = Crowd(sites, f"rotation-{secrets.token_hex(4)}", args.interval, [health, page])
    await crowd.run(args)
    readers, sender = crowd.readers, crowd.sender
    sent_ids = crowd.sent_ids
    closes = [code for r in [*readers, sender] for code in r.closes]
    return {
        "seconds": round(crowd.seconds, 1),
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
    add_site_options(command)
    add_crowd_options(command, clients=4)
    args = parser.parse_args(argv)
    return report(lambda: asyncio.run(rotation(args)))


if __name__ == "__main__":
    sys.exit(main())
