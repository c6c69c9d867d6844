"""/openapi.json is rendered once per change of the fleet's methods, not per request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from arko.common.server import create_server
from arko.gen import pipeline_pb2
from arko.gen.pipeline_pb2_grpc import MyPipelineServicer, add_MyPipelineServicer_to_server
from arko.master.api.http import openapi
from arko.master.slaves.probe import Prober
from arko.master.slaves.registry import Registry
from arko.master.slaves.slave import Slave
from arko.master.store.sql import SqliteStore

PIPELINE = pipeline_pb2.DESCRIPTOR.services_by_name["MyPipeline"].full_name


class _Fleet:
    """The two things the document reads from the registry: its slaves and methods version."""

    def __init__(self) -> None:
        self.methods_version = 0

    def slaves(self) -> Sequence[Slave]:
        return ()


def test_document_is_built_once_per_methods_version(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    build = openapi.openapi_document

    def counted(registry: Registry, token_required: bool) -> dict[str, Any]:
        builds.append(cast(_Fleet, registry).methods_version)
        return build(registry, token_required)

    monkeypatch.setattr(openapi, "openapi_document", counted)
    fleet = _Fleet()
    cache = openapi.OpenApiCache(cast(Registry, fleet), token_required=True)
    first = cache.body()
    assert all(cache.body() is first for _ in range(30))
    assert builds == [0]
    assert "securitySchemes" in json.loads(first)["components"]
    fleet.methods_version += 1
    assert cache.body() == first  # the same fleet, rebuilt once for the new version
    assert cache.body() is cache.body()
    assert builds == [0, 1]


def test_methods_version_moves_with_the_fleet_not_with_each_probe(tmp_path: Path) -> None:
    """A probe finding the same slave keeps the version; new methods or a fall move it."""

    async def scenario() -> list[int]:
        built = create_server(
            "127.0.0.1",
            0,
            [(PIPELINE, lambda s: add_MyPipelineServicer_to_server(MyPipelineServicer(), s))],
        )
        await built.server.start()
        store = await SqliteStore.open(tmp_path / "arko.db")
        registry = Registry(store, Prober(5))
        versions = [registry.methods_version]
        try:
            slave = await registry.register("127.0.0.1", built.port)
            assert slave.live and slave.methods, slave.reason
            versions.append(registry.methods_version)
            for _ in range(3):
                await registry.probe(slave)
            versions.append(registry.methods_version)
            await built.server.stop(None)
            await registry.probe(slave)
            assert not slave.live
            versions.append(registry.methods_version)
        finally:
            await registry.close()
            await store.close()
            await built.server.stop(None)
        return versions

    start, registered, probed, fallen = asyncio.run(scenario())
    assert start < registered == probed < fallen
