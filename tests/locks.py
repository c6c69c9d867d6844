"""Locks between test processes that share one checkout.

``make test`` runs two passes at once, each on several pytest-xdist workers,
all in the same checkout. Building a wheel or an sdist from the checkout
writes into it (``build/``, ``*.egg-info``), and two builds at once trip over
each other's files; :func:`checkout_build` lets one build at a time.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def checkout_build(root: Path = ROOT) -> Iterator[None]:
    """Hold, for the ``with`` block, the machine-wide lock on building from ``root``.

    The lock file sits outside the checkout (nothing of it in ``git status``)
    and is named after the checkout's path, so other clones build freely. The
    kernel drops the lock if the holder dies.
    """
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"arko-test-build-{key}.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
