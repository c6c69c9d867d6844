"""The ``Store`` in SQL, on SQLite (the default) or PostgreSQL.

:class:`SqliteStore` keeps a file beside the master (aiosqlite); :class:`PostgresStore`
uses a database the team already runs (asyncpg), which several masters may
share. Both run on peewee 4's asyncio layer (``playhouse.pwasyncio``) with the
same models (:mod:`arko.master.store.models`), queries and migrations
(:mod:`arko.master.store.migrations`), so the event loop never waits on the
database. :mod:`arko.master.cluster.postgres` holds the few statements only
several masters need. Rows go in and come back as the plain dataclasses of
:mod:`arko.master.store.rows`; job records are written with hand-built
multi-row statements, since peewee's per-row SQL generation cost more than the
write. SQLite runs in WAL mode with a busy timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, get_origin

import grpc
import peewee
import structlog
from playhouse.pwasyncio import AsyncDatabaseMixin, AsyncPostgresqlDatabase, AsyncSqliteDatabase

from arko.common.errors import ArkoError, InternalError, StartupError
from arko.master.jobs.state import UNFINISHED, JobState
from arko.master.store import migrations
from arko.master.store.errors import postgres_startup_error, sqlite_startup_error
from arko.master.store.models import (
    DeliveryModel,
    JobEventModel,
    JobModel,
    MasterModel,
    ScheduleSlotModel,
    SecretModel,
    SlaveModel,
)
from arko.master.store.private_files import make_private
from arko.master.store.rows import (
    JOB_FIELDS,
    JOB_TYPES,
    STATUS_DOWN,
    STATUS_LIVE,
    EventRow,
    JobFilter,
    JobRow,
    RecordRefused,
    SecretRow,
    SlaveRow,
    now,
)

log = structlog.get_logger("arko.master.store.sql")

PRAGMAS = {"journal_mode": "wal", "busy_timeout": 5000, "synchronous": "normal"}
# A job's columns are JobRow's fields, in order; dicts are stored as JSON text.
_JOB_GET = attrgetter(*JOB_FIELDS)
_JOB_JSON = tuple(i for i, name in enumerate(JOB_FIELDS) if get_origin(JOB_TYPES[name]) is dict)


def _column_reader(name: str) -> Callable[[Any], Any] | None:
    """What turns a job column, as the database gives it back, into the
    field's value (None: it is already)."""
    kind: Callable[[Any], Any] = JOB_TYPES[name]
    if get_origin(kind) is dict:
        return json.loads
    if kind in (JobState, bool):  # SQLite gives booleans back as integers
        return kind
    return None


_JOB_READ = tuple(_column_reader(name) for name in JOB_FIELDS)
_JOB_MODEL_COLUMNS = tuple(getattr(JobModel, name) for name in JOB_FIELDS)
_EVENT_COLUMNS = ("job_id", "seq", "kind", "time", "data")
_CHUNK = 256  # rows a statement: 4,352 variables at most, under SQLite's limit


def _upsert_sql(table: str, columns: tuple[str, ...], keys: tuple[str, ...], rows: int) -> str:
    """A multi-row insert that replaces rows with the same key (SQLite and PostgreSQL)."""
    names = ", ".join(f'"{c}"' for c in columns)
    row = "(" + ", ".join(["?"] * len(columns)) + ")"
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
    conflict = ", ".join(f'"{k}"' for k in keys)
    return (
        f'INSERT INTO "{table}" ({names}) VALUES {", ".join([row] * rows)} '
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def job_upsert(rows: Sequence[JobRow]) -> tuple[str, list[Any]]:
    """One PostgreSQL statement (``$n`` parameters) inserting or replacing job records,
    and its parameters: for a connection of its own (see :mod:`arko.master.cluster.postgres`)."""
    sql = _upsert_sql("job", JOB_FIELDS, ("id",), len(rows))
    count = 0

    def number(_: Any) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", number, sql), [v for row in rows for v in _job_values(row)]


def _chunks(count: int) -> list[tuple[int, int]]:
    """(start, size) pieces of ``count`` rows, each size a power of two.

    sqlite3 caches a prepared statement per distinct SQL text and connection;
    one text per batch size would fill that cache with large statements (tens
    of MB over a long run), while powers of two keep it to ten texts.
    """
    pieces, start = [], 0
    while start < count:
        size = min(_CHUNK, 1 << ((count - start).bit_length() - 1))
        pieces.append((start, size))
        start += size
    return pieces


# SQLite has one writer; each pooled aiosqlite connection costs a thread.
POOL_SIZE = 4
# PostgreSQL serves writers in parallel; a master rarely has more than this
# many statements in flight (the recorder's batch, a listing, registrations).
PG_POOL_SIZE = 8
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Column types on PostgreSQL: peewee's defaults would store times without a
# zone (asyncpg then refuses arko's UTC-aware datetimes) and floats in 4
# bytes (event times in seconds since 1970 would lose whole minutes).
PG_FIELD_TYPES = {"DATETIME": "TIMESTAMPTZ", "FLOAT": "DOUBLE PRECISION"}


def _on_disk(path: str) -> bool:
    """Whether ``path`` names a plain file (not ``:memory:`` nor a ``file:`` URI)."""
    return path not in ("", ":memory:") and not path.startswith("file:")


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


def _down_since(status: int) -> Any:
    """The new ``down_since`` of a slave saved with ``status``: kept while down, else NULL."""
    if status == STATUS_LIVE:
        return None
    return peewee.fn.COALESCE(SlaveModel.down_since, now())


def _slave_rows(rows: Iterable[tuple[Any, ...]]) -> list[SlaveRow]:
    """SlaveRows from plain tuples of the columns a SlaveRow needs: a master on
    a shared database reads many at each heartbeat, and building a model
    object per row was most of that cost."""
    return [
        SlaveRow(id, host, port, status, tuple(json.loads(methods)), nonce, json.loads(labels), cap)
        for id, host, port, status, methods, nonce, labels, cap in rows
    ]


def _slave_row(model: Any) -> SlaveRow:
    return SlaveRow(
        id=model.id,
        host=model.host,
        port=model.port,
        status=model.status,
        methods=tuple(json.loads(model.methods)),
        call_nonce=model.call_nonce,
        labels=json.loads(model.labels),
        capacity=model.capacity,
    )


def _job_rows(rows: Iterable[tuple[Any, ...]]) -> list[JobRow]:
    """JobRows from tuples of the job columns, in order."""
    read = _JOB_READ
    return [
        JobRow(*[v if f is None else f(v) for f, v in zip(read, row, strict=True)]) for row in rows
    ]


def _secret_rows(models: Iterable[Any]) -> list[SecretRow]:
    return [
        SecretRow(
            m.name,
            m.sealed,
            tuple(json.loads(m.methods)),
            _aware(m.created_at),
            _aware(m.updated_at),
        )
        for m in models
    ]


def _aware(stamp: dt.datetime) -> dt.datetime:
    """A stored time in UTC: SQLite gives it back without its zone."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


# PostgreSQL text cannot hold NUL (U+0000), which a caller's method name or a
# slave's reply, error or output may carry. It is stored as U+FFFD on both
# databases: a record reads the same on either, and one such record never
# fails the batch (or the first write) it belongs to.
_NUL, _NUL_STANDIN = "\x00", "\ufffd"


def _storable(text: str) -> str:
    """``text`` with every NUL replaced by U+FFFD, so any database keeps it."""
    return text.replace(_NUL, _NUL_STANDIN) if _NUL in text else text


def _storable_values(values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_storable(v) if isinstance(v, str) else v for v in values)


def _job_values(j: JobRow) -> tuple[Any, ...]:
    values = list(_JOB_GET(j))
    for i in _JOB_JSON:
        values[i] = json.dumps(values[i])
    return _storable_values(values)


def _event_values(e: EventRow) -> tuple[Any, ...]:
    return _storable_values((e.job_id, e.seq, e.kind, e.time, e.data))


def is_postgres(db: str) -> bool:
    """Whether the master's ``--db`` names a PostgreSQL database (a URL) rather than a file."""
    return urllib.parse.urlsplit(db).scheme in POSTGRES_SCHEMES


def shown_url(db: str) -> str:
    """``db`` as logs and errors may show it: any password replaced."""
    parts = urllib.parse.urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def open_store(db: str | Path) -> SqliteStore | PostgresStore:
    """The store ``--db`` names: a ``postgresql://`` URL, else a SQLite file.

    Raises:
        StartupError: the database cannot be used (the message says why).
    """
    if isinstance(db, str) and is_postgres(db):
        return await PostgresStore.open(db)
    return await SqliteStore.open(db)


def pg_options(url: str) -> tuple[str, dict[str, Any]]:
    """(database name, asyncpg connect options) of a ``postgresql://`` URL.

    Raises:
        StartupError: a malformed URL, or asyncpg is not installed.
    """
    shown = shown_url(url)
    if importlib.util.find_spec("asyncpg") is None:
        raise StartupError(
            f"cannot use database {shown}: PostgreSQL needs asyncpg "
            "(pip install 'arko-ci[postgres]')"
        )
    parts = urllib.parse.urlsplit(url)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    try:
        port = parts.port
    except ValueError:
        raise StartupError(f"cannot use database {shown}: the port is not a number") from None
    if not name or "/" in name:
        raise StartupError(f"cannot use database {shown}: name the database after the host")
    options = {
        key: value
        for key, value in {
            "host": parts.hostname,
            "port": port,
            "user": urllib.parse.unquote(parts.username or "") or None,
            "password": urllib.parse.unquote(parts.password or "") or None,
        }.items()
        if value is not None
    }
    return name, options


# One statement, so one snapshot: the horizon, the count and the rows agree.
_CHANGES_SQL = (
    "SELECT h.horizon, h.total, s.id, s.host, s.port, s.status, s.methods, s.call_nonce, "
    "s.labels, s.capacity FROM (SELECT txid_snapshot_xmin(txid_current_snapshot()) AS horizon, "
    '(SELECT count(*) FROM "slave") AS total) AS h '
    'LEFT JOIN "slave" AS s ON s.changed >= ? ORDER BY s.id'
)


@dataclass(frozen=True, slots=True)
class SlaveChanges:
    """What :meth:`PostgresStore.slave_changes` read."""

    rows: list[SlaveRow]
    total: int
    horizon: int


class BackupUnsupported(ArkoError):
    """The database cannot be copied by the master (it is not a SQLite file)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DatabaseStore:
    """``Store`` on any database peewee's asyncio layer speaks; subclasses open one."""

    def __init__(self, db: AsyncDatabaseMixin) -> None:
        self._db = db
        db.bind(
            [
                SlaveModel,
                JobModel,
                JobEventModel,
                MasterModel,
                SecretModel,
                DeliveryModel,
                ScheduleSlotModel,
            ]
        )

    async def _prepare(
        self,
        shown: str,
        failed: Callable[[BaseException], StartupError],
        driver_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Upgrade the schema and read once; on failure release the pool and say why.

        Args:
            shown: The database as errors name it.
            failed: The start-up error, naming cause and fix, for a database error.
            driver_errors: What the driver raises unwrapped (asyncpg's own
                errors reach here as they are, peewee's asyncio layer does
                not wrap them).
        """
        errors: tuple[type[BaseException], ...] = (
            peewee.DatabaseError,
            peewee.InterfaceError,
            OSError,
            *driver_errors,
        )
        try:
            await self._db.run(migrations.upgrade, self._db)
            await self._db.list(SlaveModel.select().limit(1))
        except errors as exc:
            await self.close()
            raise failed(exc) from None
        except migrations.SchemaTooNew as exc:
            await self.close()
            raise StartupError(f"cannot use database {shown}: {exc}") from None

    # What each write of a slave's shared fields stores in ``changed``: on
    # SQLite a constant, since one master has the file to itself and no
    # other master follows its changes.
    _CHANGE: Any = 0

    async def list_slaves(self) -> list[SlaveRow]:
        m = SlaveModel
        query = m.select(
            m.id, m.host, m.port, m.status, m.methods, m.call_nonce, m.labels, m.capacity
        )
        return _slave_rows(await self._db.list(query.order_by(m.id).tuples()))

    async def upsert_slave(
        self, host: str, port: int, status: int, call_nonce: str = ""
    ) -> SlaveRow:
        stamp = now()
        update: dict[Any, Any] = {
            SlaveModel.status: status,
            SlaveModel.updated_at: stamp,
            SlaveModel.down_since: _down_since(status),
        }
        if call_nonce:
            update[SlaveModel.call_nonce] = call_nonce
        update[SlaveModel.changed] = self._CHANGE
        await self._db.aexecute(
            SlaveModel.insert(
                host=host,
                port=port,
                status=status,
                updated_at=stamp,
                down_since=None if status == STATUS_LIVE else stamp,
                call_nonce=call_nonce,
                changed=self._CHANGE,
            ).on_conflict(conflict_target=[SlaveModel.host, SlaveModel.port], update=update)
        )
        model = await self._db.get(
            SlaveModel.select().where((SlaveModel.host == host) & (SlaveModel.port == port))
        )
        return _slave_row(model)

    async def update_slave(
        self,
        slave_id: int,
        status: int,
        methods: tuple[str, ...],
        last_error: str = "",
        labels: Mapping[str, str] | None = None,
        capacity: int | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "methods": json.dumps(list(methods)),
            "last_error": _storable(last_error),
            "updated_at": now(),
            "down_since": _down_since(status),
            "changed": self._CHANGE,
        }
        if labels is not None:
            values["labels"] = json.dumps(dict(labels), sort_keys=True)
        if capacity is not None:
            values["capacity"] = capacity
        await self._db.aexecute(SlaveModel.update(**values).where(SlaveModel.id == slave_id))

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

    async def delete_slave(self, slave_id: int) -> None:
        await self._db.aexecute(SlaveModel.delete().where(SlaveModel.id == slave_id))

    async def save_jobs(self, jobs: Sequence[JobRow], events: Sequence[EventRow] = ()) -> None:
        # Hand-built multi-row statements: peewee's per-row SQL generation
        # ran on the event loop and cost more than the write itself.
        if not jobs and not events:
            return
        try:
            async with self._db.atomic():
                await self._upsert("job", JOB_FIELDS, ("id",), [_job_values(j) for j in jobs])
                await self._upsert(
                    "job_event",
                    _EVENT_COLUMNS,
                    ("job_id", "seq"),
                    [_event_values(e) for e in events],
                )
        except (peewee.DataError, peewee.IntegrityError) as exc:
            raise RecordRefused(str(exc)) from exc

    async def _upsert(
        self,
        table: str,
        columns: tuple[str, ...],
        keys: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> None:
        for start, size in _chunks(len(rows)):
            params = [value for row in rows[start : start + size] for value in row]
            sql = _upsert_sql(table, columns, keys, size).replace("?", self._db.param)
            await self._db.aexecute_sql(sql, params)

    async def list_jobs(self, query: JobFilter) -> list[JobRow]:
        select = JobModel.select(*_JOB_MODEL_COLUMNS)
        if query.method:
            select = select.where(JobModel.method == query.method)
        if query.parent_id:
            select = select.where(JobModel.parent_id == query.parent_id)
        if query.trigger:
            select = select.where(JobModel.trigger == query.trigger)
        if query.states:
            select = select.where(JobModel.state.in_(list(query.states)))
        if query.after is not None:
            stamp, job_id = query.after
            select = select.where(
                (JobModel.created_at < stamp)
                | ((JobModel.created_at == stamp) & (JobModel.id < job_id))
            )
        select = select.order_by(JobModel.created_at.desc(), JobModel.id.desc())
        return _job_rows(await self._db.list(select.limit(query.limit).tuples()))

    async def list_events(self, job_id: str, from_seq: int, limit: int) -> list[EventRow]:
        rows = await self._db.list(
            JobEventModel.select()
            .where((JobEventModel.job_id == job_id) & (JobEventModel.seq >= from_seq))
            .order_by(JobEventModel.seq)
            .limit(limit)
        )
        return [EventRow(r.job_id, r.seq, r.kind, r.time, r.data) for r in rows]

    async def interrupt_unfinished(self, reason: str, master: str | None = None) -> int:
        unfinished = JobModel.state.in_(sorted(UNFINISHED))
        if master is not None:
            unfinished &= JobModel.master == master
        count: int = await self._db.aexecute(
            JobModel.update(
                state=JobState.INTERRUPTED, error_code="ABORTED", error=reason, ended_at=now()
            ).where(unfinished)
        )
        return count

    async def get_job(self, job_id: str) -> JobRow | None:
        select = JobModel.select(*_JOB_MODEL_COLUMNS).where(JobModel.id == job_id)
        rows = _job_rows(await self._db.list(select.tuples()))
        return rows[0] if rows else None

    async def put_secret(self, name: str, sealed: str, methods: Sequence[str]) -> SecretRow:
        stamp = now()
        globs = json.dumps(list(methods))
        m = SecretModel
        await self._db.aexecute(
            m.insert(
                name=name, sealed=sealed, methods=globs, created_at=stamp, updated_at=stamp
            ).on_conflict(
                conflict_target=[m.name],
                update={m.sealed: sealed, m.methods: globs, m.updated_at: stamp},
            )
        )
        return (await self.get_secrets([name]))[0]

    async def list_secrets(self) -> list[SecretRow]:
        return _secret_rows(await self._db.list(SecretModel.select().order_by(SecretModel.name)))

    async def get_secrets(self, names: Sequence[str]) -> list[SecretRow]:
        if not names:
            return []
        m = SecretModel
        query = m.select().where(m.name.in_(list(names))).order_by(m.name)
        return _secret_rows(await self._db.list(query))

    async def delete_secret(self, name: str) -> bool:
        count: int = await self._db.aexecute(SecretModel.delete().where(SecretModel.name == name))
        return count > 0

    # -- triggers and schedules: one row claims a delivery or a slot ------

    async def claim_delivery(self, trigger: str, delivery: str) -> str | None:
        """Claim a webhook delivery for this caller; None when claimed, else the
        job id the first claim recorded ("" while that one is still starting).

        Insert-or-nothing on the (trigger, delivery) key: of masters sharing
        the database, exactly one insert lands. A claim is one round trip; only
        a redelivery reads the row.
        """
        m = DeliveryModel
        inserted = await self._db.list(
            m.insert(trigger=trigger, delivery=delivery, received_at=now())
            .on_conflict_ignore()
            .returning(m.trigger)
        )
        if inserted:
            return None
        rows = await self._db.list(
            m.select(m.job_id).where((m.trigger == trigger) & (m.delivery == delivery)).tuples()
        )
        return str(rows[0][0]) if rows else ""

    async def delivery_started(self, trigger: str, delivery: str, job_id: str) -> None:
        """Record the job a claimed delivery started."""
        m = DeliveryModel
        await self._db.aexecute(
            m.update(job_id=job_id).where((m.trigger == trigger) & (m.delivery == delivery))
        )

    async def release_delivery(self, trigger: str, delivery: str) -> None:
        """Forget a claimed delivery that started no job, so its redelivery may."""
        m = DeliveryModel
        await self._db.aexecute(
            m.delete().where((m.trigger == trigger) & (m.delivery == delivery) & (m.job_id == ""))
        )

    async def claim_slot(self, schedule: str, slot: dt.datetime, master: str) -> bool:
        """Whether this master fires ``schedule`` at ``slot``: the first to claim it does."""
        m = ScheduleSlotModel
        inserted = await self._db.list(
            m.insert(schedule=schedule, slot=slot, master=master, fired_at=now())
            .on_conflict_ignore()
            .returning(m.schedule)
        )
        return bool(inserted)

    async def close(self) -> None:
        await self._db.close_pool()


class SqliteStore(DatabaseStore):
    """``Store`` on a SQLite file (or ``:memory:`` for tests)."""

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and upgrade its schema.

        Raises:
            StartupError: the file cannot be opened or written, is not a
                database, or was made by a newer arko.
        """
        file = Path(path) if _on_disk(str(path)) else None
        try:
            # A new file is made 0600 before SQLite makes it 0644; an existing
            # one is checked first, so a folder or a damaged file is named as
            # such and left as it was.
            if file is not None and not file.exists() and file.parent.is_dir():
                await asyncio.to_thread(make_private, file)
            await asyncio.to_thread(_check_file, str(path))
            if file is not None:
                done = await asyncio.to_thread(make_private, file)
                for loose in done.changed:
                    log.warning("database_mode_tightened", file=str(loose), mode="0600")
                for loose in done.refused:
                    log.warning(
                        "database_readable_by_others",
                        file=str(loose),
                        hint="not this user's file, so its mode is left; chmod 600 it",
                    )
        except OSError as exc:
            raise StartupError(f"cannot use database {path}: {exc.strerror}") from None
        except sqlite3.Error as exc:
            raise sqlite_startup_error(exc, str(path)) from None
        store = cls(AsyncSqliteDatabase(str(path), pragmas=PRAGMAS, pool_size=POOL_SIZE))
        await store._prepare(str(path), lambda exc: sqlite_startup_error(exc, str(path)))
        return store

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the database to ``target`` (a new file).

        SQLite's online backup API on a connection of its own, in one step:
        the copy is one snapshot even while jobs are written (WAL lets the
        writer go on meanwhile), and it runs on a thread, not the event loop.

        Raises:
            InternalError: the database is in memory, or the copy failed.
        """
        source = str(self._db.database)
        if source in ("", ":memory:") or source.startswith("file::memory:"):
            raise InternalError("an in-memory database has no file to back up")

        def copy() -> None:
            src, dst = sqlite3.connect(source), sqlite3.connect(target)
            try:
                src.execute("PRAGMA busy_timeout = 5000")
                src.backup(dst)
            finally:
                dst.close()
                src.close()

        try:
            await asyncio.to_thread(copy)
        except sqlite3.Error as exc:
            raise InternalError(f"backup of {source} failed: {exc}") from None


class PostgresStore(DatabaseStore):
    """``Store`` on a PostgreSQL database, named by a ``postgresql://user@host:port/name`` URL."""

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect, create or upgrade the schema (one master at a time), and check a read.

        Raises:
            StartupError: a malformed URL, an unreachable or refusing server, a
                missing database, or a schema made by a newer arko.
        """
        name, options = pg_options(url)
        import asyncpg  # present: pg_options checked; an optional extra, so imported here

        db = AsyncPostgresqlDatabase(
            name, pool_size=PG_POOL_SIZE, field_types=PG_FIELD_TYPES, **options
        )
        store = cls(db)
        shown = shown_url(url)
        await store._prepare(
            shown,
            lambda exc: postgres_startup_error(exc, url, shown),
            (asyncpg.PostgresError, asyncpg.InterfaceError),
        )
        return store

    # The writing transaction's id, epoch-extended so it never wraps.
    _CHANGE = peewee.fn.txid_current()

    async def slave_changes(self, since: int) -> SlaveChanges:
        """The slaves changed by transactions ``since`` or later, with the
        table's size and the ``since`` of the next read, all of one snapshot.

        The next read starts at this snapshot's oldest transaction still
        running, not at the newest row seen: a transaction with a smaller id
        may commit after this read, and must not be missed.
        """
        sql = _CHANGES_SQL.replace("?", self._db.param)
        cursor = await self._db.aexecute_sql(sql, (since,))
        rows = cursor.fetchall()
        horizon, total = rows[0][0], rows[0][1]
        changed = _slave_rows(row[2:] for row in rows if row[2] is not None)
        return SlaveChanges(changed, int(total), int(horizon))

    async def backup(self, target: Path) -> None:
        """Refused: PostgreSQL has its own tools for a consistent copy.

        Raises:
            BackupUnsupported: always, naming them.
        """
        raise BackupUnsupported(
            "Admin/Backup copies a SQLite database; this master is on PostgreSQL: "
            "back it up with pg_dump (or the server's own backups)"
        )
