"""/openapi.json is rendered once per change of the fleet's methods, not per request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import pytest

from arko.master.http import openapi
from arko.master.registry import Registry
from arko.master.slaves import Slave


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
