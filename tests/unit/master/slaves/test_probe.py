"""Tests of probing: what a probe reads on a slave, what the registry records of
it, and the ping loop.

A restarted master does not know a protected slave's call secret until the
slave registers again; its probe must recognise the refusal, keep the slave
pending, and let jobs wait, whatever the reflection stream reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from structlog.testing import capture_logs

from arko.common.errors import MethodNotFound
from arko.common.interceptors import around
from arko.common.server import create_server
from arko.master.slaves.discovery import Catalog
from arko.master.slaves.probe import NOT_SERVING, UNREACHABLE, Finding, Pinger, Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave, SlaveState
from arko.master.store.rows import STATUS_DOWN, STATUS_LIVE, SlaveRow
from arko.master.store.sql import SqliteStore
from arko.slave.guard import REFLECTION_PREFIX
from arko.v1 import slave_pb2
from arko.v1.slave_pb2_grpc import SlaveServicer, add_SlaveServicer_to_server

STATUS_SERVICE = slave_pb2.DESCRIPTOR.services_by_name["Slave"].full_name


class _Garbled(grpc.aio.ServerInterceptor):
    """Refuses Status, and breaks reflection the way grpc/grpc#36066 reports a
    refusal to an asyncio client: INTERNAL "Internal error from Core"."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if details.method.startswith(REFLECTION_PREFIX):
            code, why = grpc.StatusCode.INTERNAL, "Internal error from Core"
        elif details.method.startswith(f"/{STATUS_SERVICE}/"):
            code, why = grpc.StatusCode.UNAUTHENTICATED, "not the master"
        else:
            return handler

        async def refuse(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(code, why)

        return around(handler, refuse)


def test_a_refusing_slave_stays_pending_whatever_reflection_says(tmp_path: Path) -> None:
    """The probe asks the unary Status first, so the refusal is read as one."""

    async def scenario() -> tuple[bool, str]:
        built = create_server(
            "127.0.0.1",
            0,
            [(STATUS_SERVICE, lambda s: add_SlaveServicer_to_server(SlaveServicer(), s))],
            interceptors=[_Garbled()],
        )
        await built.server.start()
        store = await SqliteStore.open(tmp_path / "arko.db")
        try:
            await store.upsert_slave("127.0.0.1", built.port, STATUS_LIVE)
            registry = Registry(store, Prober(5))
            await registry.load()
            (slave,) = registry.slaves()
            assert slave.pending  # restored: unsettled until probed or registered
            await registry.probe(slave)
            return slave.pending, slave.reason
        finally:
            await store.close()
            await built.server.stop(None)

    pending, reason = asyncio.run(scenario())
    assert pending, reason
    assert reason == "waiting for the slave to register again"


class FakeProber(Prober):
    """A prober whose every check finds what the test says, with no call made."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(timeout=1)
        self.finding = finding

    async def check(self, slave: Slave) -> Finding:
        return self.finding


class FakeStore:
    """Just enough of ``Store`` for loading and probing: the rows, and each save."""

    def __init__(self, *rows: SlaveRow) -> None:
        self.rows = list(rows)
        self.saved: list[tuple[int, int, tuple[str, ...], str]] = []

    async def list_slaves(self) -> list[SlaveRow]:
        return self.rows

    async def update_slave(
        self, slave_id: int, status: int, methods: tuple[str, ...], last_error: str = "", *_: Any
    ) -> None:
        self.saved.append((slave_id, status, methods, last_error))


def catalog(*methods: str) -> Catalog:
    """A catalog offering ``methods`` (their descriptors are not read here)."""
    return Catalog("v1", descriptor_pool.DescriptorPool(), methods, b"")


def probed(
    finding: Finding, *, pending: bool = False, secret: str = ""
) -> tuple[Slave, FakeStore, Registry]:
    """Probe one stored slave offering ``Old.Run`` whose probe finds ``finding``."""
    store = FakeStore(SlaveRow(1, "127.0.0.1", 1, STATUS_LIVE, ("Old.Run",)))
    registry = Registry(store, FakeProber(finding))  # type: ignore[arg-type]

    async def scenario() -> Slave:
        await registry.load()
        (slave,) = registry.slaves()
        slave.pending, slave.secret = pending, secret
        await registry.probe(slave)
        return slave

    return asyncio.run(scenario()), store, registry


def test_a_healthy_finding_makes_the_slave_live_with_what_it_read() -> None:
    """Catalog, methods and reported capacity are kept, indexed and saved."""
    status = slave_pb2.SlaveStatus(capacity=3, labels={"os": "linux"}, version="1.2")
    slave, store, registry = probed(Finding(catalog=catalog("New.Run"), status=status))
    assert (slave.state, slave.reason, slave.methods) == (SlaveState.LIVE, "", ("New.Run",))
    assert list(registry.offering("New.Run")) == [slave]
    with pytest.raises(MethodNotFound):
        registry.offering("Old.Run")
    assert (slave.capacity, slave.labels, slave.version) == (3, {"os": "linux"}, "1.2")
    assert store.saved == [(1, STATUS_LIVE, ("New.Run",), "")]


def test_a_failed_finding_is_shown_as_one_reason_and_keeps_the_methods() -> None:
    """The probe's own words stay in the log; callers read UNREACHABLE."""
    refused = Finding("UNAVAILABLE: Connection refused", grpc.StatusCode.UNAVAILABLE)
    slave, store, registry = probed(refused)
    assert (slave.state, slave.reason) == (SlaveState.DOWN, UNREACHABLE)
    assert list(registry.offering("Old.Run")) == [slave]
    assert store.saved == [(1, STATUS_DOWN, ("Old.Run",), UNREACHABLE)]


def test_not_serving_is_shown_as_it_is() -> None:
    """A health check answering NOT_SERVING is no secret: callers read it."""
    slave, _, _ = probed(Finding(NOT_SERVING))
    assert (slave.state, slave.reason) == (SlaveState.DOWN, NOT_SERVING)


def test_a_lost_catalog_is_dropped() -> None:
    """Reflection that failed leaves no stale descriptors for jobs to build requests from."""

    async def scenario() -> Catalog | None:
        store = FakeStore(SlaveRow(1, "127.0.0.1", 1, STATUS_LIVE, ("Old.Run",)))
        prober = FakeProber(Finding(catalog=catalog("Old.Run")))
        registry = Registry(store, prober)  # type: ignore[arg-type]
        await registry.load()
        (slave,) = registry.slaves()
        await registry.probe(slave)
        assert slave.catalog is not None
        prober.finding = Finding("reflection failed: broken", catalog_lost=True)
        await registry.probe(slave)
        return slave.catalog

    assert asyncio.run(scenario()) is None


def test_a_refusal_before_registering_again_keeps_the_slave_pending() -> None:
    """A restored slave refusing a master without its secret waits; with the secret it is down."""
    refused = Finding("UNAUTHENTICATED: no", grpc.StatusCode.UNAUTHENTICATED)
    waiting, _, _ = probed(refused, pending=True)
    assert (waiting.state, waiting.reason) == (
        SlaveState.PENDING,
        "waiting for the slave to register again",
    )
    known, _, _ = probed(refused, pending=True, secret="s3cret")
    assert (known.state, known.reason) == (SlaveState.DOWN, UNREACHABLE)


class FakeRegistry:
    """The registry as the ping loop sees it, recording probes and forgetting."""

    def __init__(self, slaves: Sequence[Slave], fail_sweeps: int = 0) -> None:
        self._slaves = slaves
        self.calls: list[str] = []
        self.in_flight = self.most_in_flight = 0
        self.fail_sweeps = fail_sweeps
        self.sweeps = asyncio.Queue[None]()

    def slaves(self) -> Sequence[Slave]:
        return self._slaves

    async def probe(self, slave: Slave) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)  # let the other probes of the sweep start
        self.in_flight -= 1
        self.calls.append(f"probe {slave.port}")

    async def forget_long_down(self) -> None:
        self.calls.append("forget")
        self.sweeps.put_nowait(None)
        if self.fail_sweeps:
            self.fail_sweeps -= 1
            raise RuntimeError("database away")


def slaves(*owned: bool) -> list[Slave]:
    """Slaves on ports 1, 2, … each owned (pinged by this master) or not."""
    return [
        Slave(id=i, host="127.0.0.1", port=i, status=STATUS_LIVE, owned=o)
        for i, o in enumerate(owned, 1)
    ]


def test_a_sweep_probes_the_slaves_this_master_pings_then_forgets() -> None:
    """Slaves another master pings are left to it; forgetting comes after every probe."""
    registry = FakeRegistry(slaves(True, False, True))
    asyncio.run(Pinger(registry, interval=1).sweep())
    assert sorted(registry.calls[:-1]) == ["probe 1", "probe 3"]
    assert registry.calls[-1] == "forget"


def test_a_sweep_runs_at_most_max_concurrent_probes_at_once() -> None:
    """The bound holds across the sweep, and every slave is still probed."""
    registry = FakeRegistry(slaves(*[True] * 7))
    asyncio.run(Pinger(registry, interval=1, max_concurrent=2).sweep())
    assert registry.most_in_flight == 2
    assert len(registry.calls) == 8


def test_the_loop_goes_on_after_a_failed_sweep() -> None:
    """A sweep that fails (the database away) is logged, and the next one runs."""
    registry = FakeRegistry(slaves(True), fail_sweeps=1)

    async def scenario() -> None:
        loop = asyncio.create_task(Pinger(registry, interval=0).run())
        for _ in range(2):
            swept = asyncio.create_task(registry.sweeps.get())
            await asyncio.wait({swept, loop}, return_when=asyncio.FIRST_COMPLETED)
            assert not loop.done(), loop.exception()
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    with capture_logs() as logs:
        asyncio.run(scenario())
    failed = [e for e in logs if e["event"] == "ping_sweep_failed"]
    assert [e["error"] for e in failed] == ["database away"]
