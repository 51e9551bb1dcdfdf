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
    client.py capacity TOTAL SOCKETS PIDS
        The capacity test: opens TOTAL WebSockets over the comma-separated
        SOCKETS in turn (as nginx's round robin would), each answering one
        echo, and holds them; then pushes the first socket's instance (PIDS:
        the instances' main PIDs, in the order of SOCKETS) past its open-file
        limit, checks that the connections above it are refused while every
        held one still echoes, releases some and opens new ones again. Prints
        one JSON object (see capacity()); at most CAPACITY_SECONDS.
"""

import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter

# http_client.py is installed beside this file (one folder of test clients).
from http_client import UnixHTTPConnection
from websockets.asyncio.client import unix_connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

URI = "ws://testapp.example/ws/echo/"
OPEN_TIMEOUT = 30
# The capacity test: handshakes in flight at once, seconds one connection may
# take to open and echo, seconds the whole test may take, and how many
# connections past the open-file limit it tries. 200 handshakes in flight is
# above twisted's own listen backlog of 50, which the daphne role's launcher
# replaces with the unit's Backlog= (with 50, 100 in flight already made up
# to 550 of 5,000 fail).
CAPACITY_CONCURRENCY = 200
CAPACITY_CONNECT_TIMEOUT = 20
CAPACITY_SECONDS = 240
CAPACITY_PAST_LIMIT = 100


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


def proc_status(pid: int) -> dict:
    """Resident memory (MiB) and soft open-file limit of process `pid`, from /proc.

    Raises:
        FileNotFoundError: no process `pid` (it died).
    """
    with open(f"/proc/{pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/limits") as limits:
        nofile = next(int(line.split()[3]) for line in limits if line.startswith("Max open files"))
    return {"rss_mib": round(rss_kib / 1024, 1), "nofile": nofile}


def failure_kind(exc: BaseException) -> str:
    """Name how a connection failed: closed, reset, timeout, or the exception's class."""
    if isinstance(exc, InvalidMessage) or isinstance(exc, ConnectionClosed):
        # The server accepted and closed the connection before or while
        # answering the handshake (twisted's way to refuse at EMFILE).
        return "closed"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


async def open_many(paths: list[str], count: int) -> tuple[list, Counter, float, float]:
    """Open `count` WebSockets over `paths` in turn, each answering one echo.

    Returns:
        the open connections (client objects), failures by kind
        (failure_kind), the seconds it took, and the slowest failure's seconds.
    """
    gate = asyncio.Semaphore(CAPACITY_CONCURRENCY)
    opened, failures, slowest_failure = [], Counter(), [0.0]

    async def one(n: int) -> None:
        async with gate:
            start = time.monotonic()
            ws = None
            try:
                async with asyncio.timeout(CAPACITY_CONNECT_TIMEOUT):
                    ws = await unix_connect(
                        paths[n % len(paths)], URI, ping_interval=None, compression=None
                    )
                    if not await echo_once(ws, f"c{n}"):
                        raise RuntimeError("wrong echo")
                opened.append(ws)
            except Exception as exc:  # every failure counts
                failures[failure_kind(exc)] += 1
                slowest_failure[0] = max(slowest_failure[0], time.monotonic() - start)
                if ws is not None:
                    await ws.close()

    start = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(count)))
    return opened, failures, round(time.monotonic() - start, 1), round(slowest_failure[0], 2)


async def echo_all(conns: list) -> int:
    """Send one message over each connection; return how many echoed it."""
    gate = asyncio.Semaphore(CAPACITY_CONCURRENCY * 5)

    async def one(ws) -> bool:
        async with gate:
            try:
                async with asyncio.timeout(CAPACITY_CONNECT_TIMEOUT):
                    return await echo_once(ws, "still there?")
            except Exception:  # a dead connection counts as not echoed
                return False

    return sum(await asyncio.gather(*(one(ws) for ws in conns)))


async def capacity(total: int, paths: list[str], pids: list[int]) -> dict:
    """Hold `total` WebSockets over `paths`, then push paths[0]'s instance past its limit.

    Args:
        total: connections to open and hold, spread over `paths` in turn.
        paths: unix sockets of the instances.
        pids: main PIDs of the instances, in the order of `paths`.

    Returns:
        held (opened of `total`), held_failures, held_seconds, held_rss_mib
        (per instance), nofile (per instance); then, on the first instance:
        past_attempts (its limit minus what it holds, plus
        CAPACITY_PAST_LIMIT), past_opened, past_failures, slowest_refusal_seconds,
        first_instance_connections (all it held at its limit),
        first_instance_rss_mib; echoed_after (held connections that still
        echo, after 2 x CAPACITY_PAST_LIMIT of the first instance's are
        closed) of held_total; recovered (new connections then opened on the
        first instance) of recover_attempts; seconds.
    """
    start = time.monotonic()
    # The client holds every connection: its own limit up to the hard one.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result: dict = {"client_nofile": hard}
    held, failures, result["held_seconds"], _ = await open_many(paths, total)
    result |= {"held": len(held), "held_failures": dict(failures)}
    status = [proc_status(pid) for pid in pids]
    result["held_rss_mib"] = [s["rss_mib"] for s in status]
    result["nofile"] = [s["nofile"] for s in status]

    # The first instance holds every len(paths)-th connection; past its limit.
    on_first = len(range(0, total, len(paths)))
    attempts = status[0]["nofile"] - on_first + CAPACITY_PAST_LIMIT
    extra, failures, seconds, slowest = await open_many(paths[:1], attempts)
    result |= {
        "past_attempts": attempts,
        "past_opened": len(extra),
        "past_failures": dict(failures),
        "past_seconds": seconds,
        "slowest_refusal_seconds": slowest,
        "first_instance_connections": on_first + len(extra),
        "first_instance_rss_mib": proc_status(pids[0])["rss_mib"],
    }
    # Release some of the first instance's connections: new ones open again.
    release = CAPACITY_PAST_LIMIT * 2
    await asyncio.gather(*(ws.close() for ws in extra[:release]))
    held += extra[release:]
    result |= {"held_total": len(held), "echoed_after": await echo_all(held)}
    recovered, failures, _, _ = await open_many(paths[:1], release // 2)
    result |= {
        "recover_attempts": release // 2,
        "recovered": len(recovered),
        "recover_failures": dict(failures),
    }
    await asyncio.gather(*(ws.close() for ws in held + recovered))
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def main() -> int:
    """Run the sub-command named on the command line."""
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "capacity":
        total, paths, pids = int(path), sys.argv[3].split(","), sys.argv[4].split(",")
        run = asyncio.wait_for(capacity(total, paths, [int(pid) for pid in pids]), CAPACITY_SECONDS)
        print(json.dumps(asyncio.run(run)))
    elif cmd == "get":
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
