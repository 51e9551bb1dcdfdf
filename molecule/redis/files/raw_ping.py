"""Send PING to a Redis address without credentials and print the first reply line.

Usage: raw_ping.py HOST PORT. A refused or unreachable connection ends with the
exception (ConnectionRefusedError, TimeoutError, ...) on stderr and status 1.
"""

import socket
import sys

with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as conn:
    conn.sendall(b"PING\r\n")
    print(conn.recv(200).decode(errors="replace").splitlines()[0])
