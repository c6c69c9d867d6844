"""Tests of arko.master.jobs.params.build_request: job parameters to a request message.

The message class is built at run time from a hand-written descriptor, the way
the master builds classes from a slave's reflection, so no generated code is used.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from arko.common.errors import InvalidArgument
from arko.master.jobs.params import build_request

FDP = descriptor_pb2.FieldDescriptorProto
FULL_NAME = "test.v1.AllKinds"


def _all_kinds_file() -> descriptor_pb2.FileDescriptorProto:
    """``test.v1.AllKinds``: one field of every kind the executor must fill."""
    file = descriptor_pb2.FileDescriptorProto(
        name="test/all_kinds.proto", package="test.v1", syntax="proto3"
    )
    inner = file.message_type.add(name="Inner")
    inner.field.add(name="note", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    color = file.enum_type.add(name="Color")
    for number, name in enumerate(["COLOR_UNSPECIFIED", "RED", "GREEN"]):
        color.value.add(name=name, number=number)

    msg = file.message_type.add(name="AllKinds")
    entry = msg.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    fields = [
        ("text", FDP.TYPE_STRING, FDP.LABEL_OPTIONAL, ""),
        ("blob", FDP.TYPE_BYTES, FDP.LABEL_OPTIONAL, ""),
        ("flag", FDP.TYPE_BOOL, FDP.LABEL_OPTIONAL, ""),
        ("small", FDP.TYPE_INT32, FDP.LABEL_OPTIONAL, ""),
        ("big", FDP.TYPE_INT64, FDP.LABEL_OPTIONAL, ""),
        ("usmall", FDP.TYPE_UINT32, FDP.LABEL_OPTIONAL, ""),
        ("ubig", FDP.TYPE_UINT64, FDP.LABEL_OPTIONAL, ""),
        ("zigzag", FDP.TYPE_SINT32, FDP.LABEL_OPTIONAL, ""),
        ("fixed", FDP.TYPE_FIXED64, FDP.LABEL_OPTIONAL, ""),
        ("ratio", FDP.TYPE_FLOAT, FDP.LABEL_OPTIONAL, ""),
        ("precise", FDP.TYPE_DOUBLE, FDP.LABEL_OPTIONAL, ""),
        ("color", FDP.TYPE_ENUM, FDP.LABEL_OPTIONAL, ".test.v1.Color"),
        ("tags", FDP.TYPE_STRING, FDP.LABEL_REPEATED, ""),
        ("inner", FDP.TYPE_MESSAGE, FDP.LABEL_OPTIONAL, ".test.v1.Inner"),
        ("labels", FDP.TYPE_MESSAGE, FDP.LABEL_REPEATED, ".test.v1.AllKinds.LabelsEntry"),
        ("build_id", FDP.TYPE_STRING, FDP.LABEL_OPTIONAL, ""),
    ]
    for number, (name, kind, label, type_name) in enumerate(fields, start=1):
        field = msg.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    return file


@pytest.fixture(scope="module")
def all_kinds() -> type[Message]:
    """The ``AllKinds`` class, from a fresh pool so no other test's types leak in."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_all_kinds_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(FULL_NAME))


def test_no_params_give_an_empty_message(all_kinds: type[Message]) -> None:
    """An empty parameter map builds a message with every field at its default."""
    message = build_request(all_kinds, {})
    assert isinstance(message, all_kinds)
    assert message.ListFields() == []


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("text", "hello world", "hello world"),
        ("text", " kept as is ", " kept as is "),
        ("blob", "héllo", "héllo".encode()),
        ("small", "-2147483648", -(2**31)),
        ("small", " 42 ", 42),
        ("big", "9223372036854775807", 2**63 - 1),
        ("usmall", "4294967295", 2**32 - 1),
        ("ubig", "18446744073709551615", 2**64 - 1),
        ("zigzag", "-5", -5),
        ("fixed", "7", 7),
        ("ratio", "1.5", 1.5),
        ("precise", "-2.25e3", -2250.0),
        ("color", "GREEN", 2),
        ("color", "1", 1),
    ],
)
def test_scalar_is_converted_to_the_field_type(
    all_kinds: type[Message], field: str, raw: str, expected: object
) -> None:
    """A string value is converted to its scalar field's type and stored."""
    message = build_request(all_kinds, {field: raw})
    assert getattr(message, field) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(word, True) for word in ("true", "TRUE", "1", "yes", "on")],
        *[(word, False) for word in ("false", "False", "0", "no", "off")],
    ],
)
def test_bool_words(all_kinds: type[Message], raw: str, expected: bool) -> None:
    """Common true/false spellings, in any case, set a bool field."""
    assert build_request(all_kinds, {"flag": raw}).flag is expected


def test_special_floats_are_accepted(all_kinds: type[Message]) -> None:
    """``inf`` and ``nan`` reach double fields as the IEEE values."""
    message = build_request(all_kinds, {"precise": "inf", "ratio": "nan"})
    assert message.precise == math.inf
    assert math.isnan(message.ratio)


def test_several_params_fill_several_fields(all_kinds: type[Message]) -> None:
    """Every parameter of a job lands in its own field."""
    message = build_request(all_kinds, {"text": "a", "small": "3", "flag": "true"})
    assert (message.text, message.small, message.flag) == ("a", 3, True)


def test_repeated_field_takes_a_json_list(all_kinds: type[Message]) -> None:
    """A repeated field is given as a JSON array."""
    assert list(build_request(all_kinds, {"tags": '["a", "b"]'}).tags) == ["a", "b"]


def test_map_field_takes_a_json_object(all_kinds: type[Message]) -> None:
    """A map field is given as a JSON object."""
    message = build_request(all_kinds, {"labels": '{"env": "prod", "team": "ci"}'})
    assert dict(message.labels) == {"env": "prod", "team": "ci"}


def test_message_field_takes_a_json_object(all_kinds: type[Message]) -> None:
    """A message field is given as its JSON form."""
    assert build_request(all_kinds, {"inner": '{"note": "hi"}'}).inner.note == "hi"


def test_json_name_is_accepted(all_kinds: type[Message]) -> None:
    """A field may be named by its camelCase JSON name."""
    assert build_request(all_kinds, {"buildId": "b-7"}).build_id == "b-7"


def test_unknown_parameter_names_it_and_lists_the_fields(all_kinds: type[Message]) -> None:
    """A parameter that is no field is refused, naming it, the message and its fields."""
    with pytest.raises(InvalidArgument) as caught:
        build_request(all_kinds, {"text": "ok", "pasword": "x"})
    text = caught.value.message
    assert "'pasword'" in text
    assert FULL_NAME in text
    for name in ("text", "blob", "color", "labels", "build_id"):
        assert name in text


@pytest.mark.parametrize(
    ("field", "raw", "expected_words"),
    [
        ("small", "2147483648", "-2147483648..2147483647"),
        ("small", "-2147483649", "-2147483648..2147483647"),
        ("zigzag", "2147483648", "-2147483648..2147483647"),
        ("big", "-9223372036854775809", "-9223372036854775808..9223372036854775807"),
        ("usmall", "-1", "0..4294967295"),
        ("usmall", "4294967296", "0..4294967295"),
        ("ubig", "-1", "0..18446744073709551615"),
        ("fixed", "18446744073709551616", "0..18446744073709551615"),
        ("small", "1.5", "expected an integer"),
        ("small", "ten", "expected an integer"),
        ("small", "", "expected an integer"),
        ("precise", "abc", "expected a number"),
        ("flag", "maybe", "expected a bool"),
        ("color", "BLUE", "COLOR_UNSPECIFIED, RED, GREEN"),
        ("color", "red", "COLOR_UNSPECIFIED, RED, GREEN"),
        ("color", "9", "COLOR_UNSPECIFIED, RED, GREEN"),
    ],
)
def test_bad_scalar_names_the_parameter_and_what_was_expected(
    all_kinds: type[Message], field: str, raw: str, expected_words: str
) -> None:
    """A value that does not fit its field is refused, naming the parameter and the rule."""
    with pytest.raises(InvalidArgument) as caught:
        build_request(all_kinds, {field: raw})
    assert f"parameter {field!r}" in caught.value.message
    assert f"{FULL_NAME}.{field}" in caught.value.message
    assert expected_words in caught.value.message


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("tags", "not json"),
        ("tags", '"a"'),
        ("tags", "[1]"),
        ("labels", "[1]"),
        ("labels", '{"a": 1}'),
        ("inner", "5"),
        ("inner", '{"nope": "hi"}'),
        ("inner", "{"),
    ],
)
def test_bad_json_names_the_parameter(all_kinds: type[Message], field: str, raw: str) -> None:
    """Invalid or ill-typed JSON for a repeated, map or message field is refused by name."""
    with pytest.raises(InvalidArgument) as caught:
        build_request(all_kinds, {field: raw})
    assert f"parameter {field!r} has an invalid JSON" in caught.value.message


def test_deeply_nested_json_is_an_invalid_argument(all_kinds: type[Message]) -> None:
    """A pathologically nested JSON value is refused as INVALID_ARGUMENT, not a crash."""
    with pytest.raises(InvalidArgument):
        build_request(all_kinds, {"inner": "[" * 100_000})


def test_enum_numbers_in_args_are_those_of_declared_values(all_kinds: type[Message]) -> None:
    """A typed argument takes an enum value's number as a parameter does, and no other number."""
    message = build_request(all_kinds, {}, {"color": 2})
    assert message.color == 2  # type: ignore[attr-defined]
    assert build_request(all_kinds, {}, {"color": 1.0}).color == 1  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument) as caught:
        build_request(all_kinds, {}, {"color": 9.0})  # a Struct's numbers are floats
    text = caught.value.message
    assert "'color'" in text and f"{FULL_NAME}.color" in text
    assert "9 is none of COLOR_UNSPECIFIED, RED, GREEN" in text
