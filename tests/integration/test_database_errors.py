"""A database the master cannot use at start: one ``startup_failed`` line naming cause and fix."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import pytest

from arko.testing import LOOPBACK, free_port, postgres_server
from tests.postgres import OFF


def _refused_start(db: Path | str, tmp_path: Path) -> str:
    """Start arko-master on ``db`` in a new folder; check it exits 2 printing one JSON line
    and leaving nothing in its folder (no journal); return the reason."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args = ["--db", str(db), "--port", str(free_port()), "--listen_host", LOOPBACK]
    out = subprocess.run(
        [sys.executable, "-m", "arko.master", *args, "--log_format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )
    printed = out.stdout + out.stderr
    assert out.returncode == 2, printed
    assert "Traceback" not in printed
    lines = printed.strip().splitlines()
    assert len(lines) == 1, printed
    event = json.loads(lines[0])
    assert event["event"] == "startup_failed", event
    assert not list(cwd.iterdir())
    return str(event["reason"])


def _server(**change: str) -> str:
    """The test PostgreSQL server's URL with some parts changed (path, netloc)."""
    if postgres_server() == OFF:
        pytest.skip("ARKO_TEST_POSTGRES=off: PostgreSQL tests skipped on purpose")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(postgres_server())._replace(**change))


def test_a_missing_postgres_database_names_it_and_how_to_create_it(tmp_path: Path) -> None:
    """No such database: the reason says so and gives the createdb line."""
    name = f"arko_missing_{uuid.uuid4().hex[:8]}"
    url = _server(path=f"/{name}")
    reason = _refused_start(url, tmp_path)
    assert f'database "{name}" does not exist' in reason
    assert f"createdb -h 127.0.0.1 -p 5432 -U postgres {name}" in reason


def test_an_unknown_postgres_user_names_it_and_the_fix(tmp_path: Path) -> None:
    """A user the server does not know: the reason names the user and where to fix it."""
    parts = urllib.parse.urlsplit(_server())
    url = _server(netloc=f"arko_no_such_role@{parts.hostname}:{parts.port or 5432}")
    reason = _refused_start(url, tmp_path)
    assert 'role "arko_no_such_role" does not exist' in reason
    assert "give a user the server accepts in --db" in reason


def test_a_postgres_server_nobody_runs_says_start_it(tmp_path: Path) -> None:
    """A port nothing listens on: the reason names the address and says to start PostgreSQL."""
    port = free_port()
    reason = _refused_start(f"postgresql://postgres@{LOOPBACK}:{port}/arko", tmp_path)
    assert f"nothing answers at {LOOPBACK}:{port}" in reason
    assert "start PostgreSQL there, or fix the host and port in --db" in reason


def test_a_sqlite_path_in_no_folder_says_which_folder_is_missing(tmp_path: Path) -> None:
    """A --db in a folder that does not exist: the reason says to check the folder."""
    db = tmp_path / "no" / "such" / "arko.db"
    reason = _refused_start(db, tmp_path)
    assert f"cannot use database {db}" in reason
    assert f"check that the folder of {db}" in reason
    assert "exists and this user may write there" in reason
    assert not db.parent.exists()


def test_a_folder_given_as_sqlite_database_is_named_a_folder(tmp_path: Path) -> None:
    """A --db that is a folder: the reason says it is a folder, not a database file."""
    reason = _refused_start(tmp_path, tmp_path)
    assert f"{tmp_path} is a folder: give the path of a database file in --db" in reason


def test_a_corrupt_sqlite_file_is_left_alone_and_named(tmp_path: Path) -> None:
    """A file that is not a database: the reason says so and how to go on; the file is kept."""
    db = tmp_path / "arko.db"
    db.write_bytes(b"not a database at all" * 100)
    reason = _refused_start(db, tmp_path)
    assert f"{db} is not a SQLite database" in reason
    assert "move it aside or restore a backup" in reason
    assert db.read_bytes() == b"not a database at all" * 100
