"""A heartbeat folds only the slave rows changed since the last one.

The registry of a master sharing its database is told, at each beat, the rows
changed since the beat before (``complete=False``) or, now and then, the
whole table; and which slaves it pings. What it ends up knowing must be what
a sync of the whole table would have told it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE, SlaveRow
from tests.unit.master.coordinators import NotAlone


class NoStore:
    """Nothing of the store is read or written by a sync."""


ROWS = [SlaveRow(i, "127.0.0.1", i, STATUS_LIVE, ("A.Run",)) for i in (1, 2, 3)]


def registry_of(rows: list[SlaveRow], owned: frozenset[int]) -> Registry:
    registry = Registry(NoStore(), Prober(1), coordinator=NotAlone())  # type: ignore[arg-type]
    registry.sync(rows, owned)
    return registry


def seen(registry: Registry) -> list[tuple[int, int, tuple[str, ...], bool]]:
    return [(s.id, s.status, s.methods, s.owned) for s in registry.slaves()]


def test_only_the_changed_rows_are_folded_and_absent_ones_stay() -> None:
    registry = registry_of(ROWS, frozenset({1}))
    down = dataclasses.replace(ROWS[1], status=STATUS_DOWN, methods=("A.Run", "A.Stop"))
    registry.sync([down], frozenset({1}), complete=False)
    assert seen(registry) == [
        (1, STATUS_LIVE, ("A.Run",), True),
        (2, STATUS_DOWN, ("A.Run", "A.Stop"), False),
        (3, STATUS_LIVE, ("A.Run",), False),
    ]
    assert [s.id for s in registry.offering("A.Stop")] == [2]


def test_a_new_row_is_added_and_only_a_complete_sync_drops() -> None:
    registry = registry_of(ROWS[:2], frozenset())
    registry.sync([ROWS[2]], frozenset(), complete=False)
    assert [s.id for s in registry.slaves()] == [1, 2, 3]
    registry.sync([ROWS[0], ROWS[2]], frozenset())
    assert [s.id for s in registry.slaves()] == [1, 3]


def test_leases_that_change_move_with_no_row_changed() -> None:
    registry = registry_of(ROWS, frozenset({1, 2}))
    registry.sync([], frozenset({2, 3}), complete=False)
    assert [s.owned for s in registry.slaves()] == [False, True, True]


def test_after_losing_the_database_the_next_beat_hands_the_leases_back() -> None:
    registry = registry_of(ROWS, frozenset({1, 3}))
    registry.disown()
    assert [s.owned for s in registry.slaves()] == [False, False, False]
    registry.sync([], frozenset({1, 3}), complete=False)
    assert [s.owned for s in registry.slaves()] == [True, False, True]


def test_a_refused_slave_of_another_master_is_offered_again_at_each_beat() -> None:
    registry = registry_of(ROWS, frozenset({1}))
    for slave in registry.slaves():
        slave.refused = True
    told = []
    registry.changed.subscribe(lambda: told.append(True))
    registry.sync([], frozenset({1}), complete=False)
    assert [s.refused for s in registry.slaves()] == [True, False, False]
    assert told


def test_a_slave_claimed_at_registration_is_given_up_if_the_lease_is_not_ours() -> None:
    """Claimed after a beat read the leases: kept for that beat, then the
    leases decide, though no row of it changed."""

    async def scenario() -> list[bool]:
        registry = registry_of(ROWS, frozenset())
        (slave,) = [s for s in registry.slaves() if s.id == 3]
        slave.owned = True  # as a claim at registration does
        registry._recent.add((slave.host, slave.port))
        registry.sync([], frozenset(), complete=False)
        kept = slave.owned
        registry.sync([], frozenset(), complete=False)
        return [kept, slave.owned]

    assert asyncio.run(scenario()) == [True, False]


def test_a_row_met_while_its_slave_is_probed_is_folded_at_the_next_beat() -> None:
    async def scenario() -> list[int]:
        registry = registry_of(ROWS, frozenset())
        slave = registry.slaves()[0]
        down = dataclasses.replace(ROWS[0], status=STATUS_DOWN)
        async with slave.probe_lock:
            registry.sync([down], frozenset(), complete=False)
            during = slave.status
        registry.sync([], frozenset(), complete=False)
        return [during, slave.status]

    assert asyncio.run(scenario()) == [STATUS_LIVE, STATUS_DOWN]
