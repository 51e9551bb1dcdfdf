#!/usr/bin/env python3
"""Clients that push nginx to its per-client limits, from chosen source addresses.

Each command prints one JSON object on stdout. Connections go to CONNECT
(an IPv4 or IPv6 address of nginx) port 443 with TLS, SNI and Host
chat.example.test, from SOURCE (an address on this host), so that nginx sees
SOURCE as the client.

    probe.py ws-cap SOURCE CONNECT HOLD
        hold HOLD WebSockets open, try one more (expected: 429), close one,
        try again (expected: 101)
    probe.py ws-sequence SOURCE CONNECT COUNT
        open COUNT WebSockets one after the other, each closed after the
        backend's greeting; report which backend greeted
    probe.py ws-failover SOURCE CONNECT LOG SOCKET MOST
        open WebSockets one after the other (at most MOST) until nginx's error
        LOG gained a failed connect() to SOCKET; report each and that count
    probe.py ws-hold SOURCE CONNECT COUNT BATCH SECONDS
        open COUNT WebSockets, BATCH handshakes at a time, hold them all for
        SECONDS, then send a message on each and read its echo
    probe.py http-cap SOURCE OTHER CONNECT HOLD
        hold HOLD POSTs whose body never comes, then send one more request from
        SOURCE (expected: 429) and one from OTHER (expected: 200)
    probe.py slow-header CONNECT INTERVAL LIMIT
        send a request line, then one header line every INTERVAL seconds;
        report the seconds until nginx closed the connection (LIMIT: give up)
    probe.py silent CONNECT LIMIT
        open a TCP connection to port 443 and send nothing (no TLS hello);
        report the seconds until nginx closed it
    probe.py keys PORT COUNT
        ask a debug server on 127.0.0.1:PORT for the limit key of edge cases and
        COUNT random addresses (sent in X-Verify-Address, which that server makes
        $remote_addr) and compare each with its /64 computed by Python

Times are measured with a monotonic clock. Every wait is bounded.
"""

import asyncio
import base64
import http.client
import ipaddress
import json
import os
import random
import resource
import ssl
import sys
import time

HOST = "chat.example.test"
CAFILE = "/etc/ssl/verify/ca.pem"
PATH = "/ws/chat/lobby/"
TIMEOUT = 20


def context() -> ssl.SSLContext:
    """A TLS client context that trusts the scenario's CA."""
    return ssl.create_default_context(cafile=CAFILE)


async def connect(source: str | None, address: str) -> tuple:
    """Open a TLS connection to ADDRESS:443 from SOURCE (None: any), any source port."""
    return await asyncio.wait_for(
        asyncio.open_connection(
            address,
            443,
            ssl=context(),
            server_hostname=HOST,
            local_addr=(source, 0) if source else None,
        ),
        TIMEOUT,
    )


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status code and headers (lower-case names) of an HTTP/1.1 response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Opcode and payload of one unmasked frame from the server."""
    first = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    length = first[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first[0] & 0x0F, await asyncio.wait_for(reader.readexactly(length), TIMEOUT)


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame (client frames must be masked), payload under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


async def read_text(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """The next text message, answering the server's pings (its keepalive) on the way."""
    while True:
        opcode, payload = await read_frame(reader)
        if opcode == 0x9:
            writer.write(frame(0xA, payload))
        elif opcode == 0x1:
            return payload.decode()
        elif opcode == 0x8:
            raise ConnectionError(f"closed by the server: {payload[:2].hex()}")


async def websocket(source: str, address: str) -> dict:
    """One handshake: status, Retry-After, and for 101 the greeting's backend and the streams."""
    try:
        reader, writer = await connect(source, address)
    except (TimeoutError, OSError) as error:
        return {"status": None, "error": f"{type(error).__name__}: {error}"}
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: https://{HOST}\r\n\r\n"
        ).encode()
    )
    try:
        status, headers = await read_head(reader)
        result = {"status": status, "retry_after": headers.get("retry-after")}
        if status == 101:
            hello = json.loads(await read_text(reader, writer))
            result.update(backend=hello["backend"], reader=reader, writer=writer)
        else:
            writer.close()
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
        writer.close()
        return {"status": None, "error": f"{type(error).__name__}: {error}"}
    return result


def public(result: dict) -> dict:
    """A handshake result without its streams."""
    return {k: v for k, v in result.items() if k not in ("reader", "writer")}


def close(results: list[dict]) -> None:
    for result in results:
        if "writer" in result:
            result["writer"].transport.abort()


async def ws_cap(source: str, address: str, hold: int) -> dict:
    held = [await websocket(source, address) for _ in range(hold)]
    extra = await websocket(source, address)
    close(held[:1])
    await asyncio.sleep(0.5)
    again = await websocket(source, address)
    report = {
        "held": [public(r) for r in held],
        "extra": public(extra),
        "after_close": public(again),
    }
    close(held[1:] + [extra, again])
    return report


async def ws_sequence(source: str, address: str, count: int) -> dict:
    results = []
    for _ in range(count):
        result = await websocket(source, address)
        close([result])
        results.append(public(result))
    return {"results": results}


async def ws_failover(source: str, address: str, log: str, socket: str, most: int) -> dict:
    """Open WebSockets one at a time until nginx logged a failed connect to SOCKET."""
    with open(log, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        results = []
        failures = 0
        while not failures and len(results) < most:
            result = await websocket(source, address)
            close([result])
            results.append(public(result))
            await asyncio.sleep(0.2)
            failures = handle.read().decode("latin-1").count(f"{socket} failed")
    return {"results": results, "failed_connects": failures}


async def ws_hold(source: str, address: str, count: int, batch: int, seconds: float) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    start = time.monotonic()
    results: list[dict] = []
    while len(results) < count:
        size = min(batch, count - len(results))
        results += await asyncio.gather(*(websocket(source, address) for _ in range(size)))
    opened = time.monotonic() - start
    live = [r for r in results if r.get("status") == 101]
    await asyncio.sleep(seconds)

    async def echo(number: int, result: dict) -> bool:
        text = f"still here {number}"
        try:
            result["writer"].write(frame(0x1, text.encode()))
            return await read_text(result["reader"], result["writer"]) == text
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            return False

    echoes = []
    for first in range(0, len(live), batch):
        echoes += await asyncio.gather(
            *(echo(first + n, r) for n, r in enumerate(live[first : first + batch]))
        )
    failures: dict[str, int] = {}
    for result in results:
        if result.get("status") != 101:
            reason = str(result.get("status") or result.get("error", "?"))[:80]
            failures[reason] = failures.get(reason, 0) + 1
    backends: dict[str, int] = {}
    for result in live:
        backends[result["backend"]] = backends.get(result["backend"], 0) + 1
    report = {
        "asked": count,
        "upgraded": len(live),
        "echoed": sum(echoes),
        "failures": failures,
        "backends": backends,
        "open_seconds": round(opened, 1),
        "held_seconds": seconds,
        "nofile": hard,
    }
    close(results)
    return report


async def http_cap(source: str, other: str, address: str, hold: int) -> dict:
    held = []
    for _ in range(hold):
        reader, writer = await connect(source, address)
        writer.write(
            f"POST /upload/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1000\r\n\r\nx".encode()
        )
        await writer.drain()
        held.append(writer)
    await asyncio.sleep(0.5)

    async def get(client: str) -> dict:
        reader, writer = await connect(client, address)
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        status, headers = await read_head(reader)
        writer.close()
        return {"status": status, "retry_after": headers.get("retry-after")}

    report = {"extra": await get(source), "other": await get(other)}
    for writer in held:
        writer.transport.abort()
    await asyncio.sleep(0.5)
    report["after_close"] = await get(source)
    return report


async def until_closed(reader: asyncio.StreamReader, start: float, limit: float) -> dict:
    """Read until EOF or LIMIT seconds after START; what came back and when."""
    received = b""
    try:
        while time.monotonic() - start < limit:
            chunk = await asyncio.wait_for(reader.read(4096), limit - (time.monotonic() - start))
            if not chunk:
                return {
                    "closed_after": round(time.monotonic() - start, 1),
                    "received": received.decode("latin-1")[:200],
                }
            received += chunk
    except TimeoutError:
        pass
    except (OSError, ssl.SSLError) as error:
        return {"closed_after": round(time.monotonic() - start, 1), "error": type(error).__name__}
    return {"closed_after": None, "received": received.decode("latin-1")[:200]}


async def slow_header(address: str, interval: float, limit: float) -> dict:
    start = time.monotonic()
    reader, writer = await connect(None, address)
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
    lines = 0

    async def drip() -> None:
        nonlocal lines
        while True:
            await asyncio.sleep(interval)
            writer.write(f"X-Slow-{lines}: still sending\r\n".encode())
            lines += 1

    dripper = asyncio.ensure_future(drip())
    report = await until_closed(reader, start, limit)
    dripper.cancel()
    writer.transport.abort()
    report["header_lines_sent"] = lines
    return report


async def silent(address: str, limit: float) -> dict:
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(address, 443)
    report = await until_closed(reader, start, limit)
    writer.transport.abort()
    return report


def expected_key(address: str) -> str:
    """The limit key the site should give ADDRESS: IPv4 as is, IPv6 by its /64."""
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    groups = parsed.exploded.split(":")[:4]
    return ":".join(format(int(group, 16), "x") for group in groups) + "::/64"


def sample_addresses(count: int) -> list[str]:
    """Edge cases, then random IPv6 addresses rich in zero groups (every :: position)."""
    rng = random.Random(16)  # noqa: S311 (a repeatable sample, no secret)
    fixed = [
        "192.0.2.1",
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "::",
        "::1",
        "2001:db8::",
        "2001:db8::1",
        "2001:db8:0:1::",
        "2001:db8:1:2:3:4:5:6",
        "0:0:1::",
        "0:0:0:1::1",
        "1::2:3:4:5:6",
        "1:0:2:3:4:5:6:7",
        "::1:2:3:4:5:6:7",
        "fe80::1",
    ]
    words = [0, 0, 0, 1, 0xFFFF]
    addresses = []
    for _ in range(count):
        groups = [rng.choice(words + [rng.randrange(65536)]) for _ in range(8)]
        addresses.append(str(ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))))
    return fixed + addresses


def keys(port: int, count: int) -> dict:
    """Compare the debug server's key of each sample address with the expected one.

    Each address is sent in its longest form (every group written out, in
    upper case), so nginx's own formatting of $remote_addr is what is tested.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    mismatches = []
    examples = {}
    addresses = sample_addresses(count)
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        sent = parsed.exploded.upper() if parsed.version == 6 and "." not in address else address
        connection.request("GET", "/", headers={"X-Verify-Address": sent})
        response = connection.getresponse()
        key = response.read().decode().strip()
        if key != expected_key(address):
            mismatches.append({"address": address, "key": key, "expected": expected_key(address)})
        if len(examples) < 8:
            examples[address] = key
    return {"checked": len(addresses), "mismatches": mismatches[:10], "examples": examples}


def main(argv: list[str]) -> dict:
    command, args = argv[0], argv[1:]
    if command == "ws-cap":
        return asyncio.run(ws_cap(args[0], args[1], int(args[2])))
    if command == "ws-sequence":
        return asyncio.run(ws_sequence(args[0], args[1], int(args[2])))
    if command == "ws-failover":
        return asyncio.run(ws_failover(args[0], args[1], args[2], args[3], int(args[4])))
    if command == "ws-hold":
        return asyncio.run(ws_hold(args[0], args[1], int(args[2]), int(args[3]), float(args[4])))
    if command == "http-cap":
        return asyncio.run(http_cap(args[0], args[1], args[2], int(args[3])))
    if command == "slow-header":
        return asyncio.run(slow_header(args[0], float(args[1]), float(args[2])))
    if command == "silent":
        return asyncio.run(silent(args[0], float(args[1])))
    if command == "keys":
        return keys(int(args[0]), int(args[1]))
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
