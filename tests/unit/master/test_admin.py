"""DescribeMethod from descriptors alone: types, enums, maps, nested messages, comments, policy."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_tools import protoc

from arko.common.errors import MethodNotFound, NoLiveSlave
from arko.master.admin import Admin
from arko.master.slaves.discovery import Catalog, comments_of
from arko.v1 import admin_pb2

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _catalog(tmp_path: Path, source_info: bool) -> Catalog:
    out = tmp_path / "set.pb"
    args = [
        "protoc",
        f"-I{FIXTURES}",
        f"-I{FIXTURES.parent.parent / 'protos'}",  # arko/v1/options.proto
        f"-I{resources.files('grpc_tools') / '_proto'}",  # google/protobuf/descriptor.proto
        "--include_imports",
        f"--descriptor_set_out={out}",
        "toolbox.proto",
    ]
    if source_info:
        args.insert(1, "--include_source_info")
    assert protoc.main(args) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for fdp in files.file:
        pool.Add(fdp)
    methods = ("arko.testing.v1.Toolbox.Echo", "arko.testing.v1.Toolbox.Fail")
    return Catalog("v1", pool, methods, b"", comments_of(files.file))


@dataclass
class _Slave:
    address: str
    catalog: Catalog | None


class _Registry:
    """Slaves offering every Toolbox method; those without a catalog could not be read."""

    def __init__(self, *slaves: _Slave) -> None:
        self._slaves = slaves

    def offering(self, method: str) -> Any:
        if not method.startswith("arko.testing.v1.Toolbox."):
            raise MethodNotFound(f"no registered slave exposes {method}")
        return self._slaves

    async def described(self, method: str, patience: float) -> Any:
        read = [s for s in self.offering(method) if s.catalog is not None]
        if not read:
            raise NoLiveSlave(f"no slave offering {method} answers")
        return read


async def _flush() -> None:
    return None


class _Describer:
    """Admin.describe, called from synchronous tests."""

    def __init__(self, admin: Admin) -> None:
        self._admin = admin

    def describe(self, method: str) -> admin_pb2.MethodInfo:
        return asyncio.run(self._admin.describe(method))


def _admin(*slaves: _Slave) -> _Describer:
    return _Describer(Admin(_Registry(*slaves), None, _flush))  # type: ignore[arg-type]


def test_fields_carry_types_enum_values_maps_and_defaults(tmp_path: Path) -> None:
    """Echo's request is described field by field, its map entry as a nested message."""
    info = _admin(_Slave("h:1", _catalog(tmp_path, False))).describe("arko.testing.v1.Toolbox/Echo")
    assert info.method == "arko.testing.v1.Toolbox.Echo"
    assert info.request_type == "arko.testing.v1.ToolRequest" and not info.server_streaming
    fields = {f.name: f for f in info.messages[0].fields}
    assert fields["count"].type == "int32" and fields["count"].default == "0"
    assert fields["verbose"].default == "false"
    assert fields["level"].type == "enum"
    assert list(fields["level"].enum_values) == ["LEVEL_UNSPECIFIED", "LOW", "HIGH"]
    assert fields["level"].default == "LEVEL_UNSPECIFIED"
    assert fields["tags"].repeated and fields["big"].type == "int64"
    assert fields["labels"].map and fields["labels"].type == "message"
    assert [m.full_name for m in info.messages][1].endswith("LabelsEntry")
    assert list(info.slaves) == ["h:1"]


def test_comments_come_from_source_info_when_the_descriptors_carry_it(tmp_path: Path) -> None:
    """Leading comments of the method and fields show; without source info they are empty."""
    with_info = _admin(_Slave("h:1", _catalog(tmp_path, True))).describe(
        "arko.testing.v1.Toolbox.Fail"
    )
    assert with_info.comment == "Fails with the given status code and message."
    code = next(f for f in with_info.messages[0].fields if f.name == "code")
    assert code.comment == "A grpc.StatusCode name, e.g. FAILED_PRECONDITION."
    bare = _admin(_Slave("h:1", _catalog(tmp_path, False))).describe("arko.testing.v1.Toolbox.Fail")
    assert bare.comment == "" and all(not f.comment for f in bare.messages[0].fields)


def test_unknown_methods_are_not_found_and_unread_ones_unavailable(tmp_path: Path) -> None:
    """No slave offers it: NOT_FOUND. Offered, but no slave could be read: UNAVAILABLE."""
    with pytest.raises(MethodNotFound):
        _admin(_Slave("h:1", _catalog(tmp_path, False))).describe("Nope.Run")
    with pytest.raises(NoLiveSlave, match="answers"):
        _admin(_Slave("h:1", None)).describe("arko.testing.v1.Toolbox.Echo")
