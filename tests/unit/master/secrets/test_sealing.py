"""The secrets key file and AES-GCM sealing."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from arko.common.errors import StartupError
from arko.master.secrets.sealing import NONCE_BYTES, Sealer, SecretUnreadable, load_key


def key_file(tmp_path: Path, raw: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "arko-secrets.key"
    path.write_bytes(raw)
    path.chmod(mode)
    return path


def test_a_value_opens_under_its_name_and_key_only() -> None:
    """Round trip; another name (the associated data) or another key does not open it."""
    sealer = Sealer(os.urandom(32))
    sealed = sealer.seal("DEPLOY_KEY", 'p"a\\ss')
    assert sealer.open("DEPLOY_KEY", sealed) == 'p"a\\ss'
    with pytest.raises(SecretUnreadable, match="OTHER"):
        sealer.open("OTHER", sealed)
    with pytest.raises(SecretUnreadable):
        Sealer(os.urandom(32)).open("DEPLOY_KEY", sealed)
    with pytest.raises(SecretUnreadable):
        sealer.open("DEPLOY_KEY", "not base64!")


def test_each_seal_has_a_fresh_nonce_and_hides_the_value() -> None:
    """The same value sealed twice differs in its nonce; the text never holds the value."""
    sealer = Sealer(os.urandom(32))
    one, two = sealer.seal("A", "hunter22"), sealer.seal("A", "hunter22")
    assert base64.b64decode(one)[:NONCE_BYTES] != base64.b64decode(two)[:NONCE_BYTES]
    assert "hunter22" not in one and b"hunter22" not in base64.b64decode(one)


def test_a_good_key_file_loads(tmp_path: Path) -> None:
    """32 bytes in base64 with a trailing newline, as `head -c 32 /dev/urandom | base64` makes."""
    sealer = load_key(key_file(tmp_path, base64.b64encode(os.urandom(32)) + b"\n"))
    assert sealer.open("X", sealer.seal("X", "value")) == "value"


@pytest.mark.parametrize(
    ("raw", "mode", "words"),
    [
        (base64.b64encode(bytes(32)), 0o640, "group and others"),
        (base64.b64encode(bytes(32)), 0o604, "chmod 600"),
        (base64.b64encode(bytes(16)), 0o600, "32 random bytes"),
        (b"not base64 at all", 0o600, "head -c 32 /dev/urandom"),
        (b"", 0o600, "32 random bytes"),
    ],
    ids=["group", "others", "short", "not-base64", "empty"],
)
def test_a_bad_key_file_is_refused_saying_why(
    tmp_path: Path, raw: bytes, mode: int, words: str
) -> None:
    """Readable by others, the wrong length or not base64: a start-up error naming the fix."""
    path = key_file(tmp_path, raw, mode)
    with pytest.raises(StartupError, match=words) as caught:
        load_key(path)
    assert str(path) in caught.value.message


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    """An unreadable file is named, with the reason."""
    with pytest.raises(StartupError, match=r"cannot read secrets key file .*missing\.key"):
        load_key(tmp_path / "missing.key")
