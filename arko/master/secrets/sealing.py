"""The secrets key and AES-GCM sealing: what ``--secrets_key_file`` gives the master.

The key file holds 32 random bytes, base64-encoded (``head -c 32 /dev/urandom
| base64 > arko-secrets.key``), readable by its owner only, as a private key
must be. Each value is sealed with a fresh 12-byte nonce and the secret's name
as associated data, so a sealed value copied under another name does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from arko.common.errors import ArkoError, StartupError

KEY_BYTES = 32
NONCE_BYTES = 12
MAKE_KEY = "head -c 32 /dev/urandom | base64 > arko-secrets.key && chmod 600 arko-secrets.key"


class SecretUnreadable(ArkoError):
    """A stored value does not open under this master's key (another key, or altered)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Sealer:
    """Seals and opens secret values under one AES-256-GCM key.

    Args:
        key: The 32 key bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, name: str, value: str) -> str:
        """base64(nonce + ciphertext + tag) of ``value``, bound to ``name``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), name.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, name: str, sealed: str) -> str:
        """The value :meth:`seal` sealed under ``name``.

        Raises:
            SecretUnreadable: another key sealed it, or the stored text was changed.
        """
        try:
            raw = base64.b64decode(sealed, validate=True)
            value = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode())
            return value.decode()
        except (binascii.Error, InvalidTag, ValueError):
            raise SecretUnreadable(
                f"secret {name} does not open with this master's --secrets_key_file "
                "(sealed under another key, or altered in the database): set it again"
            ) from None


def load_key(path: Path) -> Sealer:
    """The sealer of the key in ``path``, checked as a private key is.

    Raises:
        StartupError: the file cannot be read, group or others may read or
            write it, or it is not 32 bytes in base64; the message says how
            to make a good one.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_bytes()
    except OSError as exc:
        raise StartupError(f"cannot read secrets key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise StartupError(
            f"secrets key file {path} is mode {mode:04o}: group and others must have no "
            f"access to it (chmod 600 {path})"
        )
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise StartupError(
            f"secrets key file {path} must hold {KEY_BYTES} random bytes in base64; "
            f"make one with: {MAKE_KEY}"
        )
    return Sealer(key)
