"""Throwaway PostgreSQL and Redis servers for the test session.

PostgreSQL: ``initdb`` into a temporary folder, then ``pg_ctl`` starts it
listening only on a unix socket inside that folder (no TCP port). PostgreSQL
refuses to run as root, so under root both run as the ``postgres`` system user
(or ``nobody``) through ``runuser``, and the folder is handed to that user.

Redis: ``redis-server`` on a free loopback port, persistence off, with a
password-protected ACL user limited to the commands the selected channels-redis
layer and the health check use; the default user is disabled.

Both come from Debian packages: ``postgresql`` and ``redis-server``.
"""

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Seconds to wait for a server to accept connections.
START_TIMEOUT = 30.0

# ACL rules of the app's per-user WebSocket limits (chat/limits.py), for either layer.
CHAT_LIMITS_ACL_RULES = (
    "~chat:* +eval +time +zremrangebyscore +zcard +zadd +zrem +pexpire +hmget +hset"
)

# ACL rules of the app's Redis user, per channel layer (see app/README.md).
# Both layers add Django's cache (the per-address counters): cache:* keys, read,
# created with an expiry, incremented.
_CACHE_ACL_RULES = "~cache:* +get +set +incrby +exists +del"
REDIS_ACL_RULES = {
    # RedisPubSubChannelLayer: publish/subscribe on channels named asgi*, no keys.
    "pubsub": (
        "resetchannels &asgi* resetkeys -@all +ping +publish +subscribe +unsubscribe "
        + _CACHE_ACL_RULES
    ),
    # RedisChannelLayer: sorted sets under asgi* keys, plus Lua for atomic steps.
    "core": (
        "resetchannels resetkeys ~asgi* -@all +ping +zadd +zcount +zrange +zrem "
        "+zremrangebyscore +zpopmin +bzpopmin +expire +eval +multi +exec +del " + _CACHE_ACL_RULES
    ),
}


class ServerError(RuntimeError):
    """A test server is missing or would not start."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_postgres_bin(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """Return the newest ``<root>/<version>/bin`` holding initdb and pg_ctl.

    Args:
        root: where Debian installs PostgreSQL server versions.

    Raises:
        ServerError: no PostgreSQL server binaries; the message names the package.
    """
    candidates = [
        path
        for path in root.glob("*/bin")
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    if not candidates:
        raise ServerError(
            f"PostgreSQL server binaries not found under {root}/*/bin: "
            "install the Debian package 'postgresql' (apt-get install postgresql)."
        )
    return max(candidates, key=version)


def find_redis_server(search_path: str | None = None) -> str:
    """Return the path of redis-server.

    Args:
        search_path: folders to search, as in ``PATH``; None: ``PATH`` plus /usr/bin.

    Raises:
        ServerError: not installed; the message names the package.
    """
    if search_path is None:
        search_path = f"{os.environ.get('PATH', '')}{os.pathsep}/usr/bin"
    path = shutil.which("redis-server", path=search_path)
    if path is None:
        raise ServerError(
            "redis-server not found: install the Debian package 'redis-server' "
            "(apt-get install redis-server)."
        )
    return path


def _unprivileged_user() -> pwd.struct_passwd:
    """Return the system user PostgreSQL runs as when the tests run as root."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServerError("Running as root, but there is no 'postgres' or 'nobody' user to run as.")


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, reachable on a unix socket there."""

    superuser = "postgres"
    port = 5432  # Only names the socket file; nothing listens on TCP.

    def __init__(self) -> None:
        self.bin = find_postgres_bin()
        self.base = Path(tempfile.mkdtemp(prefix="chat-test-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            runner = shutil.which("runuser")
            if runner is None:
                raise ServerError("Running as root needs 'runuser' (Debian package util-linux).")
            user = _unprivileged_user()
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self._prefix = [runner, "-u", user.pw_name, "--"]

    @property
    def socket_dir(self) -> str:
        """Folder of the server's unix socket: the HOST of Django's DATABASES."""
        return str(self.base)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self._prefix, *args]
        result = subprocess.run(command, cwd=self.base, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise ServerError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{log}"
            )
        return result

    def start(self) -> None:
        """Create the cluster and start the server; return when it accepts connections.

        Raises:
            ServerError: initdb or pg_ctl failed; the message holds their output.
        """
        self._run(
            str(self.bin / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            self.superuser,
            "--auth",
            "trust",  # Only reachable through the socket in our private folder.
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses='' -k {self.socket_dir} -p {self.port} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "--pgdata",
            str(self.data),
            "--log",
            str(self.log),
            "--options",
            options,
            "--wait",
            "--timeout",
            str(int(START_TIMEOUT)),
            "start",
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(
                    str(self.bin / "pg_ctl"),
                    "--pgdata",
                    str(self.data),
                    "-m",
                    "fast",
                    "--wait",
                    "stop",
                )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class RedisServer:
    """A redis-server on a free loopback port, without persistence, stoppable and restartable."""

    username = "chat"

    def __init__(self, layer: str) -> None:
        """Prepare (not start) a server.

        Args:
            layer: ``pubsub`` or ``core``: which channel layer's commands the app user may run.
        """
        self.executable = find_redis_server()
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.base = Path(tempfile.mkdtemp(prefix="chat-test-redis-"))
        self.config = self.base / "redis.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            'save ""\n'
            "appendonly no\n"
            f"dir {self.base}\n"
            f"logfile {self.base / 'redis.log'}\n"
            "user default off\n"
            f"user {self.username} on >{self.password} {REDIS_ACL_RULES[layer]} "
            f"{CHAT_LIMITS_ACL_RULES}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` URL with the app user's credentials."""
        return f"redis://{self.username}:{self.password}@127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                # Unauthenticated PING gets -NOAUTH: any reply means it is up.
                return bool(conn.recv(64))
        except OSError:
            return False

    def start(self) -> None:
        """Start the server; return when it answers.

        Raises:
            ServerError: it exited or did not answer within START_TIMEOUT seconds.
        """
        self.process = subprocess.Popen(
            [self.executable, str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.05)
        log = self.base / "redis.log"
        raise ServerError(
            "redis-server did not start:\n"
            + (log.read_text(errors="replace") if log.exists() else "(no log)")
        )

    def stop(self) -> None:
        """Stop the server and wait until its port is closed."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        """Stop the server and delete its folder."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
