"""Several masters on a real PostgreSQL: leases, takeover, fleet-wide places, notices.

Several ``PostgresCoordinator`` objects on one fresh database stand for several masters;
no daemon is started, so each rule is checked on its own and quickly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from arko.common.errors import Unavailable
from arko.master.cluster.postgres import PostgresCoordinator
from arko.master.cluster.slave_feed import SlaveFeed
from arko.master.store.rows import STATUS_LIVE, JobRow
from arko.master.store.sql import PostgresStore, open_store
from tests.postgres import fresh_database

Make = Callable[..., PostgresCoordinator]


@pytest.fixture
def pg() -> Iterator[str]:
    yield from fresh_database()


def _run(pg: str, body: Callable[[PostgresStore, Make], Awaitable[None]]) -> None:
    """Run ``body`` with a store on ``pg`` and a maker of fleets; close them all after."""

    async def scenario() -> None:
        store = await open_store(pg)
        assert isinstance(store, PostgresStore)
        made: list[PostgresCoordinator] = []

        def make(name: str, timeout: float = 10.0) -> PostgresCoordinator:
            made.append(PostgresCoordinator(pg, name, f"{name}:1", timeout, SlaveFeed(store)))
            return made[-1]

        try:
            await body(store, make)
        finally:
            for fleet in made:
                await fleet.close()
            await store.close()

    asyncio.run(scenario())


async def _slaves(store: PostgresStore, count: int) -> None:
    for port in range(20000, 20000 + count):
        await store.upsert_slave("127.0.0.1", port, STATUS_LIVE)


def test_slaves_are_shared_out_one_owner_each(pg: str) -> None:
    """Three masters over ten slaves: every slave has exactly one owner, the
    shares differ by one at most (4, 3, 3), and a master that joins later gets
    its share within a few beats."""

    async def body(store: PostgresStore, fleets: Make) -> None:
        await _slaves(store, 10)
        a, b, c = fleets("a"), fleets("b"), fleets("c")
        for fleet in (a, b):
            await fleet.open()
        first = await a.beat()
        assert len(first.owned) == 10  # alone so far: it takes all
        await b.beat()
        await c.open()
        for _ in range(3):
            beats = [await f.beat() for f in (a, b, c)]
        owned = [set(beat.owned) for beat in beats]
        assert sorted(len(o) for o in owned) == [3, 3, 4], owned
        assert set.union(*owned) == {s.id for s in await store.list_slaves()}
        assert sum(len(o) for o in owned) == 10  # nobody shares a slave

    _run(pg, body)


def test_a_silent_master_is_taken_over_once(pg: str) -> None:
    """A master that stops beating loses its jobs (INTERRUPTED) and its leases to one
    survivor, after master_timeout; a live master's jobs are left alone."""

    async def body(store: PostgresStore, fleets: Make) -> None:
        await _slaves(store, 4)
        dead, live, other = fleets("dead", 0.5), fleets("live", 0.5), fleets("other", 0.5)
        for fleet in (dead, live, other):
            await fleet.open()
            await fleet.beat()
        stamp = dt.datetime.now(dt.UTC)
        await store.save_jobs(
            [
                JobRow(
                    id="a" * 32,
                    method="M",
                    params={},
                    state="running",
                    created_at=stamp,
                    master="dead",
                ),
                JobRow(
                    id="b" * 32,
                    method="M",
                    params={},
                    state="queued",
                    created_at=stamp,
                    master="dead",
                ),
                JobRow(
                    id="c" * 32,
                    method="M",
                    params={},
                    state="succeeded",
                    created_at=stamp,
                    master="dead",
                ),
                JobRow(
                    id="d" * 32,
                    method="M",
                    params={},
                    state="running",
                    created_at=stamp,
                    master="live",
                ),
            ]
        )
        for _ in range(4):  # "dead" says nothing more; the two others go on beating
            await asyncio.sleep(0.2)
            beats = await asyncio.gather(live.beat(), other.beat())
            if any(b.taken_over for b in beats):
                break
        assert sorted(n for b in beats for n in b.taken_over) == ["dead"]
        assert sum(b.interrupted for b in beats) == 2
        states = {j: (await store.get_job(j * 32)) for j in "abcd"}
        assert {j: r.state for j, r in states.items() if r} == {
            "a": "interrupted",
            "b": "interrupted",
            "c": "succeeded",
            "d": "running",
        }
        assert "taken over by" in states["a"].error  # type: ignore[union-attr]
        again = [await f.beat() for f in (live, other)]
        assert sorted(len(b.owned) for b in again) == [2, 2]

    _run(pg, body)


def test_max_concurrency_places_are_fleet_wide_and_freed_with_the_connection(pg: str) -> None:
    """Two places of a method across two masters: a third is refused until one is
    released or its master's connection closes (a crash); the others are told."""

    async def body(store: PostgresStore, fleets: Make) -> None:
        a, b = fleets("a"), fleets("b")
        await a.open()
        await b.open()
        first = await a.try_slot("Deploy.Run", 2)
        second = await b.try_slot("Deploy.Run", 2)
        assert first is not None and second is not None
        assert (first.index, second.index) == (0, 1)
        assert await a.try_slot("Deploy.Run", 2) is None
        assert await b.try_slot("Other.Run", 1) is not None  # methods do not share places
        waiting = asyncio.create_task(b.wait_for_slot(5))
        await asyncio.sleep(0.1)
        await a.release(first)
        await asyncio.wait_for(waiting, 2)  # woken by the notice, not the timeout
        third = await b.try_slot("Deploy.Run", 2)
        assert third is not None and third.index == 0
        await b.close()  # b "dies" holding both places: the server frees them
        assert await a.try_slot("Deploy.Run", 2) is not None

    _run(pg, body)


async def _end_place_holders_session(pg: str) -> None:
    """Have the server end the session holding the database's one advisory lock."""
    conn = await asyncpg.connect(pg)
    try:
        (holder,) = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", holder["pid"])
        for _ in range(100):  # until the server has ended it: at most 5 s
            query = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
            if not await conn.fetchval(query, holder["pid"]):
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


class _SaidGoodbye:
    """A session that has read the server's last error but not yet the end of
    the stream: asyncpg then says it is open, yet refuses every query with
    InternalClientError. The race behind a CI failure, made certain here."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._terminated = False

    def is_closed(self) -> bool:
        return self._terminated

    async def execute(self, *_args: object, **_kwargs: object) -> str:
        raise asyncpg.InternalClientError(
            "cannot switch to state 14; another operation (2) is in progress"
        )

    fetchval = execute

    def terminate(self) -> None:
        self._terminated = True
        self._conn.terminate()


@pytest.mark.parametrize("seen", ["closed", "half-closed"])
def test_a_lost_session_takes_its_running_jobs_places_back(pg: str, seen: str) -> None:
    """The server frees a dropped session's places while their jobs still run;
    the next beat's new session locks them again, so neither this master nor
    another hands them out. That holds whether the beat finds the session
    closed, or still seemingly open but refusing queries."""

    async def body(store: PostgresStore, fleets: Make) -> None:
        a, b = fleets("a"), fleets("b")
        await a.open()
        await b.open()
        held = await a.try_slot("Deploy.Run", 1)
        assert held is not None
        await _end_place_holders_session(pg)
        if seen == "half-closed":
            a._session = _SaidGoodbye(a._session)
            with pytest.raises(Unavailable, match=r"Deploy\.Build"):
                await a.try_slot("Deploy.Build", 1)
            assert not await a.claim(1)
            with pytest.raises(Unavailable, match="cancel"):
                await a.ask_cancel("f" * 32, "ops")
        with capture_logs() as logs:
            await a.beat()  # finds the session lost, and opens another
        assert [x["places_held"] for x in logs if x["event"] == "fleet_session_lost"] == [1]
        assert await b.try_slot("Deploy.Run", 1) is None
        assert await a.try_slot("Deploy.Run", 1) is None
        await a.release(held)
        assert await b.try_slot("Deploy.Run", 1) is not None

    _run(pg, body)


def test_saved_and_cancel_notices_reach_other_masters(pg: str) -> None:
    """A master waiting on another's job wakes when that one writes it; a cancel
    request reaches the master that runs the job."""

    async def body(store: PostgresStore, fleets: Make) -> None:
        a, b = fleets("a"), fleets("b")
        await a.open()
        await b.open()
        cancels: list[tuple[str, str]] = []
        a.on_cancel_asked(lambda job, by: cancels.append((job, by)))
        waiting = asyncio.create_task(b.wait_saved("f" * 32, 5))
        await asyncio.sleep(0.1)
        await a.announce_saved(["e" * 32, "f" * 32])
        await asyncio.wait_for(waiting, 2)
        await b.ask_cancel("f" * 32, "ops on b")
        for _ in range(50):
            if cancels:
                break
            await asyncio.sleep(0.02)
        assert cancels == [("f" * 32, "ops on b")]

    _run(pg, body)
