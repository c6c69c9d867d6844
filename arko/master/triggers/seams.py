"""What triggers and schedules need from the rest of the master, as Protocols.

The store claims deliveries and slots (:class:`Marks`, implemented by the SQL
store); the job core starts jobs (:class:`JobStarter`, wired in ``app.py``).
Tests pass small fakes of both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol


class Marks(Protocol):
    """Rows that make a delivery or a slot start one job across masters."""

    async def claim_delivery(self, trigger: str, delivery: str) -> str | None:
        """None when this call claimed it; else the first claim's job id ("" while starting)."""
        ...

    async def delivery_started(self, trigger: str, delivery: str, job_id: str) -> None:
        """Record the job a claimed delivery started."""
        ...

    async def release_delivery(self, trigger: str, delivery: str) -> None:
        """Forget a claim that started no job."""
        ...

    async def claim_slot(self, schedule: str, slot: dt.datetime, master: str) -> bool:
        """Whether this master is the one to fire ``schedule`` at ``slot``."""
        ...


class JobStarter(Protocol):
    """Starts a detached job on behalf of a trigger or schedule and returns its id."""

    def __call__(self, method: str, params: Mapping[str, str], trigger: str) -> str:
        """Start ``method`` with ``params``; its record's ``trigger`` is ``trigger``.

        Raises:
            ArkoError: the job is refused (e.g. its parameters are too large).
        """
        ...
