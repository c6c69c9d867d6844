"""Tests of arko.master.jobs.queue.JobQueue and the least_loaded scheduler, with a fake store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from arko.common.errors import NoLiveSlave
from arko.master.jobs.queue import JobQueue, NoMatchingSlave, QueueTimeout
from arko.master.jobs.scheduler import FirstLiveScheduler, LeastLoadedScheduler, Scheduler
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.rows import STATUS_LIVE, SlaveRow
from arko.slave.capacity import parse_labels

RUN = "MyPipeline.Run"


class FakeStore:
    """Just enough of ``Store`` for ``Registry.load``."""

    def __init__(self, rows: Sequence[SlaveRow]) -> None:
        self.rows = list(rows)

    async def list_slaves(self) -> list[SlaveRow]:
        return self.rows


async def _fleet(
    capacities: Sequence[int], scheduler: Scheduler | None = None, timeout: float = 5
) -> tuple[JobQueue, list[Slave]]:
    """A queue over live slaves of these capacities, offering RUN."""
    rows = [
        SlaveRow(n + 1, "127.0.0.1", n + 1, STATUS_LIVE, (RUN,)) for n in range(len(capacities))
    ]
    registry = Registry(FakeStore(rows), Prober(1))  # type: ignore[arg-type]
    await registry.load()
    slaves = list(registry.slaves())
    for slave, capacity in zip(slaves, capacities, strict=True):
        slave.pending, slave.capacity = False, capacity
    return JobQueue(registry, scheduler or FirstLiveScheduler(), timeout), slaves


def _never() -> None:
    raise AssertionError("queued, but a place was free")


def test_waiters_are_served_in_order_when_places_come_back() -> None:
    """Three jobs wait on a full slave; each place given back goes to the oldest waiter."""

    async def scenario() -> list[int]:
        queue, (slave,) = await _fleet([1])
        first = await queue.take(RUN, {}, _never, {})
        served: list[int] = []

        async def job(n: int) -> None:
            taken = await queue.take(RUN, {}, lambda: None, {})
            served.append(n)
            await asyncio.sleep(0)
            queue.give_back(taken, RUN)

        tasks = [asyncio.create_task(job(n)) for n in range(3)]
        await asyncio.sleep(0)
        assert queue.waiting == 3 and slave.running == 1
        queue.give_back(first, RUN)
        await asyncio.gather(*tasks)
        assert slave.running == 0 and queue.running(RUN) == 0
        return served

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_cancelled_waiter_leaves_the_queue_and_keeps_no_place() -> None:
    """A waiter cancelled just after it was handed a place gives the place back."""

    async def scenario() -> None:
        queue, (slave,) = await _fleet([1])
        first = await queue.take(RUN, {}, _never, {})
        waiter = asyncio.create_task(queue.take(RUN, {}, lambda: None, {}))
        await asyncio.sleep(0)
        queue.give_back(first, RUN)  # handed to the waiter ...
        waiter.cancel()  # ... which goes away before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert queue.waiting == 0 and slave.running == 0

    asyncio.run(scenario())


def test_queue_timeout_names_the_method_and_the_wait() -> None:
    async def scenario() -> QueueTimeout:
        queue, _ = await _fleet([1], timeout=0.05)
        await queue.take(RUN, {}, _never, {})
        with pytest.raises(QueueTimeout) as caught:
            await queue.take(RUN, {}, lambda: None, {})
        assert queue.waiting == 0
        return caught.value

    error = asyncio.run(scenario())
    assert RUN in error.message and "0.05s" in error.message


def test_labels_select_and_an_unmatched_selector_fails_at_once() -> None:
    async def scenario() -> None:
        queue, (a, b) = await _fleet([0, 0])
        a.labels, b.labels = {"zone": "a"}, {"zone": "b", "gpu": "yes"}
        assert await queue.take(RUN, {"zone": "b"}, _never, {}) is b
        with pytest.raises(NoMatchingSlave, match="zone=c"):
            await queue.take(RUN, {"zone": "c"}, _never, {})

    asyncio.run(scenario())


def test_no_live_slave_is_not_queued() -> None:
    """Waiting cannot help when every slave offering the method is down."""

    async def scenario() -> None:
        queue, (slave,) = await _fleet([1])
        slave.status = 0
        with pytest.raises(NoLiveSlave):
            await queue.take(RUN, {}, _never, {})

    asyncio.run(scenario())


def test_least_loaded_picks_the_lowest_running_over_capacity() -> None:
    async def scenario() -> list[int]:
        queue, slaves = await _fleet([4, 2, 0], LeastLoadedScheduler())
        slaves[0].running, slaves[1].running, slaves[2].running = 1, 1, 1
        # loads: 0.25, 0.5, 1 (no limit: its running jobs)
        return [(await queue.take(RUN, {}, _never, {})).port for _ in range(3)]

    assert asyncio.run(scenario()) == [1, 1, 2]


def test_labels_parse_as_key_value_pairs() -> None:
    assert parse_labels(["zone=b", " tier = gpu "]) == {"zone": "b", "tier": "gpu"}
    with pytest.raises(ValueError, match="'zone' is not key=value"):
        parse_labels(["zone"])
