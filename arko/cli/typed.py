"""``k=v`` pairs of ``arko run``, checked against the method's description.

String fields go into ``RunRequest.params`` exactly as typed (the master's
own conversion, as with grpcurl and Execution); every other field is
converted here by its type and sent in ``RunRequest.args``, so a typo
(``lines=ten``, ``releas=true``) is a usage error before anything runs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from arko.cli.client import CliError, Exit
from arko.v1 import admin_pb2

_INTS = {"int32", "sint32", "sfixed32", "uint32", "fixed32"}
_LONGS = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}  # JSON strings, exact
_FLOATS = {"double", "float"}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def split_pairs(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """``k=v`` strings as (k, v); the value may hold ``=``.

    Raises:
        CliError: a pair without ``=`` or with an empty name, or a name given twice.
    """
    out: list[tuple[str, str]] = []
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise CliError(f"{pair!r} is not name=value", Exit.USAGE)
        out.append((name.strip(), value))
    names = [n for n, _ in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CliError(f"given more than once: {', '.join(twice)}", Exit.USAGE)
    return out


def _scalar(field: admin_pb2.FieldInfo, text: str) -> Any:
    """One value of ``field`` from text, as the protobuf JSON mapping takes it."""
    kind = field.type
    try:
        if kind in _INTS:
            return int(text, 0)
        if kind in _LONGS:
            return str(int(text, 0))
        if kind in _FLOATS:
            return float(text)
    except ValueError:
        raise CliError(f"{field.name} is {kind}: {text!r} is not one", Exit.USAGE) from None
    if kind == "bool":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise CliError(f"{field.name} takes true or false, not {text!r}", Exit.USAGE)
    if kind == "enum":
        if text in field.enum_values:
            return text
        try:
            return int(text, 10)  # a value's number; the master knows which are declared
        except ValueError:
            choices = ", ".join(field.enum_values)
            raise CliError(
                f"{field.name} takes one of {choices} (or its number), not {text!r}", Exit.USAGE
            ) from None
    if kind == "message":
        try:
            return json.loads(text)
        except ValueError:
            raise CliError(f"{field.name} takes a JSON object, not {text!r}", Exit.USAGE) from None
    return text  # string, bytes (base64 in JSON)


def _value(field: admin_pb2.FieldInfo, text: str) -> Any:
    if field.map:
        return _scalar(admin_pb2.FieldInfo(name=field.name, type="message"), text)
    if field.repeated:
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise CliError(
                    f"{field.name} takes a JSON list, not {text!r}", Exit.USAGE
                ) from None
            return [_scalar(field, i if isinstance(i, str) else json.dumps(i)) for i in items]
        return [_scalar(field, item.strip()) for item in text.split(",") if item.strip()]
    return _scalar(field, text)


def build_request(
    method: admin_pb2.MethodInfo, pairs: Sequence[str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """(params, args) for ``RunRequest`` from ``k=v`` pairs.

    Raises:
        CliError: a name the request has no field for, or a value of the wrong type.
    """
    request = method.messages[0] if method.messages else admin_pb2.MessageInfo()
    fields = {f.name: f for f in request.fields}
    fields.update({f.json_name: f for f in request.fields if f.json_name not in fields})
    params: dict[str, str] = {}
    args: dict[str, Any] = {}
    for name, text in split_pairs(pairs):
        field = fields.get(name)
        if field is None:
            close = difflib.get_close_matches(name, [f.name for f in request.fields], 3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(f.name for f in request.fields) or "none"
            raise CliError(
                f"{method.method} has no field {name!r}{hint} (fields: {known})", Exit.USAGE
            )
        if field.type == "string" and not field.repeated:
            params[field.name] = text
        else:
            args[field.json_name or field.name] = _value(field, text)
    return params, args
