"""Recognise and hide values whose names look secret.

One rule for logs and stored records: a name containing password, token,
secret or key (any case) is secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_NAME = re.compile(r"password|passwd|token|secret|key", re.IGNORECASE)
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """True when a field or parameter called ``name`` must never be shown."""
    return bool(_SECRET_NAME.search(name))


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-looking entries replaced, recursively."""
    return {
        name: REDACTED if is_secret_name(str(name)) else _redact(value)
        for name, value in values.items()
    }


def _redact(value: Any) -> Any:
    """Look inside mappings, lists and tuples (e.g. a logged list of jobs)."""
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return type(value)(_redact(item) for item in value)
    return value
