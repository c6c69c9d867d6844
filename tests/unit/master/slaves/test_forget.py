"""Tests of forgetting long-dead slaves: the store's ``down_since`` and the registry's rule."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from arko.common.settings import load_settings
from arko.master.cluster.coordination import ALONE
from arko.master.settings import MasterSettings
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE
from arko.master.store.sql import SqliteStore
from tests.unit.master.coordinators import NotAlone

T = TypeVar("T")
DAY = 86400.0


def with_store(path: Path, body: Callable[[SqliteStore], Awaitable[T]]) -> T:
    """Open the store at ``path``, run ``body``, and always close it."""

    async def scenario() -> T:
        store = await SqliteStore.open(path)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(scenario())


def set_down_since(path: Path, port: int, when: dt.datetime) -> None:
    """Pretend the slave on ``port`` went down at ``when``."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE slave SET down_since = ? WHERE port = ?", (str(when), port))
        conn.commit()


def ports(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT port FROM slave ORDER BY id")]


def fleet_of_three(path: Path) -> None:
    """Slaves on ports 1 (live), 2 (down for two days) and 3 (down for an hour)."""

    async def body(store: SqliteStore) -> None:
        for port in (1, 2, 3):
            await store.upsert_slave("127.0.0.1", port, STATUS_LIVE)
        for row in (await store.list_slaves())[1:]:
            await store.update_slave(row.id, STATUS_DOWN, ("MyPipeline.Run",), "gone")

    with_store(path, body)
    now = dt.datetime.now(dt.UTC)
    set_down_since(path, 2, now - dt.timedelta(days=2))
    set_down_since(path, 3, now - dt.timedelta(hours=1))


def forget(path: Path, forget_after: float) -> list[int]:
    """Load a registry on ``path``, forget, and return the ports it still knows."""

    async def body(store: SqliteStore) -> list[int]:
        registry = Registry(store, Prober(1), forget_after=forget_after)
        await registry.load()
        await registry.forget_long_down()
        return [s.port for s in registry.slaves()]

    return with_store(path, body)


def test_default_is_a_day() -> None:
    """--forget_after defaults to one day."""
    assert load_settings(MasterSettings, []).forget_after == DAY


def test_slave_down_longer_than_forget_after_is_dropped(tmp_path: Path) -> None:
    """Down for two days with a one-day limit: gone from memory and store; the others stay."""
    path = tmp_path / "arko.db"
    fleet_of_three(path)
    assert forget(path, DAY) == [1, 3]
    assert ports(path) == [1, 3]


def test_zero_never_forgets(tmp_path: Path) -> None:
    """forget_after 0 keeps every slave, however long it has been down."""
    path = tmp_path / "arko.db"
    fleet_of_three(path)
    assert forget(path, 0) == [1, 2, 3]
    assert ports(path) == [1, 2, 3]


def test_forgotten_slave_no_longer_offers_its_methods(tmp_path: Path) -> None:
    """A forgotten slave leaves the method index too, so jobs never pick it."""
    path = tmp_path / "arko.db"
    fleet_of_three(path)

    async def body(store: SqliteStore) -> list[int]:
        registry = Registry(store, Prober(1), forget_after=DAY)
        await registry.load()
        await registry.forget_long_down()
        return [s.port for s in registry.offering("MyPipeline.Run")]

    assert with_store(path, body) == [3]


def test_down_since_is_when_it_first_went_down(tmp_path: Path) -> None:
    """Saving a down slave again keeps its first down time; registering again clears it."""
    path = tmp_path / "arko.db"
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    async def body(store: SqliteStore) -> list[dict[int, dt.datetime]]:
        row = await store.upsert_slave("127.0.0.1", 1, STATUS_LIVE)
        seen = [await store.down_since(future)]
        await store.update_slave(row.id, STATUS_DOWN, (), "gone")
        seen.append(await store.down_since(future))
        await store.update_slave(row.id, STATUS_DOWN, (), "still gone")
        seen.append(await store.down_since(future))
        await store.upsert_slave("127.0.0.1", 1, STATUS_LIVE)
        seen.append(await store.down_since(future))
        return seen

    live, down, still_down, back = with_store(path, body)
    assert (live, back) == ({}, {})
    assert list(down) == [1]
    assert still_down == down


def test_delete_keeps_a_slave_that_came_back(tmp_path: Path) -> None:
    """A slave live again by the time of the delete is not deleted."""
    path = tmp_path / "arko.db"

    async def body(store: SqliteStore) -> list[int]:
        back = await store.upsert_slave("127.0.0.1", 1, STATUS_LIVE)
        dead = await store.upsert_slave("127.0.0.1", 2, STATUS_DOWN)
        await store.delete_down_slaves([back.id, dead.id])
        return [s.port for s in await store.list_slaves()]

    assert with_store(path, body) == [1]


def test_upgrade_takes_a_down_slave_as_down_since_its_last_change(tmp_path: Path) -> None:
    """A version-2 database gets down_since from updated_at for slaves already down."""
    path = tmp_path / "arko.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            'CREATE TABLE "slave" ("id" INTEGER NOT NULL PRIMARY KEY, "host" VARCHAR(255) '
            'NOT NULL, "port" INTEGER NOT NULL, "status" INTEGER NOT NULL, "methods" TEXT '
            'NOT NULL, "registered_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL, '
            "\"last_error\" TEXT NOT NULL DEFAULT '')"
        )
        stamp = "2025-01-01 00:00:00+00:00"
        conn.executemany(
            "INSERT INTO slave VALUES (?, '127.0.0.1', ?, ?, '[]', ?, ?, '')",
            [(1, 1, STATUS_LIVE, stamp, stamp), (2, 2, STATUS_DOWN, stamp, stamp)],
        )
        conn.execute("CREATE TABLE job (id TEXT PRIMARY KEY)")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    assert forget(path, DAY) == [1]


@pytest.mark.parametrize("path", ["removed", "forgotten", "dropped"])
def test_every_way_out_leaves_the_method_index(tmp_path: Path, path: str) -> None:
    """Removed by an operator, forgotten, or gone from the shared database: the
    slave leaves the slave list and every method's list alike."""
    db = tmp_path / "arko.db"
    fleet_of_three(db)

    async def body(store: SqliteStore) -> tuple[list[int], list[int]]:
        coordinator = NotAlone() if path == "dropped" else ALONE
        registry = Registry(store, Prober(1), forget_after=DAY, coordinator=coordinator)
        await registry.load()
        if path == "removed":
            await registry.remove("127.0.0.1:2")
        elif path == "forgotten":
            await registry.forget_long_down()
        else:
            rows = [r for r in await store.list_slaves() if r.port != 2]
            registry.sync(rows, frozenset())
        return [s.port for s in registry.slaves()], [
            s.port for s in registry.offering("MyPipeline.Run")
        ]

    assert with_store(db, body) == ([1, 3], [3])
