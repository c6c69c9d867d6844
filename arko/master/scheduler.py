"""Choosing the slave that runs a job.

``Scheduler`` is the seam for other policies (least busy, labels, ...); the
default is the original's: the first live slave, in registration order, that
exposes the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from arko.common.errors import NoLiveSlave
from arko.common.methods import method_not_found


class Candidate(Protocol):
    """What a scheduler may look at in a slave."""

    @property
    def address(self) -> str: ...

    @property
    def live(self) -> bool: ...

    @property
    def methods(self) -> tuple[str, ...]: ...


C = TypeVar("C", bound=Candidate)


class Scheduler(Protocol):
    """Picks one slave for a method, or says why none fits."""

    def pick(self, method: str, slaves: Sequence[C]) -> C:
        """Return the slave to run ``method`` (``Service.Method``).

        ``slaves`` is in registration order.

        Raises:
            MethodNotFound: no slave exposes the method (the message suggests
                the closest methods they do expose).
            NoLiveSlave: slaves expose it but none is live.
        """
        ...


class FirstLiveScheduler:
    """The original policy: first live slave, in registration order, with the method."""

    def pick(self, method: str, slaves: Sequence[C]) -> C:
        offering = [s for s in slaves if method in s.methods]
        for slave in offering:
            if slave.live:
                return slave
        if not offering:
            raise method_not_found(method, (m for s in slaves for m in s.methods))
        addresses = ", ".join(s.address for s in offering)
        raise NoLiveSlave(f"no live slave for {method}: {addresses} expose it but are down")
