"""Tiny ASGI app for the app_server scenario (daphne).

HTTP: every request answers 200 with JSON describing what the instance's
sandbox lets the app see and do, and the client address daphne reports.
WebSocket: accepts any connection and echoes every message back.
"""

import json

from sandbox_probe import sandbox_report


async def _http(scope, receive, send) -> None:
    body = sandbox_report() | {"client": (scope.get("client") or [None])[0]}
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _websocket(scope, receive, send) -> None:
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif event["type"] == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
        elif event["type"] == "websocket.disconnect":
            return


async def application(scope, receive, send) -> None:
    """ASGI entry point."""
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
