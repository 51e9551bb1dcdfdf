"""HTTP and WebSocket over a unix socket, for the app_server scenario's daphne checks.

Run with the test virtualenv's python (it has `websockets`):

    client.py get SOCKET
        One GET with X-Forwarded-For; prints {"status": ..., "body": ...}
        or {"error": ..., "errno": ...}.
    client.py echo SOCKET OK_BYTES BIG_BYTES
        Sends a short text, then OK_BYTES, over one WebSocket and expects
        both echoed; then BIG_BYTES over another, which the server must
        refuse by closing; prints {"echo": true|false, "big_close_code": n}.
    client.py watch SOCKET STOPFILE
        Holds one WebSocket open until the server closes it, then reconnects
        at once; meanwhile opens, uses and closes new WebSockets one after
        another, until STOPFILE exists (at most 5 minutes). Prints
        {"held_close_code": n, "reconnect_seconds": s, "reconnect_failures": n,
         "attempts": n, "failed": n, "refused": n, "not_opened": n, "cut": n,
         "errors": {message: count}}: "refused" could not connect, "not_opened"
        connected but got no WebSocket, "cut" was open and got closed.
"""

import asyncio
import json
import os
import sys
import time
from collections import Counter

# http_client.py is installed beside this file (one folder of test clients).
from http_client import UnixHTTPConnection
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

URI = "ws://testapp.example/ws/echo/"
OPEN_TIMEOUT = 30


def get(path: str) -> dict:
    """GET / over the unix socket `path`, as nginx would forward it."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request(
            "GET", "/", headers={"Host": "testapp.example", "X-Forwarded-For": "203.0.113.7"}
        )
        resp = conn.getresponse()
        return {"status": resp.status, "body": resp.read().decode()}
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "errno": exc.errno}
    finally:
        conn.close()


def close_code(exc: ConnectionClosed) -> int:
    """The close code the server sent, or 1006 when the connection just dropped."""
    return exc.rcvd.code if exc.rcvd is not None else 1006


async def echo_once(ws, text: str) -> bool:
    """Send `text` and tell whether the same text came back."""
    await ws.send(text)
    return await ws.recv() == text


async def echo(path: str, ok_bytes: int, big_bytes: int) -> dict:
    """Echo a short and a large message, then check the size limit."""
    async with unix_connect(path, URI, open_timeout=OPEN_TIMEOUT, max_size=None) as ws:
        ok = await echo_once(ws, "hello") and await echo_once(ws, "x" * ok_bytes)
    big_code = None
    async with unix_connect(path, URI, open_timeout=OPEN_TIMEOUT, max_size=None) as ws:
        try:
            await echo_once(ws, "x" * big_bytes)
        except ConnectionClosed as exc:
            big_code = close_code(exc)
    return {"echo": ok, "big_close_code": big_code}


async def watch(path: str, stop_file: str) -> dict:
    """Hold a WebSocket through a restart and keep connecting meanwhile."""
    result = {"held_close_code": None, "reconnect_seconds": None, "reconnect_failures": 0}
    errors: Counter = Counter()
    counts = Counter()
    deadline = time.monotonic() + 300

    def stopped() -> bool:
        return os.path.exists(stop_file) or time.monotonic() > deadline

    async def attempt() -> None:
        """Open, use and close one WebSocket; count how it failed, if it did."""
        try:
            ws = await unix_connect(path, URI, open_timeout=OPEN_TIMEOUT)
        except (ConnectionRefusedError, FileNotFoundError):
            counts["refused"] += 1
            raise
        except InvalidMessage as exc:
            # The stopping process had accepted the connection and closed it
            # before it answered the handshake (daphne cancels handshakes in
            # flight at shutdown): open on the instance when it stopped, like
            # a cut WebSocket, not refused. Through nginx such a request goes
            # to the next instance (proxy_next_upstream error).
            key = "cut_in_handshake" if isinstance(exc.__cause__, EOFError) else "not_opened"
            counts[key] += 1
            raise
        except Exception:
            counts["not_opened"] += 1
            raise
        try:
            if not await echo_once(ws, "ping"):
                raise RuntimeError("wrong echo")
        except ConnectionClosed:
            # Open, then cut by the restart: what held connections see too.
            counts["cut"] += 1
            raise
        finally:
            await ws.close()

    async def attempts() -> None:
        while not stopped():
            counts["attempts"] += 1
            try:
                await attempt()
            except Exception as exc:  # every failure counts
                counts["failed"] += 1
                errors[f"{type(exc).__name__}: {exc}"] += 1
            await asyncio.sleep(0.05)

    async def wait_for_stop() -> None:
        while not stopped():
            await asyncio.sleep(0.2)

    loop_task = asyncio.create_task(attempts())
    held = await unix_connect(path, URI, open_timeout=OPEN_TIMEOUT)
    await echo_once(held, "held")
    held_task = asyncio.create_task(held.recv())
    stop_task = asyncio.create_task(wait_for_stop())
    await asyncio.wait({held_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    if held_task.done():
        closed_at = time.monotonic()
        try:
            held_task.result()
        except ConnectionClosed as exc:
            result["held_close_code"] = close_code(exc)
        while not stopped():
            try:
                await attempt()
                break
            except Exception:  # counted, then retried at once
                result["reconnect_failures"] += 1
                await asyncio.sleep(0.05)
        result["reconnect_seconds"] = round(time.monotonic() - closed_at, 3)
        await stop_task
    else:
        held_task.cancel()
        await held.close()
    await loop_task
    return result | {
        "attempts": counts["attempts"],
        "failed": counts["failed"],
        "refused": counts["refused"],
        "not_opened": counts["not_opened"],
        "cut": counts["cut"],
        "cut_in_handshake": counts["cut_in_handshake"],
        "errors": dict(errors),
    }


def main() -> int:
    """Run the sub-command named on the command line."""
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "get":
        print(json.dumps(get(path)))
    elif cmd == "echo":
        print(json.dumps(asyncio.run(echo(path, int(sys.argv[3]), int(sys.argv[4])))))
    elif cmd == "watch":
        print(json.dumps(asyncio.run(watch(path, sys.argv[3]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
