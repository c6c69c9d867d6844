"""Tests of how a probe reads a slave that refuses this master.

A restarted master does not know a protected slave's call secret until the
slave registers again; its probe must recognise the refusal, keep the slave
pending, and let jobs wait, whatever the reflection stream reports.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc

from arko.common.interceptors import around
from arko.common.server import create_server
from arko.master.slaves.registry import Registry
from arko.master.store.rows import STATUS_LIVE
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
            registry = Registry(store, probe_timeout=5)
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
