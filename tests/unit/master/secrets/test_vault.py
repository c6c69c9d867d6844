"""The vault on real databases (SQLite, then PostgreSQL through the ``db`` fixture)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from arko.common.errors import ArkoError, InvalidArgument
from arko.master.secrets.sealing import Sealer
from arko.master.secrets.vault import NoSecretsKey, SecretNotFound, Vault, allows
from arko.master.store.sql import DatabaseStore, open_store

KEY = os.urandom(32)
VALUE = 'p"a\\ss-w0rd'


def with_vault(db: str, scenario: Callable[[Vault, DatabaseStore], Awaitable[None]]) -> None:
    async def go() -> None:
        store = await open_store(db)
        try:
            await scenario(Vault(store, Sealer(KEY)), store)
        finally:
            await store.close()

    asyncio.run(go())


def test_set_list_replace_delete(db: str) -> None:
    """Set answers no value; a second Set keeps created_at; Delete removes; lists are by name."""

    async def scenario(vault: Vault, store: DatabaseStore) -> None:
        first = await vault.set("b_key", VALUE, ["Deploy.*", " Release.Run "])
        assert first.methods == ("Deploy.*", "Release.Run")
        await vault.set("a_key", "other")
        again = await vault.set("b_key", "changed", [])
        assert again.created_at == first.created_at and again.updated_at >= first.updated_at
        listed = await vault.list()
        assert [(r.name, r.methods) for r in listed] == [("a_key", ("*",)), ("b_key", ("*",))]
        assert (await vault.open(["b_key", "nope"]))["b_key"].value == "changed"
        await vault.delete("a_key")
        assert [r.name for r in await vault.list()] == ["b_key"]
        with pytest.raises(SecretNotFound, match="no secret a_key"):
            await vault.delete("a_key")

    with_vault(db, scenario)


def test_the_table_holds_no_plaintext(db: str) -> None:
    """What the store keeps is sealed: neither the value nor its JSON form is in it."""

    async def scenario(vault: Vault, store: DatabaseStore) -> None:
        await vault.set("K", VALUE)
        (row,) = await store.list_secrets()
        assert VALUE not in row.sealed and "w0rd" not in row.sealed

    with_vault(db, scenario)


def test_two_vaults_on_one_database_see_each_others_writes(db: str) -> None:
    """No cache: a secret set or deleted through one master's vault is seen by another's."""

    async def scenario(vault: Vault, store: DatabaseStore) -> None:
        other_store = await open_store(db)
        other = Vault(other_store, Sealer(KEY))
        try:
            await vault.set("SHARED", "one")
            assert (await other.open(["SHARED"]))["SHARED"].value == "one"
            await other.set("SHARED", "two")
            assert (await vault.open(["SHARED"]))["SHARED"].value == "two"
            await other.delete("SHARED")
            assert await vault.open(["SHARED"]) == {}
        finally:
            await other_store.close()

    with_vault(db, scenario)


@pytest.mark.parametrize(
    ("name", "value", "globs", "words"),
    [
        ("1abc", VALUE, [], "secret name '1abc'"),
        ("has space", VALUE, [], "secret name 'has space'"),
        ("x" * 129, VALUE, [], "at most 128"),
        ("", VALUE, [], "secret name ''"),
        ("OK", "", [], "shorter than 3"),
        ("OK", "ab", [], "too short to mask"),
        ("OK", "x" * (64 * 1024 + 1), [], "64 KiB"),
        ("OK", "é" * (32 * 1024 + 1), [], "64 KiB"),  # bytes, not characters
        ("OK", VALUE, [" "], "glob is empty"),
    ],
    ids=[
        "digit-first",
        "space",
        "name-too-long",
        "no-name",
        "empty",
        "too-short",
        "too-long",
        "too-many-bytes",
        "blank-glob",
    ],
)
def test_bad_input_is_refused_naming_it(
    tmp_path: Path, name: str, value: str, globs: list[str], words: str
) -> None:
    """INVALID_ARGUMENT with a message saying what was wrong, and nothing stored."""

    async def scenario(vault: Vault, store: DatabaseStore) -> None:
        with pytest.raises(InvalidArgument, match=words):
            await vault.set(name, value, globs)
        assert await vault.list() == []

    with_vault(str(tmp_path / "arko.db"), scenario)


def test_the_longest_name_and_value_are_taken(tmp_path: Path) -> None:
    """128 characters of name, 64 KiB of value: the limits are inclusive."""

    async def scenario(vault: Vault, store: DatabaseStore) -> None:
        name = "_" + "a.b-9" * 25 + "xx"
        assert len(name) == 128
        await vault.set(name, "v" * 64 * 1024)
        assert len((await vault.open([name]))[name].value) == 64 * 1024

    with_vault(str(tmp_path / "arko.db"), scenario)


def test_without_a_key_every_call_says_how_to_set_one(tmp_path: Path) -> None:
    """FAILED_PRECONDITION naming --secrets_key_file and the command that makes a key."""

    async def go() -> None:
        store = await open_store(str(tmp_path / "arko.db"))
        vault = Vault(store, None)
        calls: list[Awaitable[object]] = [
            vault.set("A", "value"),
            vault.list(),
            vault.delete("A"),
            vault.open(["A"]),
        ]
        try:
            for call in calls:
                with pytest.raises(NoSecretsKey) as caught:
                    await call
                error: ArkoError = caught.value
                assert error.code == grpc.StatusCode.FAILED_PRECONDITION
                assert "--secrets_key_file" in error.message
                assert "head -c 32 /dev/urandom | base64" in error.message
        finally:
            await store.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("globs", "method", "allowed"),
    [
        (("*",), "Any.Thing", True),
        (("Deploy.*",), "Deploy.Run", True),
        (("Deploy.*",), "deploy.Run", False),  # case counts
        (("Deploy.Run",), "Deploy.Runner", False),
        (("Build.*", "pkg.v1.Deploy.?un"), "pkg.v1.Deploy.Run", True),
        (("Deploy.[!X]*",), "Deploy.Xray", False),
    ],
)
def test_globs_match_service_dot_method(globs: tuple[str, ...], method: str, allowed: bool) -> None:
    """fnmatchcase over the whole ``Service.Method``."""
    assert allows(globs, method) is allowed
