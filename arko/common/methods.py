"""Parsing of the method names callers use for jobs.

The original accepted ``MyPipeline.Run``; ``MyPipeline/Run`` and
``/MyPipeline/Run`` (the gRPC path) are accepted too. Services with a package
use their fully qualified name: ``acme.ci.Build.Run``. A name no slave
exposes is answered with the closest ones that exist, so a caller who wrote
``Build.Compile`` for ``acme.ci.Build.Compile`` is told what to write.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from arko.common.errors import InvalidArgument, MethodNotFound

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SERVICE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*")
_METHOD_RE = re.compile(_IDENT)
MAX_METHOD_NAME = 512
SUGGESTIONS = 3
LISTED_WHEN_NONE_CLOSE = 5


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


@functools.lru_cache(maxsize=1024)
def parse_method_name(raw: str) -> MethodName:
    """Parse a caller's method name (cached: a job asks it more than once, and
    callers run the same few methods again and again).

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


def _short(name: str) -> str:
    """``Build.Compile`` for ``acme.ci.Build.Compile``: the service without its package."""
    service, _, method = name.rpartition(".")
    return f"{service.rpartition('.')[2]}.{method}"


def closest_methods(wanted: str, known: Iterable[str], limit: int = SUGGESTIONS) -> list[str]:
    """The known method names a caller most likely meant by ``wanted``, best first.

    Names are compared without case, each both whole and without its package,
    so ``build.compile`` finds ``acme.ci.Build.Compile`` alone; otherwise
    near spellings come (difflib's ratio of at least 0.6).
    """
    forms: dict[str, list[str]] = {}
    for name in sorted(set(known)):
        for form in {name.lower(), _short(name).lower()}:
            forms.setdefault(form, []).append(name)
    want = wanted.strip().lower()
    if want in forms:  # the same name but for case or package: nothing else is as likely
        return forms[want][:limit]
    found: list[str] = []
    for form in difflib.get_close_matches(want, forms, n=limit * 2):
        found += [name for name in forms[form] if name not in found]
    return found[:limit]


def method_not_found(wanted: str, known: Iterable[str]) -> MethodNotFound:
    """NOT_FOUND for ``wanted``, naming the closest methods, or some that exist."""
    known = sorted(set(known))
    message = f"no registered slave exposes {wanted}"
    if not known:
        return MethodNotFound(f"{message}; no slave has offered any method yet")
    close = closest_methods(wanted, known)
    if close:
        options = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        return MethodNotFound(f"{message}; did you mean {options}?")
    listed = ", ".join(known[:LISTED_WHEN_NONE_CLOSE])
    more = len(known) - LISTED_WHEN_NONE_CLOSE
    return MethodNotFound(
        f"{message}; exposed methods: {listed}" + (f" and {more} more" if more > 0 else "")
    )
