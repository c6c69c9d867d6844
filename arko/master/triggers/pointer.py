"""JSON pointers (RFC 6901): how a trigger's parameters read a delivered payload.

A parameter declared as ``"${/repository/clone_url}"`` takes that value of
the payload; a string stays as it is, anything else (a number, an object)
becomes its JSON text, since job parameters are strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from arko.common.errors import InvalidArgument


def parse_pointer(text: str, where: str) -> tuple[str, ...]:
    """The reference tokens of a pointer, ``~1`` and ``~0`` unescaped.

    Raises:
        ValueError: the text is not a JSON pointer (it must be empty or start
            with ``/``; ``~`` must be followed by 0 or 1).
    """
    if text == "":
        return ()
    if not text.startswith("/"):
        raise ValueError(f"{where}: {text!r} is not a JSON pointer (it starts with '/')")
    tokens = text[1:].split("/")
    for token in tokens:
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise ValueError(f"{where}: {text!r} has a '~' not followed by 0 or 1")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)


def resolve(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value the pointer's tokens lead to.

    Raises:
        KeyError: the document has no such value.
    """
    node = document
    for token in tokens:
        if isinstance(node, Mapping):
            if token not in node:
                raise KeyError(token)
            node = node[token]
        elif isinstance(node, list):
            # RFC 6901: decimal digits without a leading zero ("-" names no element).
            if not token.isdigit() or (token != "0" and token.startswith("0")):
                raise KeyError(token)
            index = int(token)
            if index >= len(node):
                raise KeyError(token)
            node = node[index]
        else:
            raise KeyError(token)
    return node


def as_param(value: Any) -> str:
    """A payload value as a job parameter: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def map_params(declared: Mapping[str, str], payload: Any) -> dict[str, str]:
    """The job's parameters: each ``${/pointer}`` read from ``payload``, others literal.

    Raises:
        InvalidArgument: the payload lacks a value a parameter points to.
    """
    params: dict[str, str] = {}
    for key, value in declared.items():
        if not (value.startswith("${") and value.endswith("}")):
            params[key] = value
            continue
        pointer = value[2:-1]
        try:
            params[key] = as_param(resolve(payload, parse_pointer(pointer, key)))
        except KeyError:
            raise InvalidArgument(
                f"parameter {key!r}: the payload has no value at {pointer!r}"
            ) from None
    return params
