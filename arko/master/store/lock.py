"""One master per database file and per job journal: an exclusive lock held for its life.

A second master started by mistake on the same SQLite file (``arko-master``
twice) would replay and interrupt the first one's running jobs as a crashed
run's, before failing on the busy port, or run beside it on a free one and
share its journal. So before it recovers anything, a master takes an
exclusive ``flock`` on a lock file beside its database and one in its
journal folder, and a second master refuses at once, naming the holder.

The kernel releases a ``flock`` when its holder dies, however it dies, so a
lock file left by a killed master stops nobody. The file is never deleted:
removing it while held would let a newcomer lock a new file of the same name
beside a master still running on the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from arko.common.errors import StartupError

_READ_LIMIT = 4096  # a holder's record is a few dozen bytes


class HeldLock:
    """An exclusive lock on ``path``, held from :meth:`take` until :meth:`release`.

    Args:
        path: The lock file (created if missing).
        what: What it guards, as the refusal names it ("database arko.db").
        fix: What the operator can do instead ("give it another --db").
    """

    def __init__(self, path: Path, what: str, fix: str) -> None:
        self.path = path
        self._what = what
        self._fix = fix
        self._fd = -1

    def take(self, port: int) -> None:
        """Lock the file and record this process's id and ``port`` in it.

        Raises:
            StartupError: another process holds it (naming its PID and port),
                or the file cannot be made.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StartupError(
                f"cannot use {self._what}: cannot create its lock file {self.path} "
                f"({exc.strerror}); check that the folder of {self.path} exists and this "
                "user may write there"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StartupError(
                f"{self._what} is in use by another master ({holder}, lock {self.path}): "
                f"stop that master first, or {self._fix}"
            ) from None
        self._fd = fd
        self.record(port)

    def record(self, port: int) -> None:
        """Write this process's id and listening ``port`` (0 while not yet known)."""
        data = json.dumps({"pid": os.getpid(), "port": port}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Unlock (by closing the file); safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _holder(fd: int) -> str:
    """``pid 123, port 50051`` as the holder recorded it, or why it cannot be told."""
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        held = json.loads(os.pread(fd, _READ_LIMIT, 0))
        port = int(held["port"])
        return f"pid {int(held['pid'])}, port {port if port else 'not yet chosen'}"
    # The holder is between truncating and writing its record: rare, and harmless.
    return "pid and port not recorded yet"
