"""Tests of a slave's status word: derived once, shown alike by every surface."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from arko.master.api.admin import slave_message
from arko.master.api.http.api import slave_json
from arko.master.metrics import MasterMetrics
from arko.master.slaves.slave import Slave, SlaveState
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE


class OneSlave:
    """A registry of one slave, as the metrics read it."""

    def __init__(self, slave: Slave) -> None:
        self._slave = slave

    def slaves(self) -> Sequence[Slave]:
        return [self._slave]

    def offering(self, method: str) -> Sequence[Slave]:
        return [self._slave]


@pytest.mark.parametrize(
    ("status", "pending", "state", "listed", "json", "label"),
    [
        (STATUS_LIVE, False, SlaveState.LIVE, "LIVE", "live", "live"),
        (STATUS_DOWN, False, SlaveState.DOWN, "DOWN", "down", "down"),
        (STATUS_LIVE, True, SlaveState.PENDING, "PENDING", "pending", "pending"),
        (STATUS_DOWN, True, SlaveState.PENDING, "PENDING", "pending", "pending"),
    ],
)
def test_the_status_word_is_the_same_everywhere(
    status: int, pending: bool, state: SlaveState, listed: str, json: str, label: str
) -> None:
    """Pending wins over the stored status; ListSlaves, HTTP and metrics show that one word."""
    slave = Slave(id=1, host="127.0.0.1", port=1, status=status, pending=pending)
    assert slave.state is state
    assert slave_message(slave).status == listed
    assert slave_json(slave)["status"] == json
    metrics = MasterMetrics()
    metrics.watch_slaves(OneSlave(slave))
    counts = {
        word: metrics.registry.get_sample_value("arko_slaves", {"status": word})
        for word in ("live", "down", "pending")
    }
    assert counts == {word: float(word == label) for word in counts}
