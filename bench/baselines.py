"""The seed's setups, the baselines every comparison is made against: Django's ``runserver``
and daphne's ``runserver`` as transient units in the target, from the live release."""

from __future__ import annotations

import subprocess

from deployment import Testbed

# Loopback ports of the baselines in the target (the firewall keeps them private).
PLAIN_PORT = 8001
DAPHNE_PORT = 8002

BENCH_SETTINGS = '''"""Bench baseline: production, daphne's runserver, in-memory layer."""
from config.settings.production import *  # noqa: F403

INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # noqa: F405
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Django's advice under ASGI, and the tutorial's default: a persistent connection per request
# thread used up PostgreSQL's connection slots, and half the requests failed.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# The site's origins (CHAT_ALLOWED_ORIGINS from the env file) and the baseline's own.
CHAT_ALLOWED_ORIGINS = [*CHAT_ALLOWED_ORIGINS, "{origin}"]  # noqa: F405
'''

PLAIN_RUNSERVER = (
    "import django; django.setup(); "
    "from django.core.management import call_command; "
    "from django.contrib.staticfiles.management.commands.runserver import Command; "
    "call_command(Command(), '127.0.0.1:{port}', '--noreload', '--insecure')"
)


class Baselines:
    """The seed's setups as transient units in the target, from the live release.

    ``<app>-bench-runserver``: Django's own ``runserver`` (WSGI, a thread per request,
    static files by django.contrib.staticfiles) on 127.0.0.1:8001. ``<app>-bench-daphne``:
    daphne's ``runserver`` with the in-memory channel layer on 127.0.0.1:8002.
    """

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.units = [f"{testbed.app}-bench-runserver", f"{testbed.app}-bench-daphne"]

    def start(self) -> None:
        """Start both units (stopping leftovers of an earlier run first).

        They are started, not waited for: ``Http.wait`` says when they answer.

        Raises:
            BenchError: a unit could not be started.
        """
        tb = self.testbed
        self.stop()
        tb.exec("install", "-d", "-m", "0755", f"/run/{tb.app}-bench")
        settings = BENCH_SETTINGS.replace("{origin}", f"http://{tb.server_name}:{DAPHNE_PORT}")
        tb.exec("tee", f"/run/{tb.app}-bench/bench_settings.py", stdin=settings)
        common = [
            "systemd-run",
            "--quiet",
            "--collect",
            f"--uid={tb.app}",
            f"--property=EnvironmentFile={tb.env_file}",
            f"--working-directory={tb.root}/current",
        ]
        python = f"{tb.root}/current/venv/bin/python"
        tb.exec(
            *common,
            f"--unit={self.units[0]}",
            python,
            "-c",
            PLAIN_RUNSERVER.format(port=PLAIN_PORT),
        )
        # EnvironmentFile= would override --setenv: env(1) sets the settings module last.
        tb.exec(
            *common,
            f"--unit={self.units[1]}",
            "/usr/bin/env",
            f"PYTHONPATH=/run/{tb.app}-bench",
            "DJANGO_SETTINGS_MODULE=bench_settings",
            python,
            "manage.py",
            "runserver",
            f"127.0.0.1:{DAPHNE_PORT}",
            "--noreload",
            "--insecure",
        )

    def restart_daphne(self) -> None:
        """Restart daphne's runserver (drops whatever backlog it still works through).

        Raises:
            BenchError: systemctl failed.
        """
        self.testbed.exec("systemctl", "restart", self.units[1])

    def stop(self) -> None:
        """Stop both units; a unit that is not running is fine."""
        for unit in self.units:
            subprocess.run(
                ["podman", "exec", self.testbed.host, "systemctl", "stop", unit],
                capture_output=True,
                check=False,
            )
