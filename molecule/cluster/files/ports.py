"""Try TCP connections from the host this runs on; print how each one ended (stdlib only).

    ports.py [--timeout S] LABEL=HOST:PORT ...

Prints one JSON object, LABEL -> "open" (connected), "refused" (RST: nothing listens or a
firewall rejects), "filtered" (no answer within the timeout: a firewall drops) or
"error: ..." (anything else, e.g. no route). Always exits 0: the verifier asserts.
"""

import argparse
import json
import socket
from concurrent.futures import ThreadPoolExecutor


def probe(host: str, port: int, timeout: float) -> str:
    """Connect to ``host``:``port`` and close at once; say how it went."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "filtered"
    except OSError as exc:
        return f"error: {type(exc).__name__}: {exc}"


def main() -> None:
    """Probe every LABEL=HOST:PORT of the command line, all at once."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per connection")
    parser.add_argument("targets", nargs="+", metavar="LABEL=HOST:PORT")
    args = parser.parse_args()
    jobs = {}
    with ThreadPoolExecutor(max_workers=len(args.targets)) as pool:
        for target in args.targets:
            label, _, address = target.partition("=")
            host, _, port = address.rpartition(":")
            jobs[label] = pool.submit(probe, host.strip("[]"), int(port), args.timeout)
    print(json.dumps({label: job.result() for label, job in jobs.items()}))


if __name__ == "__main__":
    main()
