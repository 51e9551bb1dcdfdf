"""What a server's sandbox lets the test apps see and do (both apps answer it).

Imported by wsgiapp.py (gunicorn) and asgiapp.py (daphne), which live in the
same folder, the servers' working directory.
"""

import os
import tempfile

import psycopg


def _try_write(folder: str) -> str:
    """Create and remove a file in `folder`; return "ok" or the error's class name."""
    try:
        fd, name = tempfile.mkstemp(dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return type(exc).__name__
    return "ok"


def sandbox_report() -> dict:
    """Return the environment, process and file-system facts the scenario checks.

    Keys: greeting (from the environment file), settings (from Environment=),
    pid, cwd, libpq (psycopg's libpq version, loaded under
    MemoryDenyWriteExecute), and write_media / write_app / write_tmp: "ok" or
    the OSError class raised when writing there (TESTAPP_MEDIA must be set).
    """
    return {
        "greeting": os.environ.get("TESTAPP_GREETING"),
        "settings": os.environ.get("TESTAPP_SETTINGS"),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "libpq": psycopg.pq.version(),
        "write_media": _try_write(os.environ["TESTAPP_MEDIA"]),
        "write_app": _try_write(os.getcwd()),
        "write_tmp": _try_write(tempfile.gettempdir()),
    }
