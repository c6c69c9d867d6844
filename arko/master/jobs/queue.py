"""The job queue: places on slaves, taken and given back, and jobs waiting for one in order.

Before a job is sent, it takes a place: a live slave that offers the method,
carries the labels the job asks for (its selector and the method's
``required_labels``), and has room (the master's own count of what it sent
there is below the capacity the slave reported, and the slave has not just
refused a call as full), while the method stays under its fleet-wide
``max_concurrency``. When no place is free, the job waits in FIFO order for at
most ``queue_timeout`` seconds; every time room may have appeared (a job gave
its place back, a slave registered or answered a ping) the waiters are
served oldest first, so a job never overtakes an earlier one it competes with.
A waiter whose caller goes away or is cancelled leaves the queue at once.

The count is this master's: several masters sharing slaves each keep their
own, and the slave, the authority, refuses what is past its capacity. With
several masters on one database, the executor also takes a fleet-wide place
of the method (:mod:`arko.master.cluster.coordination`) once this queue has given it one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import structlog

from arko.common.errors import ArkoError, NoLiveSlave
from arko.master.cluster.coordination import ALONE, Coordinator
from arko.master.jobs.policy import job_policy
from arko.master.jobs.scheduler import Scheduler
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.v1.options_pb2 import JobPolicy

log = structlog.get_logger("arko.master.jobs.queue")

_POLICY_CACHE = 4096
DEFAULT_QUEUE_TIMEOUT = 600.0


class NoMatchingSlave(ArkoError):
    """No slave offering the method carries the labels the job asks for."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class QueueTimeout(ArkoError):
    """The job waited ``queue_timeout`` seconds without finding room; it never started."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


def format_labels(labels: Mapping[str, str]) -> str:
    """``a=1,b=2``, sorted, as a person types them."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def carries(slave: Slave, labels: Mapping[str, str]) -> bool:
    """Whether ``slave`` has every one of ``labels`` with the same value."""
    have = slave.labels
    return all(have.get(k) == v for k, v in labels.items())


@dataclass(slots=True)
class _Waiter:
    """One queued job: how to try to place it, and where to hand the place."""

    attempt: Callable[[], Slave | None]
    future: asyncio.Future[Slave]
    handed_at: float = 0.0  # monotonic time the place was handed over


class JobQueue:
    """Hands out places on slaves and queues jobs that find none.

    Args:
        registry: The slaves; the queue is told whenever one changes.
        scheduler: Chooses among the slaves that have room.
        queue_timeout: Longest wait in seconds for a place.
        coordinator: The other masters; the queue is told when one frees a place.
    """

    def __init__(
        self,
        registry: Registry,
        scheduler: Scheduler,
        queue_timeout: float,
        coordinator: Coordinator = ALONE,
    ) -> None:
        self._registry = registry
        self._scheduler = scheduler
        self._timeout = queue_timeout
        self._waiters: deque[_Waiter] = deque()
        self._running: dict[str, int] = {}
        self._policies: dict[tuple[bytes, str], JobPolicy] = {}
        registry.changed.subscribe(self.pump)
        coordinator.on_slot_freed(self.pump)

    @property
    def waiting(self) -> int:
        """Jobs in the queue now."""
        return len(self._waiters)

    def running(self, method: str) -> int:
        """Jobs of ``method`` this master has on slaves now."""
        return self._running.get(method, 0)

    def policy(self, method: str, offering: Sequence[Slave] | None = None) -> JobPolicy:
        """The method's job policy, as the first slave with a catalog declares it.

        Cached per catalog: reading an option parses the method's options.
        """
        if offering is None:
            try:
                offering = self._registry.offering(method)
            except ArkoError:
                return JobPolicy()
        catalog = next((s.catalog for s in offering if s.catalog is not None), None)
        if catalog is None:
            return JobPolicy()
        key = (catalog.fingerprint, method)
        policy = self._policies.get(key)
        if policy is None:
            if len(self._policies) >= _POLICY_CACHE:
                self._policies.clear()
            policy = self._policies[key] = job_policy(catalog, method)
        return policy

    def _place(self, method: str, selector: Mapping[str, str]) -> Slave | None:
        """Take a place for a job of ``method`` now: the slave, or None to wait.

        Raises:
            MethodNotFound: no slave offers the method.
            NoMatchingSlave: none of those carries the labels asked for.
            NoLiveSlave: none of those is live (waiting would not help).
        """
        offering = self._registry.offering(method)
        policy = self.policy(method, offering)
        required = policy.required_labels
        matching = offering
        if selector or required:
            matching = [s for s in offering if carries(s, selector) and carries(s, required)]
            if not matching:
                if any(s.pending for s in offering):
                    raise NoLiveSlave(f"no live slave for {method} yet: waiting for registrations")
                wanted = format_labels({**required, **selector})
                raise NoMatchingSlave(
                    f"no slave offering {method} carries the labels {wanted} "
                    f"(selector {format_labels(selector) or 'none'}, "
                    f"required by the method {format_labels(required) or 'none'})"
                )
        limit = policy.max_concurrency
        if limit and self._running.get(method, 0) >= limit:
            if any(s.live for s in matching):
                return None
            self._scheduler.pick(method, matching)  # raises NoLiveSlave: none is live
        room = [s for s in matching if s.live and not s.full]
        if not room:
            if any(s.live for s in matching):
                return None
            room = list(matching)  # none live: the scheduler says so
        slave = self._scheduler.pick(method, room)
        slave.running += 1
        self._running[method] = self._running.get(method, 0) + 1
        return slave

    async def take(
        self,
        method: str,
        selector: Mapping[str, str],
        on_queued: Callable[[], None],
        log_context: Mapping[str, str],
    ) -> Slave:
        """A place on a slave for a job of ``method``; give it back with :meth:`give_back`.

        Raises:
            QueueTimeout: no place within ``queue_timeout`` seconds.
            ArkoError: as :meth:`_place` (at once, or once queued).
        """
        if not self._waiters:
            slave = self._place(method, selector)
            if slave is not None:
                return slave
        future: asyncio.Future[Slave] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(lambda: self._place(method, selector), future)
        self._waiters.append(waiter)
        self.pump()
        queued = not future.done()
        if queued:
            on_queued()
            log.info("job_queued", method=method, waiting=len(self._waiters), **log_context)
        since = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                slave = await future
        except BaseException as exc:
            # Cancelled (or timed out) just after a place was handed over: give it back.
            if future.done() and not future.cancelled() and future.exception() is None:
                self.give_back(future.result(), method)  # never sent
            if isinstance(exc, TimeoutError):
                raise self.timed_out(method) from None
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if queued:
            # handoff: from the place coming free (a job ended, a slave came)
            # to this job going on to be sent: what the queue adds to a job.
            now = time.monotonic()
            log.info(
                "job_dequeued",
                method=method,
                slave=slave.address,
                waited=round(now - since, 6),
                handoff=round(now - waiter.handed_at, 6),
                **log_context,
            )
        return slave

    @property
    def timeout(self) -> float:
        """Longest wait in seconds for a place (``--queue_timeout``)."""
        return self._timeout

    def timed_out(self, method: str) -> QueueTimeout:
        """The error of a job of ``method`` that waited too long for a place."""
        limit = self.policy(method).max_concurrency
        why = "every slave offering it that carries the labels asked for is full"
        if limit:
            why += f", or its max_concurrency {limit} is reached"
        return QueueTimeout(
            f"no room for {method} after waiting {self._timeout:g}s in the queue "
            f"(--queue_timeout): {why}; the job never started"
        )

    def give_back(self, slave: Slave, method: str, refused: bool = False) -> None:
        """Return a place taken by :meth:`take`, and let the next waiter have it.

        ``refused``: the slave refused the job as full, so it counts as full
        until one of this master's jobs on it ends or it reports its status;
        otherwise a job ended there, and it has room again.
        """
        slave.running -= 1
        slave.refused = refused
        left = self._running.get(method, 1) - 1
        if left:
            self._running[method] = left
        else:
            self._running.pop(method, None)
        self.pump()

    def pump(self) -> None:
        """Serve waiters oldest first while places are free; fail those that cannot wait."""
        if not self._waiters:
            return
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            try:
                slave = waiter.attempt()
            except ArkoError as exc:
                waiter.future.set_exception(exc)
                continue
            if slave is not None:
                waiter.handed_at = time.monotonic()
                waiter.future.set_result(slave)
