"""What ``arko triggers``, ``Admin/ListTriggers`` and ``/api/v1/triggers`` show.

Each declared trigger and schedule, in declaration order, with the newest
job it started (found by the job's ``trigger``) and a schedule's next slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from arko.master.store.rows import JobRow
from arko.master.triggers.clock import Clock
from arko.master.triggers.config import ScheduleSpec, TriggerSpec

LastJob = Callable[[str], Awaitable[JobRow | None]]


@dataclass(frozen=True, slots=True)
class TriggerView:
    """One trigger or schedule as listed.

    Attributes:
        trigger: Its jobs' ``trigger``: ``hook:NAME`` or ``schedule:NAME``.
        kind: The forge, or ``schedule``.
        path: A hook's path on the HTTP port ("" for a schedule).
        when: A schedule's cron and timezone, or its every ("" for a hook).
        next_time: A schedule's next slot, Unix seconds (None for a hook).
        last_job: The newest job it started, if any.
    """

    trigger: str
    name: str
    kind: str
    method: str
    path: str = ""
    when: str = ""
    next_time: float | None = None
    last_job: JobRow | None = None


def _when(spec: ScheduleSpec) -> str:
    if spec.every is not None:
        return f"every {spec.every}"
    return f"{spec.cron} ({spec.timezone})"


class Overview:
    """Lists triggers and schedules.

    Args:
        triggers: The declared ``[[trigger]]`` tables.
        clock: The schedules and their next slots.
        last_job: The newest job carrying a given ``trigger`` (the job core).
    """

    def __init__(self, triggers: list[TriggerSpec], clock: Clock, last_job: LastJob) -> None:
        self._triggers = list(triggers)
        self._clock = clock
        self._last_job = last_job

    async def list(self) -> list[TriggerView]:
        """Triggers in declaration order, then schedules."""
        views = [
            TriggerView(
                t.label,
                t.name,
                t.forge,
                t.method,
                path=f"/hooks/{t.name}",
                last_job=await self._last_job(t.label),
            )
            for t in self._triggers
        ]
        next_times = self._clock.next_times()
        views += [
            TriggerView(
                s.label,
                s.name,
                "schedule",
                s.method,
                when=_when(s),
                next_time=next_times[s.name],
                last_job=await self._last_job(s.label),
            )
            for s in self._clock.schedules
        ]
        return views
