"""Files only the master's user may read: the SQLite database and its copies.

The database holds job parameters, outputs and errors; SQLite creates its
files with 0644 (less the umask), readable by every local user. SQLite
gives ``-wal`` and ``-shm`` the mode of the main file, so making that one
0600 before SQLite first opens it covers the files it creates later. The
process umask is left alone: it would change every other file the master
and its plugins write.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PRIVATE = 0o600
# SQLite's companions of a database file, which it makes with the file's mode.
COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(slots=True)
class Tightened:
    """What :func:`make_private` did to files that were looser than 0600, for the log."""

    changed: list[Path] = field(default_factory=list)
    """Files now 0600: an operator who set a wider mode on purpose should see it."""
    refused: list[Path] = field(default_factory=list)
    """Files left as they were because this user does not own them (a shared
    database): the master still runs on them, and says so."""


def make_private(path: Path) -> Tightened:
    """Create ``path`` 0600 if absent; tighten it and its companions if looser."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE))
    done = Tightened()
    for file in [path, *(Path(f"{path}{suffix}") for suffix in COMPANIONS)]:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & ~PRIVATE:
            continue
        try:
            file.chmod(mode & PRIVATE)
        except PermissionError:
            done.refused.append(file)
        else:
            done.changed.append(file)
    return done


def private_copy_path(folder: Path | None) -> Path:
    """A path for a database copy, in a fresh 0700 folder, the file made 0600.

    A name reserved in the shared /tmp and unlinked for SQLite to recreate
    could be taken by another user in between, and would be 0644; a private
    folder closes both. The caller removes the folder (:func:`remove_copy`).
    """
    home = Path(tempfile.mkdtemp(prefix="arko-backup-", dir=folder))
    path = home / "copy.db"
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE))
    return path


def remove_copy(path: Path) -> None:
    """Remove a copy made by :func:`private_copy_path`, its companions and its folder."""
    for suffix in ("", *COMPANIONS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.rmdir()
