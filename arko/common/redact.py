"""Recognise and hide secrets: the one rule for records, events, logs and exports.

The rule, in three parts:

1. **Names.** A name is secret when it contains ``password``, ``passwd``,
   ``passphrase``, ``pwd``, ``token``, ``secret``, ``key`` (so ``private_key``),
   ``credential``, ``cookie``, ``session`` or ``auth`` (any case). ``auth``
   followed by ``or`` is the exception (``author``, ``authority``: a commit's
   author is an everyday CI parameter), except ``authorization``, which is
   secret. Other false positives (``monkey``, ``sessions``) are accepted:
   hiding a harmless value costs less than showing a secret.
2. **Redaction by name.** The value under a secret name becomes ``***`` at any
   depth of a mapping or list, and also inside a string that holds a JSON
   object or array (a message or map field given in ``params`` as JSON), just
   as the same value given as a typed argument is. Such a string that does not
   parse is hidden whole when one of its ``"name":`` keys is secret.
3. **Scrubbing by value.** Every text (of 3 characters or more) found under a
   secret name is a secret value. What a slave sends back (its reply, output
   and error text) is scrubbed of these values *before* anything renders it:
   every string and bytes field of a reply, and every error text, loses each
   form a rendering could give the secret (as is, JSON-escaped, Python repr,
   protobuf text escapes). Matching a secret's text inside a JSON rendering
   would miss one holding ``"``, ``\\``, a control or a non-ASCII character.

A value that is exactly a reference to a secret the master keeps,
``${secret:NAME}``, holds no secret: it is kept as it is under any name, and
the master adds the value it stands for to the job's :class:`Secrets` once it
is known (:mod:`arko.master.secrets.references`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from google.protobuf import message_factory, text_encoding
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

_SECRET_NAME = re.compile(
    r"pass(?:word|wd|phrase)|pwd|token|secret|key|credential|cookie|session"
    r"|auth(?!or(?!i[sz]ation))",
    re.IGNORECASE,
)
REDACTED = "***"
# A key in JSON text, even broken ("[Errno 2] …token" in a log is no JSON key).
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')
# A parameter or top-level argument that stands for a secret the master keeps.
SECRET_REFERENCE = re.compile(r"\$\{secret:(.*)\}", re.DOTALL)
# Shorter values are not scrubbed out of text: "ab" would wreck every output.
MIN_SECRET = 3
_ANY = "google.protobuf.Any"
M = TypeVar("M", bound=Message)


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True when a field or parameter called ``name`` must never be shown.

    Cached: every log line and every job asks it of the same few names.
    """
    return bool(_SECRET_NAME.search(name))


def referenced(value: Any) -> str | None:
    """The name ``value`` refers to when it is exactly ``${secret:NAME}``, else None."""
    if not isinstance(value, str):
        return None
    found = SECRET_REFERENCE.fullmatch(value)
    return None if found is None else found.group(1)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-looking entries replaced, recursively.

    A reference to a kept secret stays: it is what the record should show.
    """
    return {
        name: REDACTED
        if is_secret_name(str(name)) and referenced(value) is None
        else _redact(value)
        for name, value in values.items()
    }


# Values with nothing inside to hide: by far the most common, so checked first
# by exact type (an ``isinstance`` against ``Mapping`` is an ABC check, slow
# on every field of every log line).
_PLAIN = frozenset({int, float, bool, type(None)})


def _redact(value: Any) -> Any:
    """Look inside mappings, lists, tuples and JSON texts (a message given in params)."""
    kind = type(value)
    if kind in _PLAIN or (kind is str and not _looks_structured(value)):
        return value
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return type(value)(_redact(item) for item in value)
    if isinstance(value, str) and _looks_structured(value):
        try:
            inner = json.loads(value)
            hidden = _redact(inner)
        except (ValueError, RecursionError):
            return REDACTED if any(map(is_secret_name, _JSON_KEY.findall(value))) else value
        return value if hidden == inner else json.dumps(hidden, ensure_ascii=False)
    return value


def _looks_structured(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def secret_values(values: Mapping[str, Any]) -> list[str]:
    """Every text under a secret-looking name, at any depth, JSON texts included."""
    found: list[str] = []
    for name, value in values.items():
        if is_secret_name(str(name)) and referenced(value) is None:
            _leaves(value, found)
        else:
            _search(value, found)
    return found


def _search(value: Any, found: list[str]) -> None:
    """Find the secret-named entries below ``value``, an entry whose name is not secret."""
    if isinstance(value, Mapping):
        found += secret_values(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _search(item, found)
    elif isinstance(value, str) and _looks_structured(value):
        # One that does not parse is hidden whole by _redact if it names a secret.
        with contextlib.suppress(ValueError, RecursionError):
            _search(json.loads(value), found)


def _leaves(value: Any, found: list[str]) -> None:
    """Every text or number below a secret name (a secret message's every field)."""
    if isinstance(value, Mapping):
        for item in value.values():
            _leaves(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _leaves(item, found)
    elif isinstance(value, str):
        found.append(value)
        if _looks_structured(value):
            with contextlib.suppress(ValueError, RecursionError):  # whole, then
                _leaves(json.loads(value), found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found.append(json.dumps(value))


def _forms(secret: str) -> set[str]:
    """Each way a rendering may spell ``secret``: as is, JSON, repr, protobuf text."""
    raw = secret.encode()
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        text_encoding.CEscape(raw, as_utf8=False),
        text_encoding.CEscape(raw, as_utf8=True),
    } - {REDACTED}


class Secrets:
    """The secret values of one job, and the scrubbing of what others may see.

    Args:
        values: The job's secret values (see :func:`secret_values`); those
            shorter than ``MIN_SECRET`` are left out.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = tuple(value for value in values if len(value) >= MIN_SECRET)
        forms = {form for value in self._values for form in _forms(value)}
        ordered = sorted(forms, key=len, reverse=True)  # the longest form wins
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(f.encode()) for f in ordered)) if ordered else None
        )

    @classmethod
    def of(cls, params: Mapping[str, str], args: Mapping[str, Any] | None = None) -> Secrets:
        """The secret values a job's parameters and typed arguments hold."""
        return cls(secret_values(params) + secret_values(args or {}))

    def __bool__(self) -> bool:
        return self._text is not None

    def adding(self, values: Iterable[str]) -> Secrets:
        """These values and ``values`` (a job's ``${secret:NAME}`` values, once known)."""
        more = tuple(values)
        return Secrets((*self._values, *more)) if more else self

    def text(self, text: str) -> str:
        """``text`` without any form of any secret value.

        Replaced until none is left: a ``***`` beside the text around it
        could spell a secret again. This ends: each pass shortens the text or
        turns more of it into ``*``.
        """
        if self._text is None:
            return text
        while True:
            hidden = self._text.sub(REDACTED, text)
            if hidden == text:
                return text
            text = hidden

    def data(self, data: bytes) -> bytes:
        """``data`` without the UTF-8 bytes of any form of any secret value."""
        if self._bytes is None:
            return data
        while True:
            hidden = self._bytes.sub(REDACTED.encode(), data)
            if hidden == data:
                return data
            data = hidden

    def message(self, message: M) -> M:
        """A copy of ``message`` whose texts and bytes hold no secret value: render that."""
        if self._text is None:
            return message
        copy = type(message)()
        copy.CopyFrom(message)
        self._scrub(copy)
        return copy

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.data(value)
        return value

    def _scrub(self, message: Message) -> None:
        """Scrub ``message`` in place: every field, at any depth, map keys included."""
        if message.DESCRIPTOR.full_name == _ANY and self._scrub_any(message):
            return
        for field, value in message.ListFields():
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                self._scrub_map(entry, value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value if field.is_repeated else [value]:
                    self._scrub(item)
            elif field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                if field.is_repeated:
                    value[:] = [self._value(item) for item in value]
                else:
                    setattr(message, field.name, self._value(value))

    def _scrub_map(self, entry: Descriptor, values: Any) -> None:
        if entry.fields_by_name["value"].message_type is None:
            items = {self._value(k): self._value(v) for k, v in values.items()}
            values.clear()
            values.update(items)
            return
        copies = []
        for key, item in values.items():
            copy = type(item)()
            copy.CopyFrom(item)  # the map's own entries go with clear()
            self._scrub(copy)
            copies.append((self._value(key), copy))
        values.clear()
        for key, copy in copies:
            values[key].MergeFrom(copy)

    def _scrub_any(self, packed: Any) -> bool:
        """Scrub the message an ``Any`` holds, if its type is known; else False."""
        name = packed.type_url.rpartition("/")[2]
        try:
            desc = packed.DESCRIPTOR.file.pool.FindMessageTypeByName(name)
            inner = message_factory.GetMessageClass(desc)()
            inner.ParseFromString(packed.value)
        except (KeyError, DecodeError):
            return False  # its bytes are scrubbed as bytes
        self._scrub(inner)
        packed.value = inner.SerializeToString()
        return True


NO_SECRETS = Secrets()
