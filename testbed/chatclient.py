"""A client of the deployed chat, for smoke checks, scenario verifiers and benchmarks.

It speaks to the service the way a browser does: HTTPS to nginx, Django's sign-up form with
its CSRF token, then WebSockets under ``/ws/chat/<room>/`` with the session cookie and an
``Origin`` header (the interface is documented in app/README.md). Only the standard library
and ``websockets`` are used, so the control node's virtualenv runs it.

Command line (prints one line per check, exits 1 on the first failure)::

    python testbed/chatclient.py smoke https://channels-deploy-local:8443 \
        --connect-to 127.0.0.1 --cafile pebble-root.pem
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import secrets
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class ChatClientError(RuntimeError):
    """A check against the service failed; the message says what was expected and seen."""


@dataclass
class Response:
    """An HTTP response: status code, headers (lower-case names) and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address while SNI, certificate checks and Host use the URL's name."""

    def __init__(
        self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass
class ChatSite:
    """One user's session with the chat at ``base_url``.

    Args:
        base_url: the public URL, ``https://name[:port]`` (no path).
        connect_to: address to open connections to instead of resolving the URL's name (for test
            beds whose names only resolve inside a container network); ``None`` resolves.
        cafile: PEM file of the CA that issued the server certificate; ``None`` uses the system
            store.
        timeout: seconds for each connection and read.
    """

    base_url: str
    connect_to: str | None = None
    cafile: str | None = None
    timeout: float = 10.0
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        url = urllib.parse.urlsplit(self.base_url)
        if url.scheme != "https" or not url.hostname:
            raise ValueError(f"base_url must be https://name[:port], not {self.base_url!r}")
        self.host = url.hostname
        self.port = url.port or 443
        self.origin = f"https://{url.netloc}"
        self.context = ssl.create_default_context(cafile=self.cafile)

    # HTTP -----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request with the session's cookies; store the cookies the answer sets.

        Args:
            method: HTTP method.
            path: path and query, starting with ``/``.
            form: fields sent as ``application/x-www-form-urlencoded``, or ``None``.
            headers: extra request headers.

        Returns:
            The response (redirects are not followed).

        Raises:
            OSError, ssl.SSLError: the connection or TLS handshake failed (a certificate that
                does not verify against ``cafile`` raises ssl.SSLCertVerificationError).
        """
        conn = _PinnedHTTPSConnection(
            self.host, self.port, self.connect_to or self.host, self.context, self.timeout
        )
        try:
            sent = {"Host": urllib.parse.urlsplit(self.base_url).netloc, **(headers or {})}
            if self.cookies:
                sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form).encode()
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            answer = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
            for value in raw.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return answer
        finally:
            conn.close()

    def expect(self, method: str, path: str, status: int, **kwargs: Any) -> Response:
        """Like :meth:`request`, raising ChatClientError unless the status is ``status``."""
        answer = self.request(method, path, **kwargs)
        if answer.status != status:
            raise ChatClientError(
                f"{method} {path}: expected HTTP {status}, got {answer.status}: {answer.text[:300]}"
            )
        return answer

    def signup(self, username: str, password: str) -> None:
        """Create an account through the sign-up form and keep its session cookie.

        Raises:
            ChatClientError: the form was not accepted (the page's errors are in the message).
        """
        page = self.expect("GET", "/accounts/signup/", 200)
        token = _csrf_token(page.text)
        answer = self.request(
            "POST",
            "/accounts/signup/",
            form={
                "csrfmiddlewaretoken": token,
                "username": username,
                "password1": password,
                "password2": password,
            },
            headers={"Referer": self.origin + "/accounts/signup/", "Origin": self.origin},
        )
        if answer.status != 302 or "sessionid" not in self.cookies:
            raise ChatClientError(
                f"sign-up of {username!r}: expected a redirect with a session, "
                f"got HTTP {answer.status}: {answer.text[:300]}"
            )

    # WebSocket ------------------------------------------------------------------------------
    async def websocket(self, room: str) -> ClientConnection:
        """Open the room's WebSocket with this session's cookies and the site's Origin.

        Raises:
            websockets.exceptions.InvalidStatus: the handshake was refused (e.g. 403 origin).
        """
        raw = socket.create_connection((self.connect_to or self.host, self.port), self.timeout)
        raw.setblocking(False)
        return await connect(
            f"wss://{self.host}:{self.port}/ws/chat/{room}/",
            sock=raw,
            ssl=self.context,
            server_hostname=self.host,
            origin=self.origin,  # type: ignore[arg-type]
            additional_headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            },
            open_timeout=self.timeout,
            max_size=2**20,
            proxy=None,
        )


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise ChatClientError("no CSRF token in the form page")
    return match.group(1)


async def next_chat_message(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    """Wait for the next ``chat.message`` frame (other frames are skipped).

    Raises:
        TimeoutError: none arrived within ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "chat.message":
                return frame


async def exchange(sender: ChatSite, receiver: ChatSite, room: str, text: str) -> dict[str, Any]:
    """Send ``text`` from ``sender`` and return the frame ``receiver`` gets for it.

    Both join ``room`` first. Raises ChatClientError when the receiver sees another text, and
    TimeoutError when nothing arrives within the sites' timeout.
    """
    async with await receiver.websocket(room) as rx, await sender.websocket(room) as tx:
        await tx.send(json.dumps({"type": "chat.message", "text": text}))
        deadline = time.monotonic() + receiver.timeout
        while True:
            frame = await next_chat_message(rx, max(0.1, deadline - time.monotonic()))
            if frame["text"] == text:
                return frame


def run_restart(restart_cmd: str) -> None:
    """Run one restart command: a command line split with shlex, run without a shell.

    Raises:
        ChatClientError: it exited non-zero; the message ends with the end of its output.
    """
    done = subprocess.run(  # noqa: S603
        shlex.split(restart_cmd), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()[-800:]
        raise ChatClientError(f"restart command {restart_cmd!r} exited {done.returncode}: {output}")


def http_across_restarts(
    site: ChatSite, path: str, seconds: float, restart_cmd: str, restarts: int
) -> dict[str, Any]:
    """Request ``path`` in a loop for ``seconds`` while ``restart_cmd`` runs ``restarts`` times.

    The restarts are spread evenly over the run, and the loop goes on until the last restart
    command has exited, even past ``seconds``: a restart that ends late is covered too. A
    request fails when it raises or answers anything but 200.

    Args:
        site: the session to use (no login needed for ``/healthz``).
        path: path to request, e.g. ``/healthz``.
        seconds: duration of the request loop.
        restart_cmd: shell-free command line run for each restart (split with shlex); it must
            exit 0.
        restarts: number of restarts.

    Returns:
        ``{"sent": int, "failed": int, "errors": [first 10 error strings], "restarts": int}``.

    Raises:
        ChatClientError: a restart command exited non-zero (the message holds its output).
    """
    stop = time.monotonic() + seconds
    restarted = threading.Event()
    counts = {"sent": 0, "failed": 0}
    errors: list[str] = []

    def loop() -> None:
        while time.monotonic() < stop or not restarted.is_set():
            counts["sent"] += 1
            try:
                status = site.request("GET", path).status
                if status != 200:
                    raise ChatClientError(f"HTTP {status}")
            except (ChatClientError, OSError, ssl.SSLError, http.client.HTTPException) as exc:
                counts["failed"] += 1
                if len(errors) < 10:
                    errors.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        for _ in range(restarts):
            time.sleep(seconds / (restarts + 1))
            run_restart(restart_cmd)
    finally:
        restarted.set()
        worker.join()
    return {**counts, "errors": errors, "restarts": restarts}


async def _reconnect(site: ChatSite, room: str, budget: float) -> tuple[ClientConnection, int]:
    """Connect to ``room``, retrying every 0.2 s for ``budget`` seconds; return (ws, failures)."""
    failures = 0
    deadline = time.monotonic() + budget
    while True:
        try:
            return await site.websocket(room), failures
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            failures += 1
            if time.monotonic() > deadline:
                raise ChatClientError(f"could not reconnect within {budget} s: {exc}") from exc
            await asyncio.sleep(0.2)


async def catchup_across_restart(
    reader: ChatSite, writer: ChatSite, room: str, restart_cmd: str
) -> dict[str, Any]:
    """Show that a client cut by an ASGI server restart gets the messages sent meanwhile.

    ``reader`` and ``writer`` join ``room``; ``writer`` sends a first message, which ``reader``
    receives. Then ``restart_cmd`` restarts the WebSocket servers: both connections are cut.
    ``writer`` reconnects at once and sends a second message while ``reader`` is still away;
    ``reader`` reconnects afterwards and asks for what it missed with ``chat.catchup``.

    Returns:
        ``{"close_code": int | None, "reconnect_failures": int, "caught_up": bool,
        "missed_id": int}``; ``caught_up`` is true when the second message came back through
        the catch-up.

    Raises:
        ChatClientError: a step did not happen within the sites' timeout, or the restart
            command failed.
    """
    tag = secrets.token_hex(4)
    rx = await reader.websocket(room)
    tx = await writer.websocket(room)
    await tx.send(json.dumps({"type": "chat.message", "text": f"before {tag}"}))
    first = await next_chat_message(rx, reader.timeout)
    restart = asyncio.create_task(asyncio.to_thread(run_restart, restart_cmd))
    close_code = None
    try:
        async with asyncio.timeout(reader.timeout * 3):
            while True:
                await rx.recv()
    except ConnectionClosed as exc:
        close_code = exc.rcvd.code if exc.rcvd else 1006
    except TimeoutError as exc:
        raise ChatClientError("the restart did not close the reader's WebSocket") from exc
    failures = 0
    tx, failed = await _reconnect(writer, room, writer.timeout * 3)
    failures += failed
    await tx.send(json.dumps({"type": "chat.message", "text": f"during {tag}"}))
    missed = await next_chat_message(tx, writer.timeout)
    await restart
    rx, failed = await _reconnect(reader, room, reader.timeout * 3)
    failures += failed
    await rx.send(json.dumps({"type": "chat.catchup", "after": first["id"]}))
    replayed = await next_chat_message(rx, reader.timeout)
    await rx.close()
    await tx.close()
    return {
        "close_code": close_code,
        "reconnect_failures": failures,
        "caught_up": replayed["id"] == missed["id"] and replayed["text"] == f"during {tag}",
        "missed_id": missed["id"],
    }


async def message_while_broken(site: ChatSite, room: str, break_cmd: str) -> dict[str, Any]:
    """Send a message on an open WebSocket after ``break_cmd`` ran (e.g. stopped Redis).

    The connection joins ``room`` first (joining needs the channel layer), then the command
    runs, then one message is sent: the app stores it and, when the layer refuses the
    broadcast, still sends the sender its own copy.

    Returns:
        ``{"id": int, "text": str}`` of the message that came back.

    Raises:
        ChatClientError: the command failed, or no copy came back within the site's timeout.
    """
    text = f"while broken {secrets.token_hex(4)}"
    ws = await site.websocket(room)
    await asyncio.to_thread(run_restart, break_cmd)
    await ws.send(json.dumps({"type": "chat.message", "text": text}))
    try:
        frame = await next_chat_message(ws, site.timeout * 3)
    except TimeoutError as exc:
        raise ChatClientError("the sender got no copy of its message") from exc
    await ws.close()
    return {"id": frame["id"], "text": frame["text"]}


def smoke(base_url: str, connect_to: str | None, cafile: str | None) -> list[str]:
    """Check the deployed chat end to end; return one line per passed check.

    Checks: the login page over verified HTTPS with HSTS; the stylesheet linked from it, with the
    long cache header of nginx's ``/static/``; ``/healthz`` reporting database and Redis ok; two
    new users sign up; a message sent by one over wss reaches the other in the same room (the
    second-last line names the message id and text, to look it up in the database); the room
    page shows it.

    Raises:
        ChatClientError, OSError, ssl.SSLError, TimeoutError: the first check that failed.
    """
    done = []
    alice = ChatSite(base_url, connect_to, cafile)
    login = alice.expect("GET", "/accounts/login/", 200)
    if "strict-transport-security" not in login.headers:
        raise ChatClientError("no Strict-Transport-Security header on the login page")
    done.append(f"HTTPS 200 on /accounts/login/ (certificate verified for {alice.host})")
    # The stylesheet: a release that changes it gets a new hashed name (the
    # cluster scenario compares them across a deploy).
    static = re.search(r'<link rel="stylesheet" href="(/static/[^"]+)"', login.text)
    if not static:
        raise ChatClientError("the login page links no stylesheet under /static/")
    asset = alice.expect("GET", static.group(1), 200)
    if "immutable" not in asset.headers.get("cache-control", ""):
        raise ChatClientError(f"{static.group(1)} lacks the long cache header of nginx's /static/")
    done.append(f"static file {static.group(1)} served with {asset.headers['cache-control']!r}")
    health = alice.expect("GET", "/healthz", 200)
    if json.loads(health.body) != {"database": "ok", "redis": "ok"}:
        raise ChatClientError(f"/healthz: {health.text}")
    done.append("/healthz 200: database ok, redis ok")
    bob = ChatSite(base_url, connect_to, cafile)
    suffix = secrets.token_hex(4)
    for site, name in ((alice, "smoke-a"), (bob, "smoke-b")):
        site.signup(f"{name}-{suffix}", secrets.token_urlsafe(16))
    alice.expect("GET", "/", 200)
    done.append("two users signed up and logged in")
    text = f"smoke {suffix}"
    frame = asyncio.run(exchange(alice, bob, f"smoke-{suffix}", text))
    done.append(
        f"WebSocket message id={frame['id']} text={text!r} from {frame['author']} "
        "reached the second user"
    )
    room = bob.expect("GET", f"/chat/smoke-{suffix}/", 200)
    if text not in room.text:
        raise ChatClientError(f"the room page /chat/smoke-{suffix}/ does not show {text!r}")
    done.append(f"room page /chat/smoke-{suffix}/ 200, showing the message from the database")
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line: ``smoke URL [--connect-to ADDRESS] [--cafile PEM]``; 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("smoke", help="check the deployed chat end to end")
    check.add_argument("url", help="public URL, https://name[:port]")
    check.add_argument("--connect-to", help="address to connect to instead of resolving the name")
    check.add_argument("--cafile", help="PEM of the CA that issued the server certificate")
    loop = sub.add_parser("http-restarts", help="requests in a loop across app server restarts")
    wsr = sub.add_parser("ws-restart", help="WebSocket catch-up across an ASGI server restart")
    broken = sub.add_parser("send-broken", help="send a message after a command broke something")
    broken.add_argument("url")
    broken.add_argument("--connect-to")
    broken.add_argument("--cafile")
    broken.add_argument("--break-cmd", required=True, help="command run after joining the room")
    for extra in (loop, wsr):
        extra.add_argument("url")
        extra.add_argument("--connect-to")
        extra.add_argument("--cafile")
        extra.add_argument("--restart-cmd", required=True, help="command that restarts the servers")
    loop.add_argument("--path", default="/healthz")
    loop.add_argument("--seconds", type=float, default=20.0)
    loop.add_argument("--restarts", type=int, default=3)
    # A request waits in the socket's backlog while the server starts again;
    # nginx gives up after its own proxy_read_timeout (60 s): a wait below that
    # is latency (make bench), not a refused request.
    loop.add_argument(
        "--timeout", type=float, default=10.0, help="seconds each request may wait (default 10)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "smoke":
            for line in smoke(args.url, args.connect_to, args.cafile):
                print(f"ok: {line}")
        elif args.command == "http-restarts":
            site = ChatSite(args.url, args.connect_to, args.cafile, timeout=args.timeout)
            result = http_across_restarts(
                site, args.path, args.seconds, args.restart_cmd, args.restarts
            )
            print(json.dumps(result))
        elif args.command == "send-broken":
            site = ChatSite(args.url, args.connect_to, args.cafile)
            site.signup(f"broken-{secrets.token_hex(4)}", secrets.token_urlsafe(16))
            room = f"broken-{secrets.token_hex(4)}"
            print(json.dumps(asyncio.run(message_while_broken(site, room, args.break_cmd))))
        else:
            sites = [ChatSite(args.url, args.connect_to, args.cafile) for _ in range(2)]
            suffix = secrets.token_hex(4)
            for n, site in enumerate(sites):
                site.signup(f"restart-{n}-{suffix}", secrets.token_urlsafe(16))
            result = asyncio.run(
                catchup_across_restart(sites[0], sites[1], f"restart-{suffix}", args.restart_cmd)
            )
            print(json.dumps(result))
    except (ChatClientError, OSError, ssl.SSLError, TimeoutError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
