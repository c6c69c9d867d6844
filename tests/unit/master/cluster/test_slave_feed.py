"""SlaveFeed: the shared slave table followed by its changes, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import pytest

from arko.master.cluster.slave_feed import SlaveFeed
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE
from arko.master.store.sql import PostgresStore, open_store
from tests.postgres import fresh_database


@pytest.fixture
def pg() -> Iterator[str]:
    yield from fresh_database()


def _run(pg: str, body: Callable[[PostgresStore], Awaitable[None]]) -> None:
    async def scenario() -> None:
        store = await open_store(pg)
        assert isinstance(store, PostgresStore)
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_feed_reads_what_the_whole_table_holds(pg: str) -> None:
    """After registrations, status changes and forgotten slaves, each read
    equals a read of the whole table."""

    async def body(store: PostgresStore) -> None:
        feed = SlaveFeed(store)
        assert await feed.read() == []
        rows = [await store.upsert_slave("127.0.0.1", port, STATUS_LIVE) for port in (1, 2, 3)]
        assert await feed.read() == await store.list_slaves()
        await store.update_slave(rows[1].id, STATUS_DOWN, ("A.B",), "gone", {"pool": "x"}, 2)
        assert await feed.read() == await store.list_slaves()
        await store.delete_slave(rows[0].id)
        await store.upsert_slave("127.0.0.1", 4, STATUS_LIVE, "nonce")
        kept = await feed.read()
        assert kept == await store.list_slaves()
        assert [r.port for r in kept] == [2, 3, 4]
        assert kept[0].methods == ("A.B",) and kept[0].labels == {"pool": "x"}
        assert kept[2].call_nonce == "nonce"

    _run(pg, body)


def test_a_change_committed_after_a_read_that_began_first_is_not_missed(pg: str) -> None:
    """A writer whose transaction is older than the read commits after it: the
    next read still brings its change (it starts at the oldest running one)."""

    async def body(store: PostgresStore) -> None:
        row = await store.upsert_slave("127.0.0.1", 1, STATUS_LIVE)
        feed = SlaveFeed(store)
        await feed.read()
        writer = await asyncpg.connect(pg)
        try:
            async with writer.transaction():
                await writer.execute(
                    'UPDATE "slave" SET status = $1, changed = txid_current() WHERE id = $2',
                    STATUS_DOWN,
                    row.id,
                )
                await store.upsert_slave("127.0.0.1", 2, STATUS_LIVE)  # a newer one, committed
                (first, second) = await feed.read()
                assert first.status == STATUS_LIVE and second.port == 2
        finally:
            await writer.close()
        (first, _) = await feed.read()
        assert first.status == STATUS_DOWN

    _run(pg, body)
