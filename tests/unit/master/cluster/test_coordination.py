"""The single-master coordinator answers as a master alone must, and fits the protocol."""

from __future__ import annotations

import asyncio

from arko.common.notifier import Notifier
from arko.master.cluster.coordination import ALONE, Coordinator, SingleMaster


class _Slaves:
    """A registry stand-in that records what a coordinator asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def sync(self, rows: object, owned: frozenset[int]) -> None:
        self.calls.append("sync")

    def disown(self) -> None:
        self.calls.append("disown")


def test_alone_has_no_name_and_owns_every_slave() -> None:
    """No other master: jobs carry no master name, and every slave is its own to ping."""
    coordinator: Coordinator = SingleMaster()
    assert coordinator.name is None
    assert coordinator.alone
    assert isinstance(ALONE, SingleMaster)

    async def scenario() -> None:
        assert await coordinator.claim(7) is True

    asyncio.run(scenario())


def test_alone_never_refuses_a_place_nor_waits() -> None:
    """max_concurrency is the job queue's own count: the place is always given,
    releasing it holds nothing, and waiting for one returns at once."""

    async def scenario() -> None:
        slot = await ALONE.try_slot("MyPipeline.Run", 1)
        assert slot is not None and slot.method == "MyPipeline.Run"
        again = await ALONE.try_slot("MyPipeline.Run", 1)  # the queue already counted
        assert again is not None
        await ALONE.release(slot)
        await asyncio.wait_for(ALONE.wait_for_slot(60), 1)

    asyncio.run(scenario())


def test_alone_tells_nobody_and_waits_for_nobody() -> None:
    """Saved notices, early commits, cancel requests and waits for another
    master's records are no-ops that return at once; the slaves are never synced."""

    async def scenario() -> None:
        slaves = _Slaves()
        await asyncio.wait_for(ALONE.join(slaves), 1)
        await asyncio.wait_for(ALONE.keep_in_step(slaves), 1)  # returns: nothing to do
        assert slaves.calls == []
        ALONE.saved(["a" * 32])
        await ALONE.commit_jobs([])
        await asyncio.wait_for(ALONE.wait_saved("a" * 32, 60), 1)
        await ALONE.ask_cancel("a" * 32, "someone")
        told: list[object] = []
        ALONE.on_cancel_asked(lambda job, by: told.append((job, by)))
        ALONE.on_slot_freed(lambda: told.append("slot"))
        assert told == []
        await ALONE.stop()
        await ALONE.stop()  # idempotent: nothing was held

    asyncio.run(scenario())


def test_the_postgres_coordinator_fits_the_protocol() -> None:
    """What mypy checks in app.py, said here too: PostgreSQL's coordinator is one."""
    from arko.master.cluster.postgres import PostgresCoordinator

    for name in (
        "name",
        "alone",
        "on_cancel_asked",
        "on_slot_freed",
        "join",
        "keep_in_step",
        "claim",
        "try_slot",
        "release",
        "wait_for_slot",
        "commit_jobs",
        "saved",
        "wait_saved",
        "ask_cancel",
        "stop",
    ):
        assert hasattr(SingleMaster, name), name
        assert name == "name" or hasattr(PostgresCoordinator, name), name
    assert PostgresCoordinator.alone is False


def test_a_notifier_tells_every_listener_in_order() -> None:
    """The change notices wiring uses: subscribers in order, with the notice's arguments."""
    heard: list[tuple[str, str]] = []
    notices: Notifier[[str, str]] = Notifier()
    notices("nobody", "listens")
    notices.subscribe(lambda job, by: heard.append(("first", job + by)))
    notices.subscribe(lambda job, by: heard.append(("second", job + by)))
    notices("j", "x")
    assert heard == [("first", "jx"), ("second", "jx")]
