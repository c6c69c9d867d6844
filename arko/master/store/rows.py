"""What the master keeps, as plain rows, and the ``Store`` protocol that keeps them.

The registry, the job recorder and the job service see persistence only
through :class:`Store` and these frozen dataclasses; :mod:`arko.master.store.sql`
implements it on SQLite and PostgreSQL. ``JobRow`` is the one definition of a
job record: the SQL columns, the journal's lines and the job in flight
(:class:`arko.master.jobs.records.Job`) take their fields from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, get_type_hints

from arko.master.jobs.state import JobState

# A slave's stored status: down (or never probed) and live.
STATUS_DOWN = 0
STATUS_LIVE = 1


def now() -> dt.datetime:
    """The current UTC time, as stored."""
    return dt.datetime.now(dt.UTC)


class RecordRefused(Exception):
    """The database refused a record for what it holds: writing it again will
    not help, unlike after an outage."""


@dataclass(frozen=True, slots=True)
class SlaveRow:
    """A stored slave. ``id`` grows with registration order, which the scheduler uses."""

    id: int
    host: str
    port: int
    status: int
    methods: tuple[str, ...]
    call_nonce: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    capacity: int = 0


@dataclass(frozen=True, slots=True)
class JobRow:
    """A stored job record; secret-looking parameter values are already redacted."""

    id: str
    method: str
    params: dict[str, str]
    state: JobState
    slave: str = ""
    result: str = ""
    error_code: str = ""
    error: str = ""
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    args: dict[str, Any] = field(default_factory=dict)
    cancelled_by: str = ""
    detached: bool = False
    output_bytes: int = 0
    output_truncated: bool = False
    last_seq: int = 0
    master: str = ""
    # Pipelines: the job that started this one (a child), what started it
    # ("api", "job", "hook:NAME", "schedule:NAME"), how deep it is nested,
    # and whether it runs on when its parent ends.
    parent_id: str = ""
    trigger: str = "api"
    depth: int = 0
    outlive_parent: bool = False
    # SHA-256 of the job's token (arko-job-token) while it may start
    # children; never the token itself.
    token_hash: str = ""


# Computed once here, so the hot paths that copy records field by field
# (the recorder, the SQL store) never reflect per call.
JOB_FIELDS = tuple(f.name for f in dataclasses.fields(JobRow))
JOB_TYPES: dict[str, Any] = get_type_hints(JobRow)
# The fields holding a moment: a datetime here, Unix seconds in the journal.
JOB_TIMES = tuple(name for name in JOB_FIELDS if JOB_TYPES[name] == dt.datetime | None)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One kept event of a job's output (``OUTPUT`` or ``TRUNCATED``)."""

    job_id: str
    seq: int
    kind: str
    time: float
    data: str


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a listing returns, newest first, from after ``after`` (a page key)."""

    method: str = ""
    states: tuple[JobState, ...] = ()
    limit: int = 50
    after: tuple[dt.datetime, str] | None = None
    parent_id: str = ""
    trigger: str = ""


@dataclass(frozen=True, slots=True)
class SecretRow:
    """A stored secret: its value sealed (:mod:`arko.master.secrets.sealing`), never in clear."""

    name: str
    sealed: str
    methods: tuple[str, ...]
    created_at: dt.datetime
    updated_at: dt.datetime


class SecretStore(Protocol):
    """What the secrets vault needs from persistence: the ``secret`` table.

    Apart from :class:`Store` so the job cores' fakes need not grow it; the
    SQL stores implement both.
    """

    async def put_secret(self, name: str, sealed: str, methods: Sequence[str]) -> SecretRow:
        """Insert the secret or replace its value and globs (keeping ``created_at``)."""
        ...

    async def list_secrets(self) -> list[SecretRow]:
        """Every secret, by name."""
        ...

    async def get_secrets(self, names: Sequence[str]) -> list[SecretRow]:
        """Those of ``names`` that exist, by name; read afresh on every call."""
        ...

    async def delete_secret(self, name: str) -> bool:
        """Delete a secret; False when there was none of this name."""
        ...


class Store(Protocol):
    """What the registry and the job recorder need from persistence."""

    async def list_slaves(self) -> list[SlaveRow]:
        """Every stored slave, in registration order."""
        ...

    async def upsert_slave(
        self, host: str, port: int, status: int, call_nonce: str = ""
    ) -> SlaveRow:
        """Insert the slave or, if (host, port) exists, update it; one row either way.

        A non-empty ``call_nonce`` replaces the stored one (the slave restarted).
        """
        ...

    async def update_slave(
        self,
        slave_id: int,
        status: int,
        methods: tuple[str, ...],
        last_error: str = "",
        labels: Mapping[str, str] | None = None,
        capacity: int | None = None,
    ) -> None:
        """Save a slave's liveness, method list and why it is down (and, when
        given, the labels and capacity it reported)."""
        ...

    async def down_since(self, cutoff: dt.datetime) -> dict[int, dt.datetime]:
        """Slaves down since before ``cutoff``: id -> when they went down."""
        ...

    async def delete_down_slaves(self, ids: Sequence[int]) -> None:
        """Delete those of ``ids`` that are still down (one that came back stays)."""
        ...

    async def delete_slave(self, slave_id: int) -> None:
        """Delete one slave, whatever its status (an operator forgets it)."""
        ...

    async def save_jobs(self, jobs: Sequence[JobRow], events: Sequence[EventRow] = ()) -> None:
        """Insert or replace job records and their events, all in one transaction.

        Raises:
            RecordRefused: the database refused what a record holds (the
                others of the batch are not written either).
        """
        ...

    async def list_jobs(self, query: JobFilter) -> list[JobRow]:
        """Jobs matching ``query``, newest first (created_at, then id, descending)."""
        ...

    async def list_events(self, job_id: str, from_seq: int, limit: int) -> list[EventRow]:
        """A job's kept events with ``seq >= from_seq``, in order, at most ``limit``."""
        ...

    async def interrupt_unfinished(self, reason: str, master: str | None = None) -> int:
        """Mark queued/running jobs interrupted (after a crash); return how many.

        With ``master``, only the jobs that master was running.
        """
        ...

    async def get_job(self, job_id: str) -> JobRow | None:
        """One job record, or None."""
        ...

    async def close(self) -> None:
        """Release the database."""
        ...
