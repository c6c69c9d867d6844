"""A slave method's request, described for people and tools from its reflected descriptors.

The master never sees a slave's ``.proto`` files, only the descriptors that
reflection hands over (:class:`arko.master.slaves.discovery.Catalog`). From them this
module derives two views of a request message: a JSON Schema of its protobuf
JSON mapping (for ``/openapi.json`` and for validating tools), and a flat list
of fields with their kinds (for the web UI's generated run form). Both come
from the same descriptors, so what the form offers is what the API accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from arko.common.errors import InvalidArgument, MethodNotFound
from arko.common.methods import parse_method_name
from arko.common.redact import is_secret_name
from arko.master.jobs.policy import job_policy
from arko.master.slaves.discovery import Catalog
from arko.master.slaves.registry import Registry

_F = FieldDescriptor
_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_RANGES: dict[int, tuple[int, int]] = {
    _F.TYPE_INT32: _INT32,
    _F.TYPE_SINT32: _INT32,
    _F.TYPE_SFIXED32: _INT32,
    _F.TYPE_UINT32: _UINT32,
    _F.TYPE_FIXED32: _UINT32,
    _F.TYPE_INT64: _INT64,
    _F.TYPE_SINT64: _INT64,
    _F.TYPE_SFIXED64: _INT64,
    _F.TYPE_UINT64: _UINT64,
    _F.TYPE_FIXED64: _UINT64,
}
_FLOAT_MAX = 3.4028234663852886e38
_KIND_NAMES = {getattr(_F, n): n.removeprefix("TYPE_").lower() for n in dir(_F) if n[:5] == "TYPE_"}
# Well-known types whose JSON form is not the shape of their fields.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object"},
}


@dataclass(frozen=True, slots=True)
class Located:
    """A method found in the fleet: its descriptor and the catalog it came from."""

    name: str
    catalog: Catalog
    method: MethodDescriptor


async def locate(registry: Registry, raw_name: str, patience: float) -> Located:
    """The descriptor of ``Service.Method`` as a slave offering it reported it.

    Live slaves are asked first; slaves offering it that this master has not
    read yet are read, or waited for up to ``patience`` seconds (see
    :meth:`Registry.described`).

    Raises:
        InvalidArgument: the name is not ``Service.Method``.
        MethodNotFound: no slave offers it, or none describes it.
        NoLiveSlave: no slave offering it could be read in time.
    """
    name = parse_method_name(raw_name)
    read = sorted(await registry.described(name.dotted, patience), key=lambda s: not s.live)
    for slave in read:
        desc = slave.catalog.method(name.service, name.method) if slave.catalog else None
        if slave.catalog is not None and desc is not None:
            return Located(name.dotted, slave.catalog, desc)
    raise MethodNotFound(f"no slave offering {name.dotted} describes it by reflection")


def _scalar_schema(field: FieldDescriptor) -> dict[str, Any]:
    kind = field.type
    if kind == _F.TYPE_STRING:
        return {"type": "string"}
    if kind == _F.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    if kind == _F.TYPE_BOOL:
        return {"type": "boolean"}
    if kind in _RANGES:
        low, high = _RANGES[kind]
        return {"type": "integer", "minimum": low, "maximum": high}
    if kind == _F.TYPE_FLOAT:
        return {"type": "number", "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
    if kind == _F.TYPE_DOUBLE:
        return {"type": "number"}
    if kind == _F.TYPE_ENUM:
        assert field.enum_type is not None, "enum fields have an enum type"
        return {"type": "string", "enum": list(field.enum_type.values_by_name)}
    raise InvalidArgument(f"field {field.full_name} has a type arko cannot describe ({kind})")


class SchemaBuilder:
    """JSON Schemas of messages, each defined once under ``ref_prefix`` (recursion safe).

    Args:
        ref_prefix: Where ``$ref`` points, e.g. ``#/components/schemas/``.
    """

    def __init__(self, ref_prefix: str) -> None:
        self._prefix = ref_prefix
        self.definitions: dict[str, dict[str, Any]] = {}

    def message(self, desc: Descriptor) -> dict[str, Any]:
        """A ``$ref`` to ``desc``'s schema, defining it (and what it uses) on first sight."""
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if desc.full_name not in self.definitions:
            self.definitions[desc.full_name] = {}  # placeholder: a field may refer back here
            properties = {f.json_name: self.field(f) for f in desc.fields}
            schema: dict[str, Any] = {
                "type": "object",
                "properties": properties,
                "additionalProperties": False,
            }
            required = [f.json_name for f in desc.fields if _required(f)]
            if required:
                schema["required"] = required
            self.definitions[desc.full_name] = schema
        return {"$ref": f"{self._prefix}{desc.full_name}"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        """The schema of one field's JSON value (lists and maps included)."""
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def _single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type in (_F.TYPE_MESSAGE, _F.TYPE_GROUP):
            assert field.message_type is not None, "message fields have a message type"
            return self.message(field.message_type)
        return _scalar_schema(field)


def _required(field: FieldDescriptor) -> bool:
    """Proto2's ``required``: the only presence rule a descriptor states outright."""
    return bool(field.is_required)


def _kind(field: FieldDescriptor) -> str:
    """A short name of a field's type for the form: ``int32``, ``enum``, ``message``…"""
    return _KIND_NAMES.get(field.type, "unknown")


def describe_fields(desc: Descriptor) -> list[dict[str, Any]]:
    """The request's top-level fields as the run form needs them.

    Nested messages, lists and maps are entered as JSON (their ``schema`` says
    the shape); scalars and enums get typed inputs.
    """
    builder = SchemaBuilder("#/definitions/")
    fields = []
    for field in desc.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        entry: dict[str, Any] = {
            "name": field.name,
            "json_name": field.json_name,
            "type": "map" if is_map else _kind(field),
            "repeated": bool(field.is_repeated and not is_map),
            "required": _required(field),
            "secret": is_secret_name(field.name),
            "schema": builder.field(field),
        }
        if field.enum_type is not None:
            entry["enum"] = list(field.enum_type.values_by_name)
        if field.message_type is not None and not is_map:
            entry["message"] = field.message_type.full_name
        fields.append(entry)
    return fields


def describe_method(found: Located) -> dict[str, Any]:
    """A method's schema for ``GET /api/v1/methods/{method}``: fields, JSON Schema, policy."""
    desc = found.method
    builder = SchemaBuilder("#/definitions/")
    request = builder.message(desc.input_type)
    policy = json_format.MessageToDict(
        job_policy(found.catalog, found.name), preserving_proto_field_name=True
    )
    return {
        "method": found.name,
        "request_type": desc.input_type.full_name,
        "response_type": desc.output_type.full_name,
        "server_streaming": bool(desc.server_streaming),
        "runnable": not desc.client_streaming,
        "fields": describe_fields(desc.input_type),
        "request_schema": {**request, "definitions": builder.definitions},
        "policy": policy,
    }


def runnable_methods(registry: Registry) -> Sequence[Located]:
    """Every method the fleet can run as a job, once each, from the first slave describing it."""
    found: dict[str, Located] = {}
    slaves = sorted(registry.slaves(), key=lambda s: not s.live)
    for slave in slaves:
        catalog = slave.catalog
        if catalog is None:
            continue
        for name in catalog.methods:
            service, _, method = name.rpartition(".")
            desc = catalog.method(service, method)
            if name not in found and desc is not None and not desc.client_streaming:
                found[name] = Located(name, catalog, desc)
    return [found[name] for name in sorted(found)]
