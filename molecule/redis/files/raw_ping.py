"""Send PING to a Redis address without credentials and print the first reply line.

Usage: raw_ping.py HOST PORT [CAFILE]. With CAFILE the connection is TLS, and the
server's certificate must be signed by CAFILE's CA and name HOST. A refused or
unreachable connection, or a failed TLS handshake, ends with the exception
(ConnectionRefusedError, ssl.SSLError, ...) on stderr and status 1. A server that
closes the connection without a reply (a TLS port spoken to in plain TCP) prints
"<closed without a reply>".
"""

import socket
import ssl
import sys

host, port = sys.argv[1], int(sys.argv[2])
with socket.create_connection((host, port), timeout=3) as raw:
    conn = raw
    if len(sys.argv) > 3:
        conn = ssl.create_default_context(cafile=sys.argv[3]).wrap_socket(raw, server_hostname=host)
    conn.sendall(b"PING\r\n")
    try:
        reply = conn.recv(200)
    except (ConnectionResetError, TimeoutError):
        reply = b""
    lines = reply.decode(errors="replace").splitlines()
    print(lines[0] if lines and reply.startswith((b"+", b"-")) else "<closed without a reply>")
