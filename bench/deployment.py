"""The local deployment under test (``inventory/local``): its container, names and paths, and
how to run commands in it, as its app user, or in its network namespace."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import ROOT, WORK, BenchError, run

INVENTORY = ROOT / "inventory" / "local"


class Testbed:
    """The local deployment: its container, names and paths, read from inventory/local.

    Args:
        host: inventory host name of the all-in-one target (also its container name).

    Raises:
        BenchError: ``ansible-inventory`` does not know the host.
    """

    def __init__(self, host: str) -> None:
        raw = run(["ansible-inventory", "-i", str(INVENTORY), "--host", host]).stdout
        hostvars = json.loads(raw)
        self.host = host
        self.app = hostvars["site_app_name"]
        self.server_name = hostvars["site_server_names"][0]
        self.pebble = hostvars["testbed_pebble_name"]
        # The WebSocket tier's ASGI server the inventory asks for, else site.yml's default
        # (playbooks/group_vars/all/wiring.yml, daphne_server).
        self.websocket_server = hostvars.get("site_websocket_server", "uvicorn")
        self.root = f"/srv/{self.app}"
        self.env_file = f"/etc/{self.app}/env"
        self.cafile = INVENTORY / ".secrets" / "acme-root.pem"

    def pid(self) -> int:
        """PID of the container's init on this machine (for nsenter).

        Raises:
            BenchError: the container is not running.
        """
        out = run(["podman", "inspect", "--format", "{{.State.Pid}}", self.host]).stdout
        pid = int(out.strip() or 0)
        if pid <= 0 or not Path(f"/proc/{pid}").exists():
            raise BenchError(f"container {self.host} is not running: run `make site` first")
        return pid

    def exec(self, *cmd: str, stdin: str | None = None) -> str:
        """Run a command in the container as root; return its stdout.

        Args:
            *cmd: the program and its arguments.
            stdin: text fed to the command's standard input (none when None).

        Raises:
            BenchError: the command failed.
        """
        return run(["podman", "exec", "-i", self.host, *cmd], input=stdin).stdout

    def as_app(self, *cmd: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
        """Run a command as the app user with the services' environment file; return stdout.

        Args:
            *cmd: the program and its arguments; it runs in the live release's directory.
            env: variables set on top of the environment file.
            stdin: text fed to the command's standard input.

        Raises:
            BenchError: the command failed.
        """
        setenv = [f"--setenv={k}={v}" for k, v in (env or {}).items()]
        return self.exec(
            "systemd-run",
            "--quiet",
            "--pipe",
            "--wait",
            "--collect",
            f"--property=EnvironmentFile={self.env_file}",
            f"--uid={self.app}",
            f"--working-directory={self.root}/current",
            *setenv,
            *cmd,
            stdin=stdin,
        )

    def app_script(self, name: str, env: dict[str, str]) -> Any:
        """Run ``bench/<name>`` in the app's environment (``manage.py shell -c``) with ``env``
        set; return the JSON of its last line of output.

        Raises:
            BenchError: the script failed.
        """
        out = self.as_app(
            f"{self.root}/current/venv/bin/python",
            "manage.py",
            "shell",
            "-c",
            (ROOT / "bench" / name).read_text(),
            env=env,
        )
        return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def in_target_network(testbed: Testbed) -> Iterator[list[str]]:
    """Yield a command prefix that runs a program in the target's network namespace.

    The program sees a private copy of /etc/hosts where the site's name is 127.0.0.1 (a
    mount namespace of its own, so this machine's /etc/hosts is not touched).

    Raises:
        BenchError: the container is not running.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    hosts = WORK / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {testbed.server_name}\n::1 localhost\n")
    script = 'mount --bind "$0" /etc/hosts && exec nsenter --target "$1" --net -- "${@:2}"'
    yield [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "bash",
        "-c",
        script,
        str(hosts),
        str(testbed.pid()),
    ]
