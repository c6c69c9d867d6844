"""A slave's reply as JSON: converted once, by a converter compiled once per message class.

Every message a slave sends becomes the protobuf JSON mapping with default
fields printed: one line in an ``OUTPUT`` event and the record's result, and
indented in ``Execution/ExecuteJob``'s answer. ``json_format.MessageToJson``
is ``json.dumps`` of ``MessageToDict``, so a reply is converted to that JSON
value once (:class:`ReplyTree`) and dumped in each form it is shown in.

``json_format`` looks every field's kind up again for each message, which
cost a streamed line more than the rest of the master's own work on it. A
message class whose fields are all plain scalars (the usual log line or
status: numbers, text, flags) gets a converter that decided all of that once;
any other class (nested messages, maps, lists, enums, floats, oneofs,
well-known types, extensions) is converted by ``json_format`` itself, so the
value is the same either way (the unit tests compare both on every kind of
field).
"""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

Convert = Callable[[Any], Any]
ToJson = Callable[[Message], Any]

_INT32 = (
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_SFIXED32,
)
_INT64 = (
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
)
# Each kind of field a compiled converter handles, and its value as JSON has it.
_CONVERT: dict[int, Convert] = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_BOOL: bool,
    FieldDescriptor.TYPE_BYTES: lambda value: base64.b64encode(value).decode("utf-8"),
    **{kind: int for kind in _INT32},
    **{kind: str for kind in _INT64},  # 64-bit integers are JSON strings
}
_WELL_KNOWN = "google.protobuf."
_COMPILED: weakref.WeakKeyDictionary[type[Message], ToJson] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class ReplyTree:
    """A reply as a JSON value, default fields included: what both renderings print.

    Not always an object: a well-known wrapper type is a bare value.
    """

    value: Any

    @classmethod
    def of(cls, reply: Message) -> ReplyTree:
        """Convert ``reply``, by its class's compiled converter."""
        kind = type(reply)
        to_json = _COMPILED.get(kind)
        if to_json is None:
            to_json = _COMPILED[kind] = compile_converter(cast(Descriptor, kind.DESCRIPTOR))
        return cls(to_json(reply))

    def indented(self) -> str:
        """As grpcurl prints it."""
        return json.dumps(self.value, indent=2)

    def compact(self) -> str:
        """On one line: one output event."""
        return json.dumps(self.value)


def convert_generic(reply: Message) -> Any:
    """Any message as a JSON value, default fields included, by ``json_format``."""
    return json_format.MessageToDict(reply, always_print_fields_with_no_presence=True)


def _plain(desc: Descriptor) -> bool:
    """Whether every field of ``desc`` is a single scalar a compiled converter handles."""
    return (
        # The well-known types (wrappers, Timestamp, Struct...) have JSON forms of their own.
        not desc.full_name.startswith(_WELL_KNOWN)
        and not desc.extension_ranges
        and not desc.oneofs
        and all(
            field.type in _CONVERT and not field.is_repeated and not field.has_presence
            for field in desc.fields
        )
    )


def compile_converter(desc: Descriptor) -> ToJson:
    """The converter for messages of ``desc``: compiled when its fields are plain scalars.

    ``json_format`` puts the fields that are set first (by field number, as
    ``ListFields`` gives them), then the others with their defaults in the
    order they are declared; a compiled converter keeps that order.
    """
    if not _plain(desc):
        return convert_generic
    convert = {f.number: (f.json_name, _CONVERT[f.type]) for f in desc.fields}
    defaults = tuple((f.json_name, _CONVERT[f.type](f.default_value)) for f in desc.fields)

    def to_json(reply: Message) -> dict[str, Any]:
        js: dict[str, Any] = {}
        for field, value in reply.ListFields():
            name, to_value = convert[field.number]
            js[name] = to_value(value)
        if len(js) < len(defaults):
            for name, default in defaults:
                js.setdefault(name, default)
        return js

    return to_json
