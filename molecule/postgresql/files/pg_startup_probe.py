"""Open a PostgreSQL connection up to the server's first answer, with the standard library only.

Used by verify.yml on hosts without a PostgreSQL driver (the probe container):
the answer tells apart "pg_hba.conf refused this client" (an error message from
the server, which proves it was reachable) from "go on and authenticate"
(an authentication request), without needing a password.

Usage: pg_startup_probe.py HOST PORT USER DATABASE [--no-ssl]

Prints one JSON object: {"ssl": bool, "answer": "authentication" | "error" |
"ssl-refused", "detail": str}. Exits non-zero only when no answer came.
"""

import json
import socket
import ssl
import struct
import sys

SSL_REQUEST_CODE = 80877103
PROTOCOL_VERSION_3 = 196608
TIMEOUT_SECONDS = 5


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly `size` bytes from `sock`; raise ConnectionError when the server hangs up."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return data


def parse_error(body: bytes) -> str:
    """Return "SQLSTATE: message" from the fields of an ErrorResponse body."""
    fields = {}
    for field in body.split(b"\0"):
        if field:
            fields[field[:1]] = field[1:].decode("utf-8", "replace")
    return f"{fields.get(b'C', '?')}: {fields.get(b'M', '')}"


def probe(host: str, port: int, user: str, database: str, use_ssl: bool) -> dict:
    """Send a startup message (after an SSL request when `use_ssl`); describe the first answer."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT_SECONDS)
    try:
        if use_ssl:
            sock.sendall(struct.pack("!ii", 8, SSL_REQUEST_CODE))
            if recv_exact(sock, 1) != b"S":
                return {"ssl": False, "answer": "ssl-refused", "detail": "no TLS offered"}
            context = ssl.create_default_context()
            # The test bed's server has Debian's self-signed snakeoil certificate.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), PROTOCOL_VERSION_3) + params)
        kind = recv_exact(sock, 1)
        (length,) = struct.unpack("!i", recv_exact(sock, 4))
        body = recv_exact(sock, length - 4)
    finally:
        sock.close()
    if kind == b"R":
        (auth_type,) = struct.unpack("!i", body[:4])
        detail = f"authentication request type {auth_type}"
        return {"ssl": use_ssl, "answer": "authentication", "detail": detail}
    if kind == b"E":
        return {"ssl": use_ssl, "answer": "error", "detail": parse_error(body)}
    return {"ssl": use_ssl, "answer": "unexpected", "detail": f"message type {kind!r}"}


def main(argv: list[str]) -> int:
    """Run the probe for the command line `argv`; return the exit status."""
    args = [a for a in argv if a != "--no-ssl"]
    if len(args) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, user, database = args
    try:
        result = probe(host, int(port), user, database, use_ssl="--no-ssl" not in argv)
    except OSError as error:
        print(json.dumps({"ssl": False, "answer": "no-answer", "detail": str(error)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
