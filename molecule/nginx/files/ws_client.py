#!/usr/bin/env python3
"""Open WebSockets through nginx and report what came back, as JSON on stdout.

    ws_client.py URL CAFILE COUNT

Each of COUNT connections reads the backend's greeting, sends a message and
reads the echo. A refused handshake is reported with its HTTP status, and the
remaining connections are still tried.
"""

import asyncio
import json
import ssl
import sys

import websockets


def status_of(error: Exception) -> int | None:
    """HTTP status of a refused handshake (websockets 10 and 14+)."""
    response = getattr(error, "response", None)
    if response is not None:
        return response.status_code
    return getattr(error, "status_code", None)


async def one(url: str, context: ssl.SSLContext, number: int) -> dict:
    text = f"hello through nginx #{number}"
    try:
        async with websockets.connect(url, ssl=context, open_timeout=10) as websocket:
            hello = json.loads(await asyncio.wait_for(websocket.recv(), 10))
            await websocket.send(text)
            echo = await asyncio.wait_for(websocket.recv(), 10)
    except Exception as error:  # reported, not hidden
        return {
            "ok": False,
            "status": status_of(error),
            "error": f"{type(error).__name__}: {error}",
        }
    return {
        "ok": echo == text,
        "backend": hello["backend"],
        "headers": hello["headers"],
        "echo": echo,
    }


async def main(url: str, cafile: str, count: int) -> None:
    context = ssl.create_default_context(cafile=cafile)
    results = [await one(url, context, n) for n in range(count)]
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
