"""Serve the metrics of every app server process of this host to Prometheus.

Run as ``python -m chat.metrics_server --listen ADDRESS:PORT --root DIR``: the
app server units keep their prometheus-client files in folders under ``DIR``
(one per unit, see chat/metrics.py); each scrape merges the files of all of
them. The process needs neither Django nor the database: only read access to
``DIR``. Bind it to a private address that only the monitoring hosts may reach.
"""

import argparse
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector


class FoldersCollector:
    """Merge the multiprocess files of every folder directly under ``root``.

    prometheus-client's own ``MultiProcessCollector`` reads one folder; the app
    servers of a host have one each, so that a unit's start empties only its own.

    Args:
        root: the folder that holds one folder of ``*.db`` files per app server.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[str]:
        """Return the metric files of every app server folder, sorted."""
        return sorted(str(path) for path in self.root.glob("*/*.db"))

    def collect(self) -> Iterator[Metric]:
        """Yield the merged metrics (live gauges of processes that exited are gone with them)."""
        return iter(MultiProcessCollector.merge(self.files(), accumulate=True))


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``ADDRESS:PORT`` (``[v6]:PORT`` for IPv6) into address and port.

    Raises:
        argparse.ArgumentTypeError: no port, or a port outside 1..65535.
    """
    address, _, port = value.rpartition(":")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PORT, got {value!r}")
    return address.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    """Serve the merged metrics until SIGTERM; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=parse_listen, required=True, help="ADDRESS:PORT")
    parser.add_argument("--root", type=Path, required=True, help="folder of the units' folders")
    args = parser.parse_args(argv)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FoldersCollector(args.root))
    address, port = args.listen
    start_http_server(port, addr=address, registry=registry)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
