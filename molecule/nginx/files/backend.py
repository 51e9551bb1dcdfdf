#!/usr/bin/env python3
"""Stand-ins for gunicorn and daphne behind nginx, listening on unix sockets.

    backend.py http SOCKET             answer every request with a JSON of what arrived
    backend.py websocket SOCKET NAME   greet each WebSocket with NAME and what arrived,
                                       then echo every message

The socket is made group www-data, mode 0660, as gunicorn's and daphne's are.
The HTTP stand-in also sends headers of its own that nginx must replace
(Strict-Transport-Security, X-Frame-Options).
"""

import asyncio
import grp
import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler


def prepare_socket(path: str) -> None:
    """Create the socket's folder and remove a stale socket file."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)


def open_socket_to_nginx(path: str) -> None:
    """Give nginx's group access to the socket, and nobody else."""
    os.chown(path, -1, grp.getgrnam("www-data").gr_gid)
    os.chmod(path, 0o660)


class EchoHandler(BaseHTTPRequestHandler):
    """Answer with the method, path and headers the request had."""

    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:
        return "nginx"

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "backend": "wsgi",
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Strict-Transport-Security", "max-age=1")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = answer


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve_http(path: str) -> None:
    prepare_socket(path)
    with UnixHTTPServer(path, EchoHandler) as server:
        open_socket_to_nginx(path)
        server.serve_forever()


def request_of(websocket: object) -> tuple[str, dict[str, str]]:
    """Path and headers of the handshake, for websockets 10 (legacy) and 14+."""
    request = getattr(websocket, "request", None)
    if request is not None:
        return request.path, dict(request.headers.raw_items())
    return websocket.path, dict(websocket.request_headers.raw_items())


async def serve_websocket(path: str, name: str) -> None:
    import websockets

    async def echo(websocket: object) -> None:
        request_path, headers = request_of(websocket)
        hello = {
            "backend": name,
            "path": request_path,
            "headers": {k.lower(): v for k, v in headers.items()},
        }
        await websocket.send(json.dumps(hello))
        async for message in websocket:
            await websocket.send(message)

    prepare_socket(path)
    # As daphne's systemd socket (Backlog=): a burst of handshakes must not
    # overflow asyncio's default of 100, which nginx sees as failed connects.
    # No keepalive pings: verify's clients that hold thousands of sockets do
    # not read until they are all open (nginx's proxy_read_timeout applies).
    async with websockets.unix_serve(echo, path, backlog=4096, ping_interval=None):
        open_socket_to_nginx(path)
        await asyncio.Future()


if __name__ == "__main__":
    if sys.argv[1] == "http":
        serve_http(sys.argv[2])
    else:
        asyncio.run(serve_websocket(sys.argv[2], sys.argv[3]))
