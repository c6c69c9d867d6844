"""What the job core and the registry need from the other masters, and the answer when alone.

A master on SQLite is the only one on its database; masters on one
PostgreSQL database share its slaves and jobs
(:mod:`arko.master.cluster.postgres`). The registry, the job queue, the
executor, the job service and the recorder are given a :class:`Coordinator`
when they are built and call it unconditionally: :data:`ALONE`, a
:class:`SingleMaster`, answers each question as a master alone must (every
slave is its own to ping, every place of a method is its own to hand out,
nobody else to tell), so none of them branches on how many masters there are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from arko.master.store.rows import JobRow, SlaveRow


@dataclass(frozen=True, slots=True)
class Slot:
    """One place of a method's ``max_concurrency`` among all masters, held until released."""

    method: str
    key: int
    index: int


class Slaves(Protocol):
    """What a coordinator keeps in step with the other masters: the registry."""

    def sync(self, rows: Sequence[SlaveRow], owned: frozenset[int], complete: bool = True) -> None:
        """Take in the shared slave table (or, unless ``complete``, its rows
        changed since the last sync) and the slaves this master now pings."""

    def disown(self) -> None:
        """Stop pinging every slave: others may hold the leases now."""


class Coordinator(Protocol):
    """This master's dealings with the other masters on its database."""

    @property
    def name(self) -> str | None:
        """This master's name, stamped on its jobs; None when alone (jobs carry none)."""

    @property
    def alone(self) -> bool:
        """Whether no other master can share the database: every slave is this
        master's to ping and speak for, and every job in it is one of its own."""

    def on_cancel_asked(self, listener: Callable[[str, str], None]) -> None:
        """Tell ``listener(job_id, by)`` when another master asks to cancel a job."""

    def on_slot_freed(self, listener: Callable[[], None]) -> None:
        """Tell ``listener()`` when another master frees a place of some method."""

    async def join(self, slaves: Slaves) -> None:
        """Take a first share of the slaves to ping, before the first ping sweep."""

    async def keep_in_step(self, slaves: Slaves) -> None:
        """Run for as long as the master does, keeping ``slaves`` in step with the others."""

    async def claim(self, slave_id: int) -> bool:
        """Whether this master may ping a slave that just registered here."""

    async def try_slot(self, method: str, limit: int) -> Slot | None:
        """A place of ``method`` among ``limit`` across masters, or None when all are held."""

    async def release(self, slot: Slot) -> None:
        """Give back a place taken by :meth:`try_slot`."""

    async def wait_for_slot(self, timeout: float) -> None:
        """Return when another master frees a place, or after ``timeout`` seconds."""

    async def commit_jobs(self, rows: Sequence[JobRow]) -> None:
        """Write job records where the other masters see them, before the jobs are sent."""

    def saved(self, job_ids: list[str]) -> None:
        """Tell the other masters these jobs' records were written (without waiting)."""

    async def wait_saved(self, job_id: str, timeout: float) -> None:
        """Return when a master says it wrote ``job_id``'s record, or after ``timeout``."""

    async def ask_cancel(self, job_id: str, by: str) -> None:
        """Ask the master running ``job_id`` to cancel it on behalf of ``by``."""

    async def stop(self) -> None:
        """Leave the other masters (they take over at once) and close what is held."""


class SingleMaster:
    """The only master on its database: nobody to ask, tell or wait for."""

    __slots__ = ()

    @property
    def name(self) -> str | None:
        return None

    @property
    def alone(self) -> bool:
        return True

    def on_cancel_asked(self, listener: Callable[[str, str], None]) -> None:
        """Never told: no other master asks."""

    def on_slot_freed(self, listener: Callable[[], None]) -> None:
        """Never told: this master's own places come back through its queue."""

    async def join(self, slaves: Slaves) -> None:
        """Nothing to share: every slave is pinged by this master."""

    async def keep_in_step(self, slaves: Slaves) -> None:
        """Nothing to keep in step: returns at once."""

    async def claim(self, slave_id: int) -> bool:
        return True

    async def try_slot(self, method: str, limit: int) -> Slot | None:
        """Always a place: the job queue's own count already holds ``limit``."""
        return Slot(method, 0, 0)

    async def release(self, slot: Slot) -> None:
        """Nothing held beyond the queue's count."""

    async def wait_for_slot(self, timeout: float) -> None:
        """Returns at once: :meth:`try_slot` never refuses."""

    async def commit_jobs(self, rows: Sequence[JobRow]) -> None:
        """Nothing to write early: no other master looks, and the journal keeps every record."""

    def saved(self, job_ids: list[str]) -> None:
        """Nobody to tell."""

    async def wait_saved(self, job_id: str, timeout: float) -> None:
        """Returns at once: no other master writes records."""

    async def ask_cancel(self, job_id: str, by: str) -> None:
        """Nobody to ask: a job not running here is not running anywhere."""

    async def stop(self) -> None:
        """Nothing held."""


ALONE: Coordinator = SingleMaster()
