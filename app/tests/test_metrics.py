"""The app's Prometheus metrics: WebSockets, messages, HTTP by view, and the per-host exporter."""

import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from chat import metrics
from chat.metrics_server import FoldersCollector
from tests.helpers import TIMEOUT, join

APP_DIR = Path(__file__).resolve().parent.parent


def value(name: str, **labels: str) -> float:
    """The current value of one sample of the default registry (0 when it does not exist)."""
    found = REGISTRY.get_sample_value(name, {"app_server": metrics.APP_SERVER, **labels})
    return found or 0.0


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websocket_and_room_gauges_follow_connections(alice_cookie, bob_cookie):
    sockets = value("chat_websocket_connections")
    rooms = value("chat_rooms_with_members")
    first = await join("metrics-a", alice_cookie)
    second = await join("metrics-a", bob_cookie)
    third = await join("metrics-b", bob_cookie)
    assert value("chat_websocket_connections") == sockets + 3
    assert value("chat_rooms_with_members") == rooms + 2
    await third.disconnect()
    assert value("chat_rooms_with_members") == rooms + 1
    await first.disconnect()
    await second.disconnect()
    assert value("chat_websocket_connections") == sockets
    assert value("chat_rooms_with_members") == rooms


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_message_counted_as_stored_and_broadcast(alice_cookie):
    stored = value("chat_messages_stored_total")
    broadcast = value("chat_messages_broadcast_total")
    failures = value("chat_broadcast_failures_total")
    client = await join("metrics-c", alice_cookie)
    await client.send_json_to({"type": "chat.message", "text": "counted"})
    frame = await client.receive_json_from(timeout=TIMEOUT)
    await client.disconnect()
    assert frame["text"] == "counted"
    assert value("chat_messages_stored_total") == stored + 1
    assert value("chat_messages_broadcast_total") == broadcast + 1
    assert value("chat_broadcast_failures_total") == failures


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_broadcast_failure_counted_while_redis_is_down(alice_cookie, redis_server):
    client = await join("metrics-d", alice_cookie)
    stored = value("chat_messages_stored_total")
    failures = value("chat_broadcast_failures_total")
    redis_server.stop()
    try:
        await client.send_json_to({"type": "chat.message", "text": "not broadcast"})
        # Stored, so the sender gets its own copy even though the layer refused it.
        frame = await client.receive_json_from(timeout=TIMEOUT * 3)
    finally:
        redis_server.start()
    await client.disconnect()
    assert frame["text"] == "not broadcast"
    assert value("chat_messages_stored_total") == stored + 1
    assert value("chat_broadcast_failures_total") == failures + 1


@pytest.mark.django_db
def test_http_latency_and_status_class_by_view_name(client):
    count = value("chat_http_request_duration_seconds_count", view="healthz", method="GET")
    ok = value("chat_http_responses_total", view="healthz", code_class="2xx")
    missing = value("chat_http_responses_total", view=metrics.UNMATCHED_VIEW, code_class="4xx")
    assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page/").status_code == 404
    assert (
        value("chat_http_request_duration_seconds_count", view="healthz", method="GET") == count + 1
    )
    assert value("chat_http_responses_total", view="healthz", code_class="2xx") == ok + 1
    assert (
        value("chat_http_responses_total", view=metrics.UNMATCHED_VIEW, code_class="4xx")
        == missing + 1
    )


def test_a_views_first_response_creates_every_status_class_at_zero(client):
    """A 5xx burst between two scrapes must show as an increase from 0 (HttpErrorRatio)."""
    labels = {"app_server": metrics.APP_SERVER, "view": "chat:index", "code_class": "5xx"}
    metrics._views_counted.discard("chat:index")
    client.get("/")
    assert REGISTRY.get_sample_value("chat_http_responses_total", labels) is not None


# A process of one app server unit: counts what the arguments say, then exits
# (its live gauge with it) or stays (argv[3] == "stay") until stdin closes.
_WRITER = textwrap.dedent(
    """
    import sys
    from chat import metrics
    for _ in range(int(sys.argv[1])):
        metrics.message_stored()
    for _ in range(int(sys.argv[2])):
        metrics.websocket_joined("room")
    print("ready", flush=True)
    if sys.argv[3] == "stay":
        sys.stdin.read()
    """
)


def write_as_unit(root: Path, unit: str, stored: int, sockets: int, stay: bool):
    """Run one process with the multiprocess folder ``root/unit``; return it if it stays."""
    folder = root / unit
    folder.mkdir(exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    args = [sys.executable, "-c", _WRITER, str(stored), str(sockets), "stay" if stay else "exit"]
    process = subprocess.Popen(
        args, cwd=APP_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "ready"
    if stay:
        return process
    process.wait(timeout=10)
    return None


def samples(collector: FoldersCollector) -> dict[tuple[str, str], float]:
    """(sample name, app_server) -> value of everything the collector yields."""
    return {
        (sample.name, sample.labels.get("app_server", "")): sample.value
        for metric in collector.collect()
        for sample in metric.samples
    }


def test_exporter_sums_processes_per_unit_folder(tmp_path):
    """Two gunicorn workers sum up; each daphne instance keeps its own gauge."""
    daphne = write_as_unit(tmp_path, "chat-daphne-1", stored=1, sockets=2, stay=True)
    try:
        write_as_unit(tmp_path, "chat-gunicorn", stored=3, sockets=0, stay=False)
        write_as_unit(tmp_path, "chat-gunicorn", stored=4, sockets=0, stay=False)
        write_as_unit(tmp_path, "chat-daphne-2", stored=0, sockets=5, stay=False)
        seen = samples(FoldersCollector(tmp_path))
    finally:
        daphne.stdin.close()
        daphne.wait(timeout=10)
    assert seen[("chat_messages_stored_total", "chat-gunicorn")] == 7
    assert seen[("chat_messages_stored_total", "chat-daphne-1")] == 1
    assert seen[("chat_websocket_connections", "chat-daphne-1")] == 2
    # livesum: the files of a process that exited still hold its last value, so a
    # unit's folder is emptied at each start (systemd's RuntimeDirectory=).
    assert seen[("chat_websocket_connections", "chat-daphne-2")] == 5


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_server_serves_every_unit_on_its_address(tmp_path):
    write_as_unit(tmp_path, "chat-gunicorn", stored=2, sockets=0, stay=False)
    port = free_port()
    listen = f"127.0.0.1:{port}"
    command = ["-m", "chat.metrics_server", "--listen", listen, "--root", str(tmp_path)]
    server = subprocess.Popen(
        [sys.executable, *command],
        cwd=APP_DIR,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert 'chat_messages_stored_total{app_server="chat-gunicorn"} 2.0' in body
