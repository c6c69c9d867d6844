"""The vault: secrets set, listed, deleted and opened, with their names and globs checked.

Nothing is cached: every call reads the ``secret`` table, so masters sharing a
database always see the same secrets (one read per job that refers to any).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import grpc

from arko.common.errors import ArkoError, InvalidArgument
from arko.common.redact import MIN_SECRET
from arko.master.secrets.sealing import MAKE_KEY, Sealer
from arko.master.store.rows import SecretRow, SecretStore

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
MAX_VALUE_BYTES = 64 * 1024
MAX_GLOBS = 64
MAX_GLOB_CHARS = 512
EVERY_METHOD = ("*",)


class NoSecretsKey(ArkoError):
    """The master was started without ``--secrets_key_file``: it keeps no secrets."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self) -> None:
        super().__init__(
            "this master keeps no secrets: start it with --secrets_key_file FILE "
            f"(make FILE with: {MAKE_KEY})"
        )


class SecretNotFound(ArkoError):
    """No secret has this name."""

    code = grpc.StatusCode.NOT_FOUND


def check_name(name: str) -> str:
    """A secret's name as arko takes them.

    Raises:
        InvalidArgument: anything else, quoting (the start of) the name.
    """
    if not NAME.fullmatch(name):
        raise InvalidArgument(
            f"secret name {name[:64]!r} is not letters, digits, '_', '.' and '-' starting "
            "with a letter or '_', at most 128 characters"
        )
    return name


def check_value(name: str, value: str) -> None:
    """A value that fits and that masking can find again in output.

    Raises:
        InvalidArgument: empty, shorter than 3 characters (too short to mask),
            or over 64 KiB in UTF-8.
    """
    if len(value) < MIN_SECRET:
        raise InvalidArgument(
            f"secret {name} is shorter than {MIN_SECRET} characters: too short to mask in output"
        )
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"secret {name} is {size} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB)"
        )


def check_globs(globs: Iterable[str]) -> tuple[str, ...]:
    """Method globs with blanks trimmed; none means every method.

    Raises:
        InvalidArgument: an empty glob, or too many or too long ones.
    """
    found = tuple(glob.strip() for glob in globs)
    if any(not glob for glob in found):
        raise InvalidArgument("a method glob is empty: give 'Service.Method', 'Service.*' or '*'")
    if len(found) > MAX_GLOBS or any(len(glob) > MAX_GLOB_CHARS for glob in found):
        raise InvalidArgument(
            f"at most {MAX_GLOBS} method globs of at most {MAX_GLOB_CHARS} characters"
        )
    return found or EVERY_METHOD


def allows(globs: Iterable[str], method: str) -> bool:
    """Whether one of ``globs`` matches ``method`` (``Service.Method``), case and all."""
    return any(fnmatchcase(method, glob) for glob in globs)


@dataclass(frozen=True, slots=True)
class Opened:
    """A secret's value and the globs of the methods that may receive it."""

    value: str
    methods: tuple[str, ...]


class Vault:
    """Secrets in the store, sealed under the master's key.

    Args:
        store: The ``secret`` table.
        sealer: The key's sealer; None when the master has no key file, and
            then every call raises :class:`NoSecretsKey`.
    """

    def __init__(self, store: SecretStore, sealer: Sealer | None) -> None:
        self._store = store
        self._sealer = sealer

    def _key(self) -> Sealer:
        if self._sealer is None:
            raise NoSecretsKey()
        return self._sealer

    async def set(self, name: str, value: str, methods: Sequence[str] = ()) -> SecretRow:
        """Create or replace a secret; answer it as listed (never its value).

        Raises:
            NoSecretsKey: no key file.
            InvalidArgument: a bad name, value or glob.
        """
        sealer = self._key()
        check_name(name)
        check_value(name, value)
        globs = check_globs(methods)
        return await self._store.put_secret(name, sealer.seal(name, value), globs)

    async def list(self) -> list[SecretRow]:
        """Every secret by name, its value still sealed.

        Raises:
            NoSecretsKey: no key file.
        """
        self._key()
        return await self._store.list_secrets()

    async def delete(self, name: str) -> None:
        """Delete a secret.

        Raises:
            NoSecretsKey: no key file.
            InvalidArgument: a bad name.
            SecretNotFound: none has this name.
        """
        self._key()
        if not await self._store.delete_secret(check_name(name)):
            raise SecretNotFound(f"no secret {name}")

    async def open(self, names: Iterable[str]) -> dict[str, Opened]:
        """The values and globs of those of ``names`` that exist, read now.

        Raises:
            NoSecretsKey: no key file.
            SecretUnreadable: a value does not open with this key.
        """
        sealer = self._key()
        rows = await self._store.get_secrets(sorted(set(names)))
        return {row.name: Opened(sealer.open(row.name, row.sealed), row.methods) for row in rows}
