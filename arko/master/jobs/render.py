"""A slave's reply as one line of JSON, rendered by a converter compiled once per message class.

Every message a slave streams becomes one ``OUTPUT`` event holding its JSON
(the protobuf JSON mapping with default fields printed, on one line: what
``json_format.MessageToJson(..., always_print_fields_with_no_presence=True,
indent=None)`` gives). ``json_format`` looks every field's kind up again for
each message, which costs a streamed line more than the rest of the master's
own work on it. A message class whose fields are all plain scalars (the usual
log line: numbers, text, flags) gets a converter that decided all of that
once; any other class (nested messages, maps, lists, enums, floats, oneofs,
well-known types, extensions) is rendered by ``json_format`` itself, so the
text is the same either way (the unit tests compare both on every kind of
field).
"""

from __future__ import annotations

import base64
import json
import weakref
from collections.abc import Callable
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

Render = Callable[[Message], str]
Convert = Callable[[Any], Any]

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
_COMPILED: weakref.WeakKeyDictionary[type[Message], Render] = weakref.WeakKeyDictionary()


def render_generic(reply: Message) -> str:
    """Any message as one line of JSON, default fields included, by ``json_format``."""
    return json_format.MessageToJson(reply, always_print_fields_with_no_presence=True, indent=None)


def render_compact(reply: Message) -> str:
    """``reply`` as one line of JSON, default fields included: one output event."""
    cls = type(reply)
    render = _COMPILED.get(cls)
    if render is None:
        render = _COMPILED[cls] = compile_renderer(cast(Descriptor, cls.DESCRIPTOR))
    return render(reply)


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


def compile_renderer(desc: Descriptor) -> Render:
    """The converter for messages of ``desc``: compiled when its fields are plain scalars.

    ``json_format`` puts the fields that are set first (by field number, as
    ``ListFields`` gives them), then the others with their defaults in the
    order they are declared; a compiled converter keeps that order.
    """
    if not _plain(desc):
        return render_generic
    convert = {f.number: (f.json_name, _CONVERT[f.type]) for f in desc.fields}
    defaults = tuple((f.json_name, _CONVERT[f.type](f.default_value)) for f in desc.fields)
    dumps = json.dumps

    def render(reply: Message) -> str:
        js: dict[str, Any] = {}
        for field, value in reply.ListFields():
            name, to_json = convert[field.number]
            js[name] = to_json(value)
        if len(js) < len(defaults):
            for name, default in defaults:
                js.setdefault(name, default)
        return dumps(js)

    return render
