"""Persistence of slaves and job records, behind a small ``Store`` protocol.

Only this module knows SQL. It uses peewee 4's asyncio layer
(``playhouse.pwasyncio``): queries run on aiosqlite's thread, so the event
loop never waits on the disk. Rows come back as plain dataclasses. SQLite runs
in WAL mode with a busy timeout, and the schema carries a version
(``PRAGMA user_version``) that :mod:`arko.master.migrations` upgrades.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import peewee
from playhouse.pwasyncio import AsyncSqliteDatabase

from arko.common.errors import StartupError
from arko.master import migrations
from arko.master.models import JobModel, SlaveModel

STATUS_DOWN = 0
STATUS_LIVE = 1
PRAGMAS = {"journal_mode": "wal", "busy_timeout": 5000, "synchronous": "normal"}
_JOB_INSERT = (
    'INSERT OR REPLACE INTO "job" ("id", "method", "params", "state", "slave", "result", '
    '"error_code", "error", "created_at", "started_at", "ended_at") VALUES'
)
_JOB_ROW = "(?,?,?,?,?,?,?,?,?,?,?)"
_JOB_CHUNK = 512  # 5,632 variables a statement, well under SQLite's limit


def _chunks(count: int) -> list[tuple[int, int]]:
    """(start, size) pieces of ``count`` rows, each size a power of two.

    sqlite3 caches a prepared statement per distinct SQL text and connection;
    one text per batch size would fill that cache with large statements (tens
    of MB over a long run), while powers of two keep it to ten texts.
    """
    pieces, start = [], 0
    while start < count:
        size = min(_JOB_CHUNK, 1 << ((count - start).bit_length() - 1))
        pieces.append((start, size))
        start += size
    return pieces


# SQLite has one writer; each pooled aiosqlite connection costs a thread.
POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class SlaveRow:
    """A stored slave. ``id`` grows with registration order, which the scheduler uses."""

    id: int
    host: str
    port: int
    status: int
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JobRow:
    """A stored job record; secret-looking parameter values are already redacted."""

    id: str
    method: str
    params: dict[str, str]
    state: str
    slave: str = ""
    result: str = ""
    error_code: str = ""
    error: str = ""
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None


class Store(Protocol):
    """What the registry and the job recorder need from persistence."""

    async def list_slaves(self) -> list[SlaveRow]:
        """Every stored slave, in registration order."""
        ...

    async def upsert_slave(self, host: str, port: int, status: int) -> SlaveRow:
        """Insert the slave or, if (host, port) exists, update it; one row either way."""
        ...

    async def update_slave(
        self, slave_id: int, status: int, methods: tuple[str, ...], last_error: str = ""
    ) -> None:
        """Save a slave's liveness, method list and why it is down."""
        ...

    async def down_since(self, cutoff: dt.datetime) -> dict[int, dt.datetime]:
        """Slaves down since before ``cutoff``: id -> when they went down."""
        ...

    async def delete_down_slaves(self, ids: Sequence[int]) -> None:
        """Delete those of ``ids`` that are still down (one that came back stays)."""
        ...

    async def save_jobs(self, jobs: Sequence[JobRow]) -> None:
        """Insert or replace job records, all in one transaction."""
        ...

    async def interrupt_unfinished(self, reason: str) -> int:
        """Mark queued/running jobs interrupted (after a crash); return how many."""
        ...

    async def get_job(self, job_id: str) -> JobRow | None:
        """One job record, or None."""
        ...

    async def close(self) -> None:
        """Release the database."""
        ...


def _check_file(path: str) -> None:
    """Open the file with plain sqlite3 and read its header.

    A broken file then fails here, with one error, instead of inside pool
    creation, where half-made connections (each with its own thread) would
    keep the process from exiting.
    """
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    finally:
        conn.close()


def now() -> dt.datetime:
    """The current UTC time, as stored."""
    return dt.datetime.now(dt.UTC)


def _down_since(status: int) -> Any:
    """The new ``down_since`` of a slave saved with ``status``: kept while down, else NULL."""
    if status == STATUS_LIVE:
        return None
    return peewee.fn.COALESCE(SlaveModel.down_since, now())


def _slave_row(model: Any) -> SlaveRow:
    return SlaveRow(
        id=model.id,
        host=model.host,
        port=model.port,
        status=model.status,
        methods=tuple(json.loads(model.methods)),
    )


def _job_row(model: Any) -> JobRow:
    return JobRow(
        id=model.id,
        method=model.method,
        params=json.loads(model.params),
        state=model.state,
        slave=model.slave,
        result=model.result,
        error_code=model.error_code,
        error=model.error,
        created_at=model.created_at,
        started_at=model.started_at,
        ended_at=model.ended_at,
    )


class SqliteStore:
    """``Store`` on a SQLite file (or ``:memory:`` for tests)."""

    def __init__(self, db: AsyncSqliteDatabase) -> None:
        self._db = db
        db.bind([SlaveModel, JobModel])

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and upgrade its schema.

        Raises:
            StartupError: the file cannot be opened or written, is not a
                database, or was made by a newer arko.
        """
        try:
            await asyncio.to_thread(_check_file, str(path))
        except sqlite3.Error as exc:
            raise StartupError(f"cannot use database {path}: {exc}") from None
        db = AsyncSqliteDatabase(str(path), pragmas=PRAGMAS, pool_size=POOL_SIZE)
        store = cls(db)
        try:
            await db.run(migrations.upgrade, db)
            await db.list(SlaveModel.select().limit(1))
        except (peewee.DatabaseError, OSError, migrations.SchemaTooNew) as exc:
            await store.close()
            raise StartupError(f"cannot use database {path}: {exc}") from None
        return store

    async def list_slaves(self) -> list[SlaveRow]:
        rows = await self._db.list(SlaveModel.select().order_by(SlaveModel.id))
        return [_slave_row(r) for r in rows]

    async def upsert_slave(self, host: str, port: int, status: int) -> SlaveRow:
        stamp = now()
        await self._db.aexecute(
            SlaveModel.insert(
                host=host,
                port=port,
                status=status,
                updated_at=stamp,
                down_since=None if status == STATUS_LIVE else stamp,
            ).on_conflict(
                conflict_target=[SlaveModel.host, SlaveModel.port],
                update={
                    SlaveModel.status: status,
                    SlaveModel.updated_at: stamp,
                    SlaveModel.down_since: _down_since(status),
                },
            )
        )
        model = await self._db.get(
            SlaveModel.select().where((SlaveModel.host == host) & (SlaveModel.port == port))
        )
        return _slave_row(model)

    async def update_slave(
        self, slave_id: int, status: int, methods: tuple[str, ...], last_error: str = ""
    ) -> None:
        await self._db.aexecute(
            SlaveModel.update(
                status=status,
                methods=json.dumps(list(methods)),
                last_error=last_error,
                updated_at=now(),
                down_since=_down_since(status),
            ).where(SlaveModel.id == slave_id)
        )

    async def down_since(self, cutoff: dt.datetime) -> dict[int, dt.datetime]:
        rows = await self._db.list(
            SlaveModel.select(SlaveModel.id, SlaveModel.down_since).where(
                (SlaveModel.status == STATUS_DOWN) & (SlaveModel.down_since < cutoff)
            )
        )
        return {row.id: row.down_since for row in rows}

    async def delete_down_slaves(self, ids: Sequence[int]) -> None:
        if ids:
            await self._db.aexecute(
                SlaveModel.delete().where(
                    SlaveModel.id.in_(list(ids)) & (SlaveModel.status == STATUS_DOWN)
                )
            )

    async def save_jobs(self, jobs: Sequence[JobRow]) -> None:
        # Hand-built multi-row statements: peewee's per-row SQL generation
        # ran on the event loop and cost more than the write itself.
        if not jobs:
            return
        async with self._db.atomic():
            for start, size in _chunks(len(jobs)):
                chunk = jobs[start : start + size]
                params: list[Any] = []
                for j in chunk:
                    params += (
                        j.id,
                        j.method,
                        json.dumps(j.params),
                        j.state,
                        j.slave,
                        j.result,
                        j.error_code,
                        j.error,
                        j.created_at,
                        j.started_at,
                        j.ended_at,
                    )
                values = ",".join([_JOB_ROW] * len(chunk))
                await self._db.aexecute_sql(f"{_JOB_INSERT} {values}", params)

    async def interrupt_unfinished(self, reason: str) -> int:
        count: int = await self._db.aexecute(
            JobModel.update(
                state="interrupted", error_code="ABORTED", error=reason, ended_at=now()
            ).where(JobModel.state.in_(["queued", "running"]))
        )
        return count

    async def get_job(self, job_id: str) -> JobRow | None:
        rows = await self._db.list(JobModel.select().where(JobModel.id == job_id))
        return _job_row(rows[0]) if rows else None

    async def close(self) -> None:
        await self._db.close_pool()
