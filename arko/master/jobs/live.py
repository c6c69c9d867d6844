"""Live jobs: each in-flight job's events, kept within a bound, followed by any number of watchers.

The job's producer adds events as they happen and any number of watchers
follow them from any sequence number, each at its own pace. Memory per job is
bounded: output events are kept (for watchers and for the record) until their
data reaches ``max_output_bytes``; then one ``TRUNCATED`` event is kept and
later events live only in a short ring of the most recent ones (at most
``RING`` events and ``RING_BYTES`` of data). The producer
never waits for a watcher; a watcher that falls behind the ring skips to its
oldest event, which shows as a gap in the sequence numbers. The caller of
``Jobs/Run`` is not a watcher: the producer hands it every event through a
queue of at most ``WRITE_AHEAD`` (arko.master.api.jobs), so it gets every
event and paces the slave through gRPC flow control.

A finished job stays here until its record has reached the store, so a
reader always finds it in one place or the other.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from arko.master.jobs.records import Job
from arko.master.jobs.state import JobState
from arko.master.store.rows import JobRow

ACCEPTED = "ACCEPTED"
STARTED = "STARTED"
OUTPUT = "OUTPUT"
TRUNCATED = "TRUNCATED"
FINISHED = "FINISHED"
# Kinds that are journaled as events; the others are read back from the record.
KEPT_AS_EVENTS = frozenset({OUTPUT, TRUNCATED})
RING = 1024
RING_BYTES = 1024 * 1024

Journal = Callable[[Job, int, str, str], None]


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a job's life.

    Attributes:
        seq: Position in the job's events, from 0.
        kind: ACCEPTED, STARTED, OUTPUT, TRUNCATED or FINISHED.
        time: Unix seconds.
        state: The job's state after the event.
        data: OUTPUT: one message as JSON; STARTED: the slave; TRUNCATED: why.
        record: ACCEPTED and FINISHED: the job's record at that moment.
    """

    seq: int
    kind: str
    time: float
    state: JobState
    data: str = ""
    record: JobRow | None = None


class LiveJob:
    """One job in flight (or just finished): its record, its events, how to stop it.

    Args:
        job: The job's record in flight.
        journal: Persists a kept OUTPUT or TRUNCATED event (the recorder's ``output``).
        max_output_bytes: Output data kept per job; past it, events go to the ring only.
        deadline: Monotonic seconds at which the job's own deadline passes
            (None: none), which its children inherit.
        credentials: Metadata the job is sent to its slave with (its id and
            job token): in memory only, never recorded.
    """

    def __init__(
        self,
        job: Job,
        journal: Journal,
        max_output_bytes: int,
        deadline: float | None = None,
        credentials: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.job = job
        self.deadline = deadline
        self.credentials = credentials
        self._journal = journal
        self._max = max_output_bytes
        self._kept: list[Event] = []  # seq 0..len-1
        self._recent: deque[Event] = deque()  # contiguous seqs from _recent_base
        self._recent_base = 0
        self._recent_bytes = 0
        self._next = 0
        self._changed = asyncio.Event()
        self._watching = 0
        self.task: asyncio.Task[object] | None = None
        self.cancel_requested = ""
        self.cancel_state = JobState.CANCELLED
        self.outputs = 0  # OUTPUT events added, kept or not (messages relayed)

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def done(self) -> bool:
        """Whether the FINISHED event was added."""
        return self.job.finished and self._next > 0 and self._last().kind == FINISHED

    @property
    def next_seq(self) -> int:
        """The sequence number the next event will get."""
        return self._next

    def _last(self) -> Event:
        return self._recent[-1] if self._recent else self._kept[-1]

    def add(self, kind: str, data: str = "", record: JobRow | None = None) -> Event:
        """Add an event; keep and journal it if the output bound allows."""
        if kind == OUTPUT:
            self.outputs += 1
        if kind == OUTPUT and not self.job.output_truncated:
            if self.job.output_bytes + len(data) > self._max:
                self.job.output_truncated = True
                note = (
                    f"output kept up to {self._max} bytes (--max_output_bytes); "
                    "the rest was live only"
                )
                self._keep(self._new(TRUNCATED, note, None))
            else:
                self.job.output_bytes += len(data)
        event = self._new(kind, data, record)
        if self.job.output_truncated:
            if not self._recent:
                self._recent_base = event.seq
            self._recent.append(event)
            self._recent_bytes += len(event.data)
            while len(self._recent) > 1 and (
                len(self._recent) > RING or self._recent_bytes > RING_BYTES
            ):
                self._recent_bytes -= len(self._recent.popleft().data)
                self._recent_base += 1
        else:
            self._keep(event)
        self._notify()
        return event

    def _new(self, kind: str, data: str, record: JobRow | None) -> Event:
        event = Event(self._next, kind, time.time(), self.job.state, data, record)
        self._next += 1
        return event

    def _keep(self, event: Event) -> None:
        self._kept.append(event)
        if event.kind in KEPT_AS_EVENTS:
            self._journal(self.job, event.seq, event.kind, event.data)

    def _notify(self) -> None:
        if self._watching:
            self._changed.set()
            self._changed = asyncio.Event()

    def since(self, seq: int, live: bool = True) -> list[Event]:
        """Events from ``seq`` on that are still held (a slow reader may miss some).

        With ``live`` False, only what is kept (what the store will hold)
        plus FINISHED: the job as it reads back once it has ended.
        """
        out = self._kept[seq:] if seq < len(self._kept) else []
        if self._recent:
            start = max(seq, self._recent_base) - self._recent_base
            recent = itertools.islice(self._recent, start, None)
            out += recent if live else [e for e in recent if e.kind == FINISHED]
        return out

    async def follow(self, from_seq: int) -> AsyncIterator[Event]:
        """Every held event from ``from_seq``, then live ones, until FINISHED.

        A watcher that comes after the end reads what the store will hold, so
        a job reads back the same before and after its record is stored.
        """
        seq = from_seq
        live = not self.done
        while True:
            changed = self._changed
            batch = self.since(seq, live)
            for event in batch:
                yield event
                seq = event.seq + 1
            if self.done and seq >= self._next:
                return
            if not batch:
                self._watching += 1
                try:
                    await changed.wait()
                finally:
                    self._watching -= 1

    def cancel(self, by: str, state: JobState = JobState.CANCELLED) -> bool:
        """Ask the job to stop; False when it has already ended.

        Args:
            by: Who asked (kept in the record's ``cancelled_by``).
            state: CANCELLED, or INTERRUPTED when the master is stopping.
        """
        if self.job.finished or self.task is None or self.task.done():
            return False
        if not self.cancel_requested:
            self.cancel_requested, self.cancel_state = by, state
            self.task.cancel()
        return True


class LiveJobs:
    """Jobs in flight on this master, and those whose records are not yet stored."""

    def __init__(self) -> None:
        self._jobs: dict[str, LiveJob] = {}

    def add(self, live: LiveJob) -> None:
        """Track a new job."""
        self._jobs[live.id] = live

    def get(self, job_id: str) -> LiveJob | None:
        """The job, if it is in flight here or not yet stored."""
        return self._jobs.get(job_id)

    def running(self) -> list[LiveJob]:
        """Jobs not yet finished."""
        return [j for j in self._jobs.values() if not j.job.finished]

    def saved(self, job_ids: list[str]) -> None:
        """The store now holds these records: forget the finished ones."""
        for job_id in job_ids:
            live = self._jobs.get(job_id)
            if live is not None and live.done:
                del self._jobs[job_id]

    def __len__(self) -> int:
        return len(self._jobs)
