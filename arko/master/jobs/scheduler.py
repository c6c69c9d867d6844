"""Choosing the slave that runs a job.

``Scheduler`` is the seam for other policies; the default is the original's:
the first live slave, in registration order, that exposes the method.
``least_loaded`` picks the live slave with the lowest running/capacity.
Labels and room are the job queue's business (:mod:`arko.master.jobs.queue`): a
scheduler is handed only slaves that carry the labels and have room.
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


def load(slave: Candidate) -> float:
    """How busy a slave is: running/capacity; without a limit, its running jobs.

    Candidates that know nothing of load (fakes, other registries) count as idle.
    """
    running: int = getattr(slave, "running", 0)
    capacity: int = getattr(slave, "capacity", 0)
    return running / capacity if capacity else float(running)


class LeastLoadedScheduler:
    """The live slave with the method and the lowest :func:`load`; ties go to the earliest."""

    def pick(self, method: str, slaves: Sequence[C]) -> C:
        live = [s for s in slaves if s.live and method in s.methods]
        if not live:
            return FirstLiveScheduler().pick(method, slaves)  # raises the right error
        return min(live, key=load)  # min keeps the first of equals: registration order


SCHEDULERS: dict[str, type[FirstLiveScheduler] | type[LeastLoadedScheduler]] = {
    "first_live": FirstLiveScheduler,
    "least_loaded": LeastLoadedScheduler,
}
