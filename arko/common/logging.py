"""structlog set-up shared by both daemons: configured once, in ``__main__``.

Every event passes through :func:`redact_secrets`, so a secret-looking key
never reaches the output even if a call site forgets.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import orjson
import structlog

from arko.common.redact import redact_mapping

LogFormat = Literal["console", "json"]


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide values of secret-looking keys (arko.common.redact's rule)."""
    return redact_mapping(event_dict)


def _json_line(event: Any, **options: Any) -> bytes:
    """A log event as JSON bytes: orjson, several times faster than ``json``.

    ``json`` (``default`` is structlog's fallback, the value's repr) for what
    orjson refuses, such as an integer beyond 64 bits: a log call never fails.
    """
    try:
        return orjson.dumps(event, default=options.get("default"), option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(event, **options).encode()


def configure_logging(level: str = "info", fmt: LogFormat = "console") -> None:
    """Send structured logs to stderr at ``level`` as console lines or JSON lines."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(serializer=_json_line)
        factory: Any = structlog.BytesLoggerFactory(file=sys.stderr.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
