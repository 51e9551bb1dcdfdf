"""The test harness itself: clear failures when server binaries are missing."""

from pathlib import Path

import pytest

from tests.servers import ServerError, find_postgres_bin, find_redis_server


def make_bin(root: Path, version: str) -> Path:
    folder = root / version / "bin"
    folder.mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):
        (folder / name).touch()
    return folder


def test_newest_postgresql_version_is_chosen(tmp_path):
    make_bin(tmp_path, "9")
    newest = make_bin(tmp_path, "17")
    make_bin(tmp_path, "15")
    assert find_postgres_bin(tmp_path) == newest


def test_missing_postgresql_names_the_debian_package(tmp_path):
    with pytest.raises(ServerError, match=r"install the Debian package 'postgresql'"):
        find_postgres_bin(tmp_path)


def test_missing_redis_names_the_debian_package(tmp_path):
    with pytest.raises(ServerError, match=r"install the Debian package 'redis-server'"):
        find_redis_server(search_path=str(tmp_path))
