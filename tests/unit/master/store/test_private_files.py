"""The database file's mode: made 0600, tightened when looser, left (and said) when not ours."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from arko.master.store.private_files import make_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_file_is_made_0600(tmp_path: Path) -> None:
    db = tmp_path / "arko.db"
    done = make_private(db)
    assert mode(db) == 0o600
    assert done.changed == [] and done.refused == []


def test_a_looser_database_and_its_wal_are_tightened(tmp_path: Path) -> None:
    db, wal = tmp_path / "arko.db", tmp_path / "arko.db-wal"
    for file in (db, wal):
        file.touch(mode=0o644)
        file.chmod(0o644)
    done = make_private(db)
    assert (mode(db), mode(wal)) == (0o600, 0o600)
    assert done.changed == [db, wal]


def test_a_file_this_user_may_not_chmod_is_left_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared database owned by another user must not stop the master from starting."""
    db = tmp_path / "arko.db"
    db.touch()
    db.chmod(0o664)

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", refuse)
    done = make_private(db)
    assert done.refused == [db] and done.changed == []
    assert mode(db) == 0o664
