"""Turn a job's parameters into the method's request message.

String parameters (``map<string,string>``): each value is converted by the type
of the field it names, straight into the message (no JSON round trip for
scalars); message, repeated and map fields take a JSON value. Typed arguments
(a JSON object, ``arko.v1.Jobs/Run``'s ``args``) follow the protobuf JSON
mapping. Every failure names the parameter and says what was expected.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from arko.common.errors import InvalidArgument

_F = FieldDescriptor
_INT_RANGES: dict[int, tuple[int, int]] = {
    _F.TYPE_INT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _F.TYPE_INT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _F.TYPE_UINT32: (0, 2**32 - 1),
    _F.TYPE_FIXED32: (0, 2**32 - 1),
    _F.TYPE_UINT64: (0, 2**64 - 1),
    _F.TYPE_FIXED64: (0, 2**64 - 1),
}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT_MAX = 3.4028234663852886e38
# Spelled out on purpose, these are fine; an overflow like 1e999 is not.
_NON_FINITE = frozenset({"inf", "infinity", "nan"})
# The spellings the README lists for boolean parameters, compared without case.
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})


def _scalar(field: FieldDescriptor, raw: str) -> Any:
    """Convert one string to the Python value of a non-repeated scalar field."""
    kind = field.type
    if kind == _F.TYPE_STRING:
        return raw
    if kind == _F.TYPE_BYTES:
        return raw.encode()
    if kind == _F.TYPE_BOOL:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("expected a bool: true, yes, on, 1 or false, no, off, 0, empty")
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        if not _INTEGER.fullmatch(raw.strip()):
            raise ValueError("expected an integer")
        value = int(raw.strip(), 10)
        if not low <= value <= high:
            raise ValueError(f"expected an integer in {low}..{high}")
        return value
    if kind in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        try:
            real = float(raw.strip())
        except ValueError:
            raise ValueError("expected a number") from None
        limit = _FLOAT_MAX if kind == _F.TYPE_FLOAT else sys.float_info.max
        if math.isfinite(real) and abs(real) > limit:
            raise ValueError(f"expected a number within ±{limit:g}")
        if not math.isfinite(real) and raw.strip().lower().lstrip("+-") not in _NON_FINITE:
            raise ValueError("expected a finite number")
        return real
    if kind == _F.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None, "enum fields have an enum type"
        by_name = enum.values_by_name.get(raw.strip())
        if by_name is not None:
            return by_name.number
        try:
            number: int | None = int(raw.strip(), 10)
        except ValueError:
            number = None
        if number is None or number not in enum.values_by_number:
            names = ", ".join(enum.values_by_name)
            raise ValueError(f"expected one of {names}")
        return number
    raise ValueError(f"unsupported field type {kind}")


def _find_field(desc: Descriptor, name: str) -> FieldDescriptor:
    field = desc.fields_by_name.get(name)
    if field is None:
        field = next((f for f in desc.fields if f.json_name == name), None)
    if field is None:
        known = ", ".join(f.name for f in desc.fields) or "no fields"
        raise InvalidArgument(
            f"parameter {name!r} is not a field of {desc.full_name} (it has: {known})"
        )
    return field


def build_request(
    cls: type[Message], params: Mapping[str, str], args: Mapping[str, Any] | None = None
) -> Message:
    """Fill a new ``cls`` message from string ``params`` and typed ``args``.

    Raises:
        InvalidArgument: a parameter is not a field, is given twice, or its
            value does not fit the field's type; the message names it.
    """
    message = cls()
    desc = cast(Descriptor, message.DESCRIPTOR)
    _set_params(message, desc, params)
    if args:
        taken = {_find_field(desc, name).name for name in params}
        for name, value in args.items():
            field = _find_field(desc, name)
            if field.name in taken:
                raise InvalidArgument(f"parameter {name!r} is given both in params and in args")
            taken.add(field.name)
            try:
                json_format.ParseDict({field.name: value}, message, max_recursion_depth=32)
            except RecursionError:
                raise InvalidArgument(f"argument {name!r} is nested too deeply") from None
            except (ValueError, json_format.ParseError) as exc:
                raise InvalidArgument(
                    f"argument {name!r} does not fit {desc.full_name}.{field.name}: {exc}"
                ) from None
            _check_enum_numbers(field, value, name)
    return message


def _check_enum_numbers(field: FieldDescriptor, value: Any, name: str) -> None:
    """Refuse an enum number the enum does not declare, as a string parameter is.

    The JSON mapping keeps any number (proto3 enums are open), which would
    reach the slave as a value its code never names.
    """
    enum = field.enum_type
    if enum is None or field.message_type is not None:
        return
    for item in value if isinstance(value, list) else [value]:
        # Numbers from a google.protobuf.Struct (RunRequest.args) are floats.
        if not isinstance(item, int | float) or isinstance(item, bool):
            continue  # a name, or a type ParseDict has refused already
        if not float(item).is_integer() or int(item) not in enum.values_by_number:
            names = ", ".join(enum.values_by_name)
            raise InvalidArgument(
                f"argument {name!r} does not fit {field.full_name}: {item:g} is none of {names}"
            )


def _set_params(message: Message, desc: Descriptor, params: Mapping[str, str]) -> None:
    for name, raw in params.items():
        field = _find_field(desc, name)
        try:
            if field.is_repeated or field.type == _F.TYPE_MESSAGE:
                json_format.ParseDict(
                    {field.name: json.loads(raw)}, message, max_recursion_depth=32
                )
            else:
                setattr(message, field.name, _scalar(field, raw))
        except RecursionError:
            raise InvalidArgument(f"parameter {name!r} is nested too deeply") from None
        except (ValueError, json_format.ParseError) as exc:
            kind = "JSON" if field.is_repeated or field.type == _F.TYPE_MESSAGE else "value"
            raise InvalidArgument(
                f"parameter {name!r} has an invalid {kind} for {desc.full_name}.{field.name}: {exc}"
            ) from None
