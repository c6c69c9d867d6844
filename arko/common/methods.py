"""Parsing of the method names callers use for jobs.

The original accepted ``MyPipeline.Run``; ``MyPipeline/Run`` and
``/MyPipeline/Run`` (the gRPC path) are accepted too. Services with a package
use their fully qualified name: ``acme.ci.Build.Run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from arko.common.errors import InvalidArgument

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SERVICE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*")
_METHOD_RE = re.compile(_IDENT)
MAX_METHOD_NAME = 512


@dataclass(frozen=True, slots=True)
class MethodName:
    """A ``service.method`` pair, validated."""

    service: str
    method: str

    @property
    def dotted(self) -> str:
        """``Service.Method``: how jobs and the method lists name it."""
        return f"{self.service}.{self.method}"

    @property
    def path(self) -> str:
        """``/Service/Method``: the HTTP/2 path gRPC calls it by."""
        return f"/{self.service}/{self.method}"


def parse_method_name(raw: str) -> MethodName:
    """Parse a caller's method name.

    Raises:
        InvalidArgument: the name is empty, too long or not ``Service.Method``.
    """
    name = raw.strip()
    if not name:
        raise InvalidArgument("method is empty: give it as Service.Method, e.g. MyPipeline.Run")
    if len(name) > MAX_METHOD_NAME:
        raise InvalidArgument(f"method name is longer than {MAX_METHOD_NAME} characters")
    if "/" in name:
        service, _, method = name.lstrip("/").rpartition("/")
    else:
        service, _, method = name.rpartition(".")
    if not service or not _SERVICE_RE.fullmatch(service) or not _METHOD_RE.fullmatch(method):
        raise InvalidArgument(
            f"method {raw!r} is not of the form Service.Method (or Service/Method), "
            "e.g. MyPipeline.Run"
        )
    return MethodName(service, method)
