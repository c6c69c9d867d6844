"""structlog set-up shared by both daemons: configured once, in ``__main__``.

Every event passes through :func:`redact_secrets`, so a secret-looking key
never reaches the output even if a call site forgets.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from arko.common.redact import redact_mapping

LogFormat = Literal["console", "json"]


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide values of secret-looking keys (arko.common.redact's rule)."""
    return redact_mapping(event_dict)


def configure_logging(level: str = "info", fmt: LogFormat = "console") -> None:
    """Send structured logs to stderr at ``level`` as console lines or JSON lines."""
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
