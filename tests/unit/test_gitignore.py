"""What a master leaves in a checkout stays out of ``git status``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize(
    "path",
    [
        "arko.db",
        "arko.db-wal",
        "arko.db-shm",
        "arko.db.lock",
        "arko.db.journal/0000000001.jsonl",
        "arko-master-10001.journal/0000000001.jsonl",
    ],
)
def test_a_masters_files_are_ignored(path: str) -> None:
    """The database, its WAL files and the job journal folder are all ignored."""
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"{path} is not in .gitignore"
