"""Persistence of the slave list, behind a small ``Store`` protocol.

Only this module knows SQL. It uses peewee 4's asyncio layer
(``playhouse.pwasyncio``): queries run on aiosqlite's thread, so the event
loop never waits on the disk. Rows come back as plain dataclasses.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import peewee
from playhouse.pwasyncio import AsyncSqliteDatabase

from arko.common.errors import StartupError

STATUS_DOWN = 0
STATUS_LIVE = 1


@dataclass(frozen=True, slots=True)
class SlaveRow:
    """A stored slave. ``id`` grows with registration order, which the scheduler uses."""

    id: int
    host: str
    port: int
    status: int
    methods: tuple[str, ...]

    @property
    def address(self) -> str:
        """``host:port`` with IPv6 hosts bracketed, ready to dial."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Store(Protocol):
    """What the registry needs from persistence."""

    async def list_slaves(self) -> list[SlaveRow]:
        """Every stored slave, in registration order."""
        ...

    async def upsert_slave(self, host: str, port: int, status: int) -> SlaveRow:
        """Insert the slave or, if (host, port) exists, update it; one row either way."""
        ...

    async def update_slave(self, slave_id: int, status: int, methods: tuple[str, ...]) -> None:
        """Save a slave's liveness and method list."""
        ...

    async def close(self) -> None:
        """Release the database."""
        ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _SlaveModel(peewee.Model):
    id = peewee.AutoField()
    host = peewee.CharField()
    port = peewee.IntegerField()
    status = peewee.IntegerField(default=STATUS_DOWN)
    methods = peewee.TextField(default="[]")
    registered_at = peewee.DateTimeField(default=_now)
    updated_at = peewee.DateTimeField(default=_now)

    class Meta:
        table_name = "slave"
        indexes = ((("host", "port"), True),)


def _row(model: Any) -> SlaveRow:
    return SlaveRow(
        id=model.id,
        host=model.host,
        port=model.port,
        status=model.status,
        methods=tuple(json.loads(model.methods)),
    )


class SqliteStore:
    """``Store`` on a SQLite file (or ``:memory:`` for tests)."""

    def __init__(self, db: AsyncSqliteDatabase) -> None:
        self._db = db
        db.bind([_SlaveModel])

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        """Open (creating if needed) the database at ``path`` and its schema.

        Raises:
            StartupError: the file cannot be opened, written or is not a database.
        """
        db = AsyncSqliteDatabase(str(path), pragmas={"foreign_keys": 1})
        store = cls(db)
        try:
            await db.acreate_tables([_SlaveModel])
            await db.list(_SlaveModel.select().limit(1))
        except (peewee.DatabaseError, OSError) as exc:
            await store.close()
            raise StartupError(f"cannot use database {path}: {exc}") from None
        return store

    async def list_slaves(self) -> list[SlaveRow]:
        rows = await self._db.list(_SlaveModel.select().order_by(_SlaveModel.id))
        return [_row(r) for r in rows]

    async def upsert_slave(self, host: str, port: int, status: int) -> SlaveRow:
        now = _now()
        await self._db.aexecute(
            _SlaveModel.insert(host=host, port=port, status=status, updated_at=now).on_conflict(
                conflict_target=[_SlaveModel.host, _SlaveModel.port],
                update={_SlaveModel.status: status, _SlaveModel.updated_at: now},
            )
        )
        model = await self._db.get(
            _SlaveModel.select().where((_SlaveModel.host == host) & (_SlaveModel.port == port))
        )
        return _row(model)

    async def update_slave(self, slave_id: int, status: int, methods: tuple[str, ...]) -> None:
        await self._db.aexecute(
            _SlaveModel.update(
                status=status, methods=json.dumps(list(methods)), updated_at=_now()
            ).where(_SlaveModel.id == slave_id)
        )

    async def close(self) -> None:
        await self._db.close_pool()
