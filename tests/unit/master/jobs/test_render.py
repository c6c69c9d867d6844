"""A reply converted once renders exactly what json_format renders, for every kind of field."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import Int64Value, StringValue
from hypothesis import given, settings
from hypothesis import strategies as st

from arko.gen import pipeline_pb2
from arko.master.jobs.render import ReplyTree, compile_converter, convert_generic

F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "s": F.TYPE_STRING,
    "flag": F.TYPE_BOOL,
    "raw": F.TYPE_BYTES,
    "i32": F.TYPE_INT32,
    "u32": F.TYPE_UINT32,
    "s32": F.TYPE_SINT32,
    "f32": F.TYPE_FIXED32,
    "sf32": F.TYPE_SFIXED32,
    "i64": F.TYPE_INT64,
    "u64": F.TYPE_UINT64,
    "s64": F.TYPE_SINT64,
    "f64": F.TYPE_FIXED64,
    "sf64": F.TYPE_SFIXED64,
    "snake_case_name": F.TYPE_STRING,
}


def _classes() -> dict[str, type[Message]]:
    """Test messages: one of plain scalars (numbers out of declaration order), and
    ones a compiled converter must leave to json_format."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="render_test.proto", package="rendertest", syntax="proto3"
    )
    plain = proto.message_type.add(name="Plain")
    # Declared in an order other than their numbers: defaults follow declaration.
    for number, (name, kind) in reversed(list(enumerate(_SCALARS.items(), start=1))):
        plain.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    nested = proto.message_type.add(name="Nested")
    nested.field.add(
        name="inner", number=1, type=F.TYPE_MESSAGE, type_name=".rendertest.Plain", label=1
    )
    nested.field.add(name="n", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    listed = proto.message_type.add(name="Listed")
    listed.field.add(name="lines", number=1, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    floats = proto.message_type.add(name="Floats")
    floats.field.add(name="d", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    floats.field.add(name="f", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    optional = proto.message_type.add(name="Optional")
    optional.field.add(
        name="maybe",
        number=1,
        type=F.TYPE_INT32,
        label=F.LABEL_OPTIONAL,
        proto3_optional=True,
        oneof_index=0,
    )
    optional.field.add(name="always", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    optional.oneof_decl.add(name="_maybe")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    names = ("Plain", "Nested", "Listed", "Floats", "Optional")
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"rendertest.{name}"))
        for name in names
    }


def render_compact(message: Message) -> str:
    return ReplyTree.of(message).compact()


def render_generic(message: Message) -> str:
    """What the master rendered before: json_format's own, on one line."""
    return json_format.MessageToJson(
        message, always_print_fields_with_no_presence=True, indent=None
    )


def _indented_as_json_format(message: Message) -> bool:
    expected = json_format.MessageToJson(message, always_print_fields_with_no_presence=True)
    return ReplyTree.of(message).indented() == expected


CLASSES = _classes()
Plain = CLASSES["Plain"]
_INT_RANGES = {
    "i32": (-(2**31), 2**31 - 1),
    "u32": (0, 2**32 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "f32": (0, 2**32 - 1),
    "sf32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u64": (0, 2**64 - 1),
    "s64": (-(2**63), 2**63 - 1),
    "f64": (0, 2**64 - 1),
    "sf64": (-(2**63), 2**63 - 1),
}


def _value(name: str) -> st.SearchStrategy[Any]:
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        return st.one_of(st.just(0), st.integers(low, high))
    if name == "flag":
        return st.booleans()
    if name == "raw":
        return st.binary(max_size=20)
    return st.text(max_size=20)  # any code point: quotes, controls, non-ASCII, surrogates out


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={name: _value(name) for name in _SCALARS}))
def test_plain_messages_render_as_json_format_does(values: dict[str, Any]) -> None:
    message = Plain(**values)
    assert compile_converter(Plain.DESCRIPTOR) is not convert_generic
    assert render_compact(message) == render_generic(message)
    assert _indented_as_json_format(message)


def test_field_order_follows_json_format_when_only_some_are_set() -> None:
    # json_format puts set fields first (by number), then defaults (by declaration).
    line = pipeline_pb2.LogLine(text="only the text")
    assert render_compact(line) == render_generic(line) == '{"text": "only the text", "number": 0}'
    assert render_compact(pipeline_pb2.LogLine()) == '{"number": 0, "text": ""}'


def test_other_kinds_of_message_are_left_to_json_format() -> None:
    inner = Plain(s="x", i64=7)
    cases = [
        CLASSES["Nested"](inner=inner, n=2),
        CLASSES["Nested"](),
        CLASSES["Listed"](lines=["a", "b"]),
        CLASSES["Floats"](d=float("nan"), f=0.1),
        CLASSES["Optional"](always="a"),
        CLASSES["Optional"](maybe=0),
        StringValue(value="a"),  # well-known types have JSON forms of their own
        Int64Value(value=3),
    ]
    for message in cases:
        assert compile_converter(message.DESCRIPTOR) is convert_generic, message.DESCRIPTOR.name
        assert render_compact(message) == render_generic(message)
        assert _indented_as_json_format(message)
