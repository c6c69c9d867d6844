"""HeldLock: one holder at a time, named to the next; free again once released."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arko.common.errors import StartupError
from arko.master.store.lock import HeldLock


def test_a_second_taker_is_refused_naming_the_holder_and_its_port(tmp_path: Path) -> None:
    """The refusal names the holder's PID and the port it recorded once known."""
    first = HeldLock(tmp_path / "db.lock", "database db", "give it another --db")
    first.take(0)
    first.record(50051)
    second = HeldLock(tmp_path / "db.lock", "database db", "give it another --db")
    with pytest.raises(StartupError, match=rf"pid {os.getpid()}, port 50051") as caught:
        second.take(0)
    assert caught.value.message.endswith("stop that master first, or give it another --db")
    first.release()
    first.release()  # twice is harmless
    second.take(7)
    second.release()


def test_a_lock_file_in_a_missing_folder_is_a_clear_start_error(tmp_path: Path) -> None:
    """No folder for the lock file: the error names the file and what to check."""
    lock = HeldLock(tmp_path / "no" / "db.lock", "database db", "give it another --db")
    with pytest.raises(StartupError, match=r"cannot create its lock file .*No such file"):
        lock.take(0)
