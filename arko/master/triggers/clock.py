"""Schedules: each slot fires one job, however many masters share the database.

A slot is a moment a schedule names: for ``every``, each multiple of its
period since the Unix epoch (so every master computes the same slots); for
``cron``, each time its five fields match, read in its timezone (croniter).
When a slot comes, every master running tries to claim it with one
insert-or-nothing row (:meth:`Marks.claim_slot`); the one that wins starts the
job. The next slot is always computed from now, so a slot missed while no
master ran is not caught up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import zoneinfo
from collections.abc import Callable

import structlog
from croniter import croniter

from arko.common.errors import ArkoError
from arko.master.triggers.config import ScheduleSpec, parse_every
from arko.master.triggers.seams import JobStarter, Marks

log = structlog.get_logger("arko.master.triggers.clock")


def next_slot(spec: ScheduleSpec, after: float) -> float:
    """The schedule's first slot strictly after ``after`` (Unix seconds)."""
    if spec.every is not None:
        period = parse_every(spec.every)
        return (math.floor(after / period) + 1) * period
    assert spec.cron is not None, "checked at load"
    zone = zoneinfo.ZoneInfo(spec.timezone)
    start = dt.datetime.fromtimestamp(after, zone)
    return float(croniter(spec.cron, start).get_next(float))


class Clock:
    """Fires the schedules as their slots come; run as one of the master's loops.

    Args:
        schedules: The declared schedules.
        start: Starts a job (the job core).
        marks: Claims slots across masters (the store).
        master: This master's name, kept with each slot it fires.
        now: The wall clock (Unix seconds); tests may pass another.
    """

    def __init__(
        self,
        schedules: list[ScheduleSpec],
        start: JobStarter,
        marks: Marks,
        master: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.schedules = list(schedules)
        self._start = start
        self._marks = marks
        self._master = master
        self._now = now

    def next_times(self) -> dict[str, float]:
        """Each schedule's next slot, by name (for listings)."""
        now = self._now()
        return {s.name: next_slot(s, now) for s in self.schedules}

    async def run(self) -> None:
        """Sleep to the next slot, fire what is due, forever."""
        if not self.schedules:
            return
        fired: dict[str, float] = {}
        while True:
            now = self._now()
            # Never a slot already fired: a sleep may end a little early.
            due = {s.name: next_slot(s, max(now, fired.get(s.name, now))) for s in self.schedules}
            slot = min(due.values())
            await asyncio.sleep(max(0.0, slot - self._now()))
            for spec in self.schedules:
                if due[spec.name] == slot:
                    fired[spec.name] = slot
                    # A task of its own: peewee's asyncio layer gives each task
                    # a pooled connection until the task ends, and this loop
                    # never ends (holding one would starve SQLite's small pool).
                    await asyncio.create_task(self._fire(spec, slot), name=f"schedule-{spec.name}")

    async def _fire(self, spec: ScheduleSpec, slot: float) -> None:
        """Claim the slot; start the job when this master won it.

        A failure is logged and the schedule goes on at its next slot: a
        database outage must not stop the master, nor one bad job the clock.
        """
        at = dt.datetime.fromtimestamp(slot, dt.UTC)
        try:
            if not await self._marks.claim_slot(spec.name, at, self._master):
                return
            job_id = self._start(spec.method, spec.params, spec.label)
        except ArkoError as exc:
            log.warning(
                "schedule_failed", schedule=spec.name, slot=at.isoformat(), error=exc.message
            )
            return
        except Exception as exc:  # the store's driver errors are not ArkoErrors
            log.warning("schedule_failed", schedule=spec.name, slot=at.isoformat(), error=repr(exc))
            return
        log.info("schedule_fired", schedule=spec.name, slot=at.isoformat(), job_id=job_id)
