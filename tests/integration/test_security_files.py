"""The master's files on real daemons: the database, its WAL and SHM, and every copy are 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from arko.testing import Fleet, wait_until
from arko.v1 import admin_pb2, admin_pb2_grpc
from tests.integration.test_operator import arko

ECHO = "arko.testing.v1.Toolbox.Echo"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sqlite_fleet(tmp_path: Path) -> Fleet:
    """A fleet on a SQLite file, whatever ARKO_TEST_MASTER_DB says: the files are SQLite's."""
    return Fleet(tmp_path, master_db="sqlite")


def test_database_wal_and_shm_are_0600_after_a_job(
    sqlite_fleet: Fleet, toolbox_env: dict[str, str]
) -> None:
    """arko.db, -wal and -shm exist after a start and a job, readable by their owner only."""
    with sqlite_fleet.running() as fleet:
        master = fleet.master()
        fleet.slave(master, "--service", "toolbox_plugin:plugin", env=toolbox_env)
        done = arko(master.address, "run", ECHO, "name=x")
        assert done.returncode == 0, done.stderr
        db = Path(fleet.database())
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_a_looser_database_is_tightened_at_start_and_logged(sqlite_fleet: Fleet) -> None:
    """A database left 0644 (by an older arko) is 0600 once a master starts on it, logged."""
    db = Path(sqlite_fleet.database())
    db.touch()
    db.chmod(0o644)
    with sqlite_fleet.running() as fleet:
        master = fleet.master()
        assert _mode(db) == 0o600
        (event,) = master.events("database_mode_tightened")
        assert event["file"] == str(db)


def test_arko_backup_writes_0600_even_over_a_looser_file(
    sqlite_fleet: Fleet, tmp_path: Path
) -> None:
    """``arko backup out.db`` leaves out.db 0600, also when an 0644 out.db was there."""
    target = tmp_path / "out.db"
    target.touch()
    target.chmod(0o644)
    with sqlite_fleet.running() as fleet:
        master = fleet.master()
        done = arko(master.address, "backup", str(target))
        assert done.returncode == 0, done.stderr
    assert _mode(target) == 0o600 and target.stat().st_size > 0


def test_the_masters_copy_is_private_while_a_backup_streams(
    sqlite_fleet: Fleet, tmp_path: Path
) -> None:
    """Mid-stream, the master's temporary copy sits in a 0700 folder, itself 0600; both go after.

    One-byte chunks (a dozen bytes each on the wire, some 50,000 of them)
    keep the stream open, gRPC's flow control holding the master back,
    while the test looks at the master's temporary folder.
    """
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o777)
    scratch.chmod(0o777)
    with sqlite_fleet.running() as fleet:
        master = fleet.master(env={"TMPDIR": str(scratch)})
        admin = admin_pb2_grpc.AdminStub(master.channel())
        stream = admin.Backup(admin_pb2.BackupRequest(chunk_bytes=1), timeout=30)
        first = next(stream)
        assert first.total_bytes > 20_000, "the copy must outgrow gRPC's windows to stay open"
        made = list(scratch.iterdir())
        assert made, "no temporary copy while the backup streams"
        for path in made:
            inside = [path, *path.rglob("*")] if path.is_dir() else [path]
            assert {p.name: _mode(p) & 0o077 for p in inside} == {p.name: 0 for p in inside}
        stream.cancel()
        wait_until(lambda: not list(scratch.iterdir()), 15, "the copy removed")
