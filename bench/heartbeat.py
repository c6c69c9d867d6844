"""What one heartbeat's slave read costs a master sharing PostgreSQL, at fleet size.

Each heartbeat, a master on a shared database reads the slave table and
folds it into its registry (``Registry.sync``), so it learns of slaves that
other masters registered, pinged or forgot. It reads only the rows changed
since its last beat (``SlaveFeed.changes``) and folds only those; this phase
measures that in-process at ``mem_slaves`` slaves (10,000 in a full run),
nothing having changed since the last beat (the usual case). The baselines,
same run: the feed's read with every row folded in ("feed, all": what each
beat did before it folded only the changes), the whole table read on
PostgreSQL (``Store.list_slaves``, what each beat did before the feed) and on
a SQLite file of the same slaves, a read a single master never makes per
beat; the yardstick is the default ``--heartbeat_interval``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arko.master.cluster.coordination import SingleMaster
from arko.master.cluster.slave_feed import SlaveFeed
from arko.master.settings import MasterSettings
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.rows import SlaveRow
from arko.master.store.sql import PostgresStore, SqliteStore, open_store
from arko.testing import create_postgres_database, drop_postgres_database
from bench.config import BenchConfig

Say = Callable[[str], None]
METHODS = ("bench.v1.Build.Run", "bench.v1.Build.DryRun", "bench.v1.Build.Rollback")


class _Shared(SingleMaster):
    """One of several masters on the database, as far as a sync can tell."""

    @property
    def alone(self) -> bool:
        return False


Reader = Callable[[], Awaitable[tuple[list[SlaveRow], bool]]]


def _whole(source: PostgresStore | SqliteStore | SlaveFeed) -> Reader:
    """Every row at each beat, all folded in."""
    read = source.read if isinstance(source, SlaveFeed) else source.list_slaves

    async def whole() -> tuple[list[SlaveRow], bool]:
        return await read(), True

    return whole


def _changes(feed: SlaveFeed) -> Reader:
    """Only the rows changed since the last beat, only they folded in."""

    async def changes() -> tuple[list[SlaveRow], bool]:
        found = await feed.changes()
        return found.rows, found.complete

    return changes


async def _measure(db: str, slaves: int, repeats: int, feed: str | None) -> dict[str, float]:
    """Fill ``db`` with live slaves, then time ``repeats`` unchanged reads and
    syncs: of the whole table (``feed`` None), of the whole table as the feed
    keeps it ("whole"), or of the changes alone ("changes")."""
    store = await open_store(db)
    try:
        for i in range(slaves):
            row = await store.upsert_slave("127.0.0.1", 20000 + i, 1, f"nonce-{i}")
            await store.update_slave(row.id, 1, METHODS, "", {"pool": str(i % 4)}, 4)
        reader = _whole(store)
        if feed is not None:
            assert isinstance(store, PostgresStore)
            reader = _changes(SlaveFeed(store)) if feed == "changes" else _whole(SlaveFeed(store))
        registry = Registry(
            store, Prober(5.0), join_token="bench-token", name="bench0", coordinator=_Shared()
        )
        first, _ = await reader()
        registry.sync(first, frozenset())  # the first beat adds them all
        reads, syncs, cpus = [], [], []
        for _ in range(repeats):
            began, cpu = time.perf_counter(), time.process_time()
            rows, complete = await reader()
            read = time.perf_counter()
            registry.sync(rows, frozenset(), complete)
            syncs.append((time.perf_counter() - read) * 1000)
            reads.append((read - began) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
    finally:
        await store.close()
    return {
        "read_ms": statistics.median(reads),
        "sync_ms": statistics.median(syncs),
        "cpu_ms": statistics.median(cpus),
    }


def heartbeat_read(cfg: BenchConfig, workdir: Path, say: Say) -> dict[str, Any]:
    """The per-beat slave read and sync on SQLite and on PostgreSQL, ``cfg.mem_slaves`` slaves."""
    repeats = max(cfg.repeats, 3)
    result: dict[str, Any] = {"slaves": cfg.mem_slaves}
    say(f"heartbeat read: {cfg.mem_slaves} slaves on SQLite")
    sqlite = str(workdir / "heartbeat.db")
    result["sqlite"] = asyncio.run(_measure(sqlite, cfg.mem_slaves, repeats, feed=None))
    arms = (
        ("postgresql_whole", None),
        ("postgresql_feed_whole", "whole"),
        ("postgresql", "changes"),
    )
    for label, feed in arms:
        url = create_postgres_database()
        try:
            say(f"heartbeat read: {cfg.mem_slaves} slaves on PostgreSQL ({label})")
            result[label] = asyncio.run(_measure(url, cfg.mem_slaves, repeats, feed))
        finally:
            drop_postgres_database(url)
    result["interval_ms"] = MasterSettings.model_fields["heartbeat_interval"].default * 1000
    return result


def render(result: dict[str, Any]) -> str:
    """The per-beat cost as a few lines of text."""
    lines = [f"Heartbeat slave read ({result['slaves']:,} slaves, nothing changed, median)"]
    labels = {
        "sqlite": "SQLite, whole table",
        "postgresql_whole": "PostgreSQL, whole table",
        "postgresql_feed_whole": "PostgreSQL, feed, all",
        "postgresql": "PostgreSQL, changes",
    }
    for label, text in labels.items():
        if label not in result:  # runs before the feed's whole-table arm
            continue
        f = result[label]
        lines.append(
            f"  {text:<24} read {f['read_ms']:.1f} ms  sync {f['sync_ms']:.1f} ms  "
            f"CPU {f['cpu_ms']:.1f} ms"
        )
    pg = result["postgresql"]
    lines.append(
        f"  changes/whole table on PostgreSQL: "
        f"{pg['cpu_ms'] / result['postgresql_whole']['cpu_ms']:.2f}x CPU; "
        f"PostgreSQL/SQLite: {pg['cpu_ms'] / result['sqlite']['cpu_ms']:.2f}x CPU; "
        f"{pg['cpu_ms'] / result['interval_ms']:.1%} of one core at the default "
        f"--heartbeat_interval ({result['interval_ms'] / 1000:g} s), per master"
    )
    return "\n".join(lines)
