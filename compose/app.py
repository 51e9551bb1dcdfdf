#!/srv/chat/venv/bin/python
"""Entry point of the compose demo's app image (compose.yaml): one command per service.

Usage (the container starts as root; every command but ``secrets`` drops to the ``chat``
user before it runs any of the app's code)::

    cd-compose-app secrets           # one-shot: make the demo's secrets and TLS files once
    cd-compose-app migrate           # one-shot: wait for PostgreSQL, check --deploy, migrate
    cd-compose-app gunicorn          # WSGI on /run/chat/gunicorn.sock, once migrated
    cd-compose-app daphne            # ASGI on /run/chat/daphne.sock, once migrated
    cd-compose-app healthcheck SOCKET  # exit 0 when /healthz over SOCKET answers 200
    cd-compose-app manage ARGS...    # manage.py with the secrets, e.g. createsuperuser

Secrets live in the ``secrets`` volume (``/secrets``), made at the first start with
:mod:`secrets` and the ``cryptography`` package of the app's lock: Django's key, the
passwords of PostgreSQL's and Redis's app users, and a private CA with a certificate for
``localhost`` that nginx serves. They reach Django as environment variables of the server
process (``SECRET_KEY``, ``DATABASE_URL``, ``REDIS_URL``), never through a command line.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import os
import pwd
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

SECRETS = Path("/secrets")
# Written last by `secrets`: the other services wait for it.
READY = SECRETS / "ready"
SOCKETS = Path("/run/chat")
MANAGE = ["python", "manage.py"]
APP_USER = "chat"
# Days a server certificate is valid (Apple's clients accept at most 825), and how long
# before its end `secrets` issues a new one.
CERT_DAYS = 800
RENEW_DAYS = 30


def log(message: str) -> None:
    """Print one line to standard error, named after this program (the container's log)."""
    print(f"cd-compose-app: {message}", file=sys.stderr, flush=True)


def wait_until(what: str, check, seconds: float, every: float = 1.0) -> None:
    """Call ``check()`` until it returns true, at most for ``seconds``.

    Args:
        what: what is awaited, for the messages.
        check: a function without arguments; a true result ends the wait.
        seconds: how long to try, in seconds (a monotonic clock).
        every: pause between two calls, in seconds.

    Raises:
        SystemExit: ``check`` was still false after ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"cd-compose-app: gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(every)


# Secrets ------------------------------------------------------------------------------------


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _certificate_needed(path: Path) -> bool:
    """True when ``path`` holds no certificate or one that ends within RENEW_DAYS."""
    from cryptography import x509

    if not path.exists():
        return True
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left < datetime.timedelta(days=RENEW_DAYS)


def make_tls() -> None:
    """Make the demo's CA (once) and a server certificate for localhost (when due).

    The CA (``ca.pem``, key ``ca.key``) is valid for ten years; the server certificate
    (``tls.crt``, key ``tls.key``) for ``localhost``, ``127.0.0.1`` and ``::1`` for
    CERT_DAYS. Both start a day in the past: these machines' clocks have jumped back by an
    hour during a run. Keys are ECDSA P-256, readable by root only.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=1)
    ca_key_path, ca_path = SECRETS / "ca.key", SECRETS / "ca.pem"
    if not ca_key_path.exists() or not ca_path.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "channels-deploy compose demo CA")]
        )
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, pem_key(ca_key), 0o600)
        _write(ca_path, ca.public_bytes(serialization.Encoding.PEM), 0o644)
        (SECRETS / "tls.crt").unlink(missing_ok=True)
        log("made the demo's CA")
    if not _certificate_needed(SECRETS / "tls.crt"):
        return
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(SECRETS / "tls.key", pem_key(key), 0o600)
    _write(SECRETS / "tls.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log(f"issued the server certificate for localhost, valid for {CERT_DAYS} days")


def make_secrets() -> None:
    """Make every missing secret in /secrets, then the ``ready`` marker.

    Random values from :mod:`secrets`: Django's key (64 URL-safe characters) and the two
    passwords (48 hex digits, so no URL needs encoding), each readable by root only (the
    other containers read them as root before they drop their privileges). Existing files
    are kept: the database's password must stay what its cluster was made with.
    """
    SECRETS.mkdir(mode=0o700, exist_ok=True)
    values = {
        "secret_key": lambda: secrets.token_urlsafe(48),
        "postgres_password": lambda: secrets.token_hex(24),
        "redis_password": lambda: secrets.token_hex(24),
    }
    for name, make in values.items():
        if not (SECRETS / name).exists():
            _write(SECRETS / name, make().encode(), 0o600)
            log(f"made {name}")
    make_tls()
    _write(READY, b"", 0o644)


def app_environment() -> dict[str, str]:
    """The environment of the app's processes: this one's plus the secrets' variables."""
    wait_until("the secrets (service secrets)", READY.exists, 120, 0.5)

    def read(name: str) -> str:
        return (SECRETS / name).read_text().strip()

    env = dict(os.environ)
    env["SECRET_KEY"] = read("secret_key")
    db = urllib.parse.quote(read("postgres_password"), safe="")
    env["DATABASE_URL"] = f"postgres://chat:{db}@postgres:5432/chat"
    redis = urllib.parse.quote(read("redis_password"), safe="")
    env["REDIS_URL"] = f"redis://chat:{redis}@redis:6379/0"
    return env


# Processes -----------------------------------------------------------------------------------


def drop_privileges() -> None:
    """Become the ``chat`` user (its groups too) if running as root; ``HOME`` follows."""
    if os.getuid() != 0:
        return
    user = pwd.getpwnam(APP_USER)
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir


def database_reachable(env: dict[str, str]) -> bool:
    """True when PostgreSQL accepts the app role's login (3 s connect timeout)."""
    import psycopg

    try:
        psycopg.connect(env["DATABASE_URL"], connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def migration_check(env: dict[str, str]):
    """Set Django up in this process and return a check for unapplied migrations.

    The check is what ``manage.py migrate --check`` asks (the plan from the migrations on
    disk to the ones recorded in the database is empty), without loading Django again at
    every try: the servers wait with it while the migrate service works.

    Returns:
        A function without arguments: True once nothing is left to apply, False while
        something is or the database cannot be reached.
    """
    os.environ.update(env)
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    def check() -> bool:
        try:
            executor = MigrationExecutor(connection)
            return not executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError:
            return False
        finally:
            connection.close()

    return check


def prepare_socket(path: Path) -> None:
    """Give /run/chat (a volume shared with nginx) to chat:chat 0750; clear a stale ``path``.

    nginx's workers are in group ``chat`` (same id in both images): only they and the app
    reach the sockets. A socket left by the previous run of this container goes, and so
    does daphne's lock beside it (twisted's ``<socket>.lock``): one left by a daphne that
    did not stop cleanly names PID 1, alive again in the restarted container, and twisted
    would refuse the address.
    """
    user = pwd.getpwnam(APP_USER)
    SOCKETS.mkdir(exist_ok=True)
    os.chown(SOCKETS, user.pw_uid, user.pw_gid)
    os.chmod(SOCKETS, 0o750)  # noqa: S103 (nginx reaches the sockets through group chat)
    path.unlink(missing_ok=True)
    path.with_name(f"{path.name}.lock").unlink(missing_ok=True)


def serve(name: str) -> None:
    """Start gunicorn or daphne on its unix socket once the database is migrated."""
    env = app_environment()
    socket_path = SOCKETS / f"{name}.sock"
    if os.getuid() == 0:
        prepare_socket(socket_path)
    drop_privileges()
    wait_until("the migrations (service migrate)", migration_check(env), 300, 2)
    if name == "gunicorn":
        # Close to the gunicorn role's defaults; umask 007: the socket is 0770.
        argv = [
            "gunicorn",
            "--bind",
            f"unix:{socket_path}",
            "--umask",
            "0o007",
            "--workers",
            env.get("GUNICORN_WORKERS", "2"),
            "--timeout",
            "30",
            "--graceful-timeout",
            "30",
            "--max-requests",
            "1000",
            "--max-requests-jitter",
            "100",
            "--error-logfile",
            "-",
            "--no-control-socket",
            "config.wsgi:application",
        ]
    else:
        # The daphne role's defaults; one process (the role runs daphne@1..N).
        argv = [
            "daphne",
            "-u",
            str(socket_path),
            "--proxy-headers",
            "--websocket_timeout",
            "86400",
            "--websocket_connect_timeout",
            "5",
            "--ping-interval",
            "20",
            "--ping-timeout",
            "30",
            "--websocket-max-message-size",
            "65536",
            "--websocket-max-frame-size",
            "65536",
            "--application-close-timeout",
            "10",
            "config.asgi:application",
        ]
    log(f"starting {name} on {socket_path}")
    os.execvpe(argv[0], argv, env)  # noqa: S606 (replaces this process, no shell)


def migrate() -> None:
    """Wait for PostgreSQL, then run ``check --deploy`` and ``migrate`` as the app user.

    ``migrate`` gets three tries, 3 s apart: on this loaded test machine a name lookup on
    the demo's network failed once while the containers were starting (aardvark-dns), and
    applying migrations again is harmless.

    Raises:
        SystemExit: the check found a problem, or the third try failed too.
    """
    env = app_environment()
    drop_privileges()
    wait_until("PostgreSQL (service postgres)", lambda: database_reachable(env), 180, 1)
    subprocess.run(  # noqa: S603 (a fixed command)
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], env=env, check=True
    )
    for attempt in range(1, 4):
        done = subprocess.run(  # noqa: S603 (a fixed command)
            [*MANAGE, "migrate", "--noinput"], env=env, check=False
        )
        if done.returncode == 0:
            return
        log(f"migrate exited {done.returncode} (try {attempt} of 3)")
        time.sleep(3)
    raise SystemExit(1)


def manage(args: list[str]) -> None:
    """Run ``manage.py ARGS`` as the app user with the secrets' variables."""
    env = app_environment()
    drop_privileges()
    os.execvpe(MANAGE[0], [*MANAGE, *args], env)  # noqa: S606


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (``host`` only names the Host header)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def healthcheck(path: str) -> int:
    """GET /healthz over the unix socket ``path``; 0 when it answers 200, else 1.

    Django's ``/healthz`` itself checks PostgreSQL and Redis (app/README.md).
    """
    conn = _UnixHTTPConnection(path, timeout=5)
    try:
        conn.request("GET", "/healthz", headers={"Host": "localhost"})
        answer = conn.getresponse()
        body = answer.read().decode("utf-8", "replace")
    except OSError as exc:
        print(f"{path}: {exc}")
        return 1
    finally:
        conn.close()
    print(f"{answer.status} {body}")
    return 0 if answer.status == 200 else 1


def main(argv: list[str]) -> int:
    """Dispatch the command line (see the module's docstring); returns the exit status."""
    command, args = (argv[0], argv[1:]) if argv else ("gunicorn", [])
    if command == "secrets":
        make_secrets()
    elif command == "migrate":
        migrate()
    elif command in ("gunicorn", "daphne"):
        serve(command)
    elif command == "healthcheck" and len(args) == 1:
        return healthcheck(args[0])
    elif command == "manage":
        manage(args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
