"""Open SSH connections to a host in a burst, as a password guesser would.

Usage: python3 ssh_burst.py HOST PORT COUNT [TIMEOUT_SECONDS]

First one connection is opened and kept (it reads the server's banner), then
COUNT new connections are opened one after the other, each waiting up to
TIMEOUT_SECONDS (default 3) for the server's banner; last the kept connection
sends its own identification and must get the server's key exchange offer,
proof that it still works. Prints one JSON object:
{"kept_banner": bool, "answered": [bool, ...], "kept_alive": bool}.
"""

import json
import socket
import sys


def banner(sock: socket.socket) -> bool:
    """Return whether the server sent an SSH identification line (b"SSH-...")."""
    try:
        return sock.recv(256).startswith(b"SSH-")
    except OSError:
        return False


def main() -> None:
    """Run the burst described in the module's docstring and print the result."""
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    kept = socket.create_connection((host, port), timeout=timeout)
    kept_banner = banner(kept)
    answered = []
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                answered.append(banner(sock))
        except OSError:
            answered.append(False)
    kept_alive = False
    try:
        kept.sendall(b"SSH-2.0-burst-probe\r\n")
        # The server's SSH_MSG_KEXINIT (packet type 20) follows at once.
        data = kept.recv(4096)
        kept_alive = len(data) > 5 and data[5] == 20
    except OSError:
        pass
    kept.close()
    print(json.dumps({"kept_banner": kept_banner, "answered": answered, "kept_alive": kept_alive}))


if __name__ == "__main__":
    main()
