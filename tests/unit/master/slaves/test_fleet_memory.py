"""What a big fleet of alike, mostly idle slaves costs the master: one catalog
for all slaves serving the same files, and open channels bounded for idle ones.

One server in this process listening on several loopback ports stands in for
several slaves serving the same services (as ``bench.fleet_server`` does).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from arko.common.server import create_server
from arko.gen import pipeline_pb2, pipeline_pb2_grpc
from arko.master.slaves.discovery import Catalogs
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import OpenChannels, Slave
from arko.master.store.rows import STATUS_LIVE
from arko.master.store.sql import SqliteStore
from arko.slave.mypipeline import MyPipeline
from arko.slave.plugins import Service


@asynccontextmanager
async def alike_slaves(count: int) -> AsyncIterator[list[int]]:
    """``count`` ports of one server, each answering as a slave serving MyPipeline."""
    service = Service.of(
        pipeline_pb2.DESCRIPTOR,
        "MyPipeline",
        MyPipeline(run_delay=0.0),
        pipeline_pb2_grpc.add_MyPipelineServicer_to_server,
    )
    built = create_server("127.0.0.1", 0, [(service.name, service.add)])
    ports = [built.port] + [built.server.add_insecure_port("127.0.0.1:0") for _ in range(count - 1)]
    await built.server.start()
    try:
        yield ports
    finally:
        await built.server.stop(None)


def test_slaves_serving_the_same_files_share_one_catalog() -> None:
    async def scenario() -> tuple[bool, bool, tuple[str, ...]]:
        async with alike_slaves(3) as ports:
            prober = Prober(5)
            slaves = [Slave(i, "127.0.0.1", p, STATUS_LIVE) for i, p in enumerate(ports)]
            try:
                found = [await prober.check(s) for s in slaves]
            finally:
                for slave in slaves:
                    await slave.close()
        first, *others = (f.catalog for f in found)
        assert first is not None, found[0].detail
        return all(c is first for c in others), first is not None, first.methods

    shared, read, methods = asyncio.run(scenario())
    assert read and shared
    assert "MyPipeline.Run" in methods


def test_a_catalog_no_slave_holds_is_not_kept() -> None:
    async def scenario() -> tuple[bool, bool]:
        async with alike_slaves(1) as (port,):
            prober = Prober(5)
            slave = Slave(1, "127.0.0.1", port, STATUS_LIVE)
            try:
                catalog = (await prober.check(slave)).catalog
            finally:
                await slave.close()
        assert catalog is not None
        catalogs: Catalogs = prober._catalogs
        key = (catalog.protocol, catalog.fingerprint)
        held = catalogs.get(*key) is catalog
        del catalog
        gc.collect()
        return held, catalogs.get(*key) is None

    held, dropped = asyncio.run(scenario())
    assert held and dropped


def test_past_the_limit_an_idle_slave_gives_up_its_channel_after_a_probe() -> None:
    async def scenario() -> list[bool]:
        channels = OpenChannels(idle_limit=1)
        a, b = (Slave(i, "127.0.0.1", 1 + i, STATUS_LIVE, channels=channels) for i in range(2))
        seen = []
        with a.lease():  # a job: a keeps its channel past its next probe
            pass
        b.channel  # noqa: B018  (opens it)
        with b.lease(probe=True):
            b.rest()  # a call still runs on it: kept
            seen.append(b.current(b.channel))
        b.rest()
        seen.append(channels.count == 1)  # b closed its channel
        a.rest()
        seen.append(channels.count == 1)  # used by a job since its last probe: kept
        seen.append(a.used)
        b.channel  # noqa: B018  (dialled again on demand)
        a.rest()
        seen.append(channels.count == 1)  # a job did not use it since: closed
        await a.close()
        await b.close()
        seen.append(channels.count == 0)
        return seen

    assert asyncio.run(scenario()) == [True, True, True, False, True, True]


def test_a_registry_keeps_every_slave_live_while_closing_idle_channels(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, list[bool], list[bool]]:
        async with alike_slaves(3) as ports:
            store = await SqliteStore.open(tmp_path / "arko.db")
            registry = Registry(store, Prober(5), idle_channels=1)
            try:
                for port in ports:
                    await registry.register("127.0.0.1", port)
                slaves = list(registry.slaves())
                for slave in slaves:  # a sweep on closed channels dials again
                    await registry.probe(slave)
                live = [s.live for s in slaves]
                catalogs = [s.catalog is slaves[0].catalog is not None for s in slaves]
                count = slaves[0].channels.count
            finally:
                await registry.close()
                await store.close()
        return count, live, catalogs

    count, live, catalogs = asyncio.run(scenario())
    assert count == 1
    assert live == [True, True, True]
    assert catalogs == [True, True, True]
